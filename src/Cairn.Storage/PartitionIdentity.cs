using System.Globalization;
using System.Text;

namespace Cairn.Storage;

/// <summary>
/// The <c>partition.metadata</c> file every partition directory carries (Kafka has the same file): the topic name,
/// topic id and partition index, so a directory proves it is Cairn's and a lost topic metadata file can be rebuilt.
/// </summary>
internal sealed record PartitionIdentity(string Topic, Guid TopicId, int Partition)
{
    public const string FileName = "partition.metadata";

    /// <summary>
    /// Written into a directory of a deleted topic before its metadata file goes, so a deletion interrupted by a crash
    /// is finished at the next start instead of resurrecting the topic.
    /// </summary>
    public const string DeletedMarkerFile = "partition.deleted";

    public void Write(string directory) =>
        FileIO.WriteAtomic(Path.Combine(directory, FileName), Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"version: 0\ntopic: {Topic}\ntopic_id: {TopicId:D}\npartition: {Partition}\n")));

    /// <summary>The identity in <paramref name="directory"/>, or null when the file is missing or unreadable.</summary>
    public static PartitionIdentity? TryRead(string directory)
    {
        if (FileIO.TryReadAll(Path.Combine(directory, FileName)) is not { } bytes) return null;
        string? topic = null;
        Guid? id = null;
        int? partition = null;
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) continue;
            var value = line[(colon + 1)..].Trim();
            switch (line[..colon].Trim())
            {
                case "topic": topic = value; break;
                case "topic_id": if (Guid.TryParse(value, out var g)) id = g; break;
                case "partition":
                    if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var p)) partition = p;
                    break;
            }
        }
        return topic is not null && id is { } tid && partition is { } pi && TopicNames.IsValid(topic) ? new PartitionIdentity(topic, tid, pi) : null;
    }

    public static bool IsMarkedDeleted(string directory) => File.Exists(Path.Combine(directory, DeletedMarkerFile));

    public static void MarkDeleted(string directory) => FileIO.WriteAtomic(Path.Combine(directory, DeletedMarkerFile), "deleted"u8);

    /// <summary>Splits <c>&lt;topic&gt;-&lt;partition&gt;</c>; false for any other name.</summary>
    public static bool TryParseDirectoryName(string name, out string topic, out int partition)
    {
        topic = "";
        partition = -1;
        int dash = name.LastIndexOf('-');
        if (dash <= 0 || dash == name.Length - 1) return false;
        if (!int.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out partition)) return false;
        topic = name[..dash];
        return TopicNames.IsValid(topic);
    }

    public static bool HasSegmentFile(string directory)
    {
        foreach (var f in Directory.EnumerateFiles(directory))
            if (LogSegment.TryParseBaseOffset(Path.GetFileName(f), LogSegment.LogSuffix, out _)) return true;
        return false;
    }
}
