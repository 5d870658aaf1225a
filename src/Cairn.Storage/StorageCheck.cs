using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>One segment as <see cref="StorageCheck"/> read it: where its valid batches end, and what stopped the walk early.</summary>
/// <param name="NextOffset">the offset after its last valid batch</param>
/// <param name="ValidBytes">bytes of whole, CRC-checked batches from the start of the file</param>
/// <param name="Problem">why the walk stopped before the end of the file (or why the file could not be read); null when whole</param>
/// <param name="IndexProblem">what is wrong with its index files (the broker rebuilds them at start); null when they are sound</param>
public sealed record SegmentCheck(long BaseOffset, long NextOffset, long SizeBytes, long ValidBytes, string? Problem, string? IndexProblem);

/// <summary>A break in a partition's chain of segments: the segment at <see cref="SegmentBaseOffset"/> ends before the next one starts.</summary>
public sealed record SegmentGap(long SegmentBaseOffset, long EndsAt, long NextSegmentBaseOffset);

/// <summary>A partition directory as <see cref="StorageCheck"/> found it.</summary>
/// <param name="LogStartOffset">the first readable offset (checkpoint or first segment); null when there are no segments</param>
/// <param name="LogEndOffset">where the last segment's valid batches end; null when there are no segments</param>
/// <param name="ConsistentEndOffset">where the chain of segments from the first one ends without a gap (the log end a repair keeps)</param>
/// <param name="Problems">what keeps the partition offline or makes records unreadable (a non-zero exit of <c>cairn storage check</c>)</param>
/// <param name="Notes">what the broker fixes on its own at start (torn tail after a crash, damaged indexes, leftovers)</param>
public sealed record PartitionCheck(string Topic, int Partition, string Directory, IReadOnlyList<SegmentCheck> Segments,
    long? LogStartOffset, long? LogEndOffset, long? ConsistentEndOffset, IReadOnlyList<SegmentGap> Gaps,
    IReadOnlyList<string> Problems, IReadOnlyList<string> Notes)
{
    /// <summary>A gap (or an older segment damaged inside) takes the partition offline at start-up.</summary>
    public bool Offline => Gaps.Count > 0;

    public bool Healthy => Problems.Count == 0;
}

/// <summary>What <see cref="StorageCheck.Run"/> found in a data directory.</summary>
/// <param name="DamagedTopicFiles">topic metadata files that cannot be read (the broker moves them aside and rebuilds the topic)</param>
/// <param name="ForeignDirectories">directories Cairn did not create; the broker leaves them alone</param>
public sealed record StorageReport(string DataDirectory, IReadOnlyList<PartitionCheck> Partitions, IReadOnlyList<string> DamagedTopicFiles,
    IReadOnlyList<string> ForeignDirectories, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes)
{
    [JsonIgnore] // already in Partitions (each with "offline")
    public IEnumerable<PartitionCheck> OfflinePartitions => Partitions.Where(p => p.Offline);

    public bool Healthy => Problems.Count == 0 && DamagedTopicFiles.Count == 0 && Partitions.All(p => p.Healthy);
}

/// <summary>
/// The offline check behind <c>cairn storage check</c>: reads a data directory the way start-up would (topic files,
/// partition directories, every segment's batches with their CRCs, indexes, the log start checkpoint) and reports what
/// it finds, changing nothing. Run it on a stopped broker's directory (see <see cref="DataDirectoryLock"/>).
/// </summary>
public static class StorageCheck
{
    private const int IndexInterval = 4096; // only used to build throw-away indexes during the walk

    public static StorageReport Run(string dataDirectory)
    {
        if (!Directory.Exists(dataDirectory)) throw new DirectoryNotFoundException($"no such data directory '{dataDirectory}'");
        var problems = new List<string>();
        var notes = new List<string>();
        var damagedTopicFiles = new List<string>();
        var topics = new Dictionary<string, TopicMetadata>(StringComparer.Ordinal);
        var topicsPath = Path.Combine(dataDirectory, LogManager.TopicsDirectory);
        if (Directory.Exists(topicsPath))
        {
            foreach (var path in Directory.EnumerateFiles(topicsPath).Order(StringComparer.Ordinal))
            {
                var file = Path.GetFileName(path);
                if (file.Contains(".json.damaged-", StringComparison.Ordinal)) { notes.Add($"{path}: a damaged topic file moved aside at an earlier start"); continue; }
                if (!file.EndsWith(".json", StringComparison.Ordinal)) continue;
                if (ReadTopicFile(path) is { } meta) topics[meta.Name] = meta;
                else damagedTopicFiles.Add(path);
            }
        }

        var partitions = new List<PartitionCheck>();
        var foreign = new List<string>();
        var seen = new HashSet<(string, int)>();
        foreach (var dir in Directory.EnumerateDirectories(dataDirectory).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(dir);
            if (name == LogManager.TopicsDirectory) continue;
            if (!PartitionIdentity.TryParseDirectoryName(name, out var topic, out var partition)) { foreign.Add(dir); continue; }
            if (PartitionIdentity.IsMarkedDeleted(dir)) { notes.Add($"{dir}: marked deleted; the broker finishes the deletion at start"); continue; }
            var identity = PartitionIdentity.TryRead(dir);
            if (topics.TryGetValue(topic, out var meta))
            {
                if (partition >= meta.Partitions) { foreign.Add(dir); continue; }
            }
            else if (identity is null ? !PartitionIdentity.HasSegmentFile(dir) : identity.Topic != topic || identity.Partition != partition)
            {
                foreign.Add(dir);
                continue;
            }
            else notes.Add($"{dir}: its topic has no readable metadata file; the broker rebuilds it from the partition directories at start");
            seen.Add((topic, partition));
            partitions.Add(CheckPartition(dir, topic, partition, identity));
        }
        foreach (var meta in topics.Values.OrderBy(m => m.Name, StringComparer.Ordinal))
            for (int p = 0; p < meta.Partitions; p++)
                if (!seen.Contains((meta.Name, p)))
                    problems.Add($"{meta.Name}-{p.ToString(CultureInfo.InvariantCulture)}: the partition directory is missing; the broker would start it empty");
        foreach (var dir in foreign) notes.Add($"{dir}: not a Cairn partition directory; the broker leaves it alone");
        return new StorageReport(dataDirectory, partitions, damagedTopicFiles, foreign, problems, notes);
    }

    /// <summary>A topic metadata file as start-up accepts it (a valid name matching the file name, at least one partition); null otherwise.</summary>
    internal static TopicMetadata? ReadTopicFile(string path)
    {
        var meta = FileIO.TryReadAll(path) is { } bytes ? TopicMetadata.TryParse(bytes) : null;
        return meta is null || TopicNames.Explain(meta.Name) is not null || meta.Partitions < 1
            || Path.GetFileNameWithoutExtension(path) != meta.Name ? null : meta;
    }

    /// <summary>Reads one partition directory (read-only): its segments, their chain, the log start checkpoint.</summary>
    public static PartitionCheck CheckPartition(string dir, string topic, int partition) =>
        CheckPartition(dir, topic, partition, PartitionIdentity.TryRead(dir));

    private static PartitionCheck CheckPartition(string dir, string topic, int partition, PartitionIdentity? identity)
    {
        var problems = new List<string>();
        var notes = new List<string>();
        var name = $"{topic}-{partition.ToString(CultureInfo.InvariantCulture)}";
        if (identity is null) notes.Add($"{name}: no readable {PartitionIdentity.FileName}; the broker writes it at start");
        else if (identity.Topic != topic || identity.Partition != partition)
            problems.Add($"{name}: {PartitionIdentity.FileName} names {identity.Topic}-{identity.Partition}");

        var bases = new List<long>();
        var indexes = new List<(string File, long Base)>();
        foreach (var path in Directory.EnumerateFiles(dir))
        {
            var file = Path.GetFileName(path);
            if (LogSegment.TryParseBaseOffset(file, LogSegment.LogSuffix, out var b)) bases.Add(b);
            else if (LogSegment.TryParseBaseOffset(file, LogSegment.IndexSuffix, out b) || LogSegment.TryParseBaseOffset(file, LogSegment.TimeIndexSuffix, out b))
                indexes.Add((file, b));
            else if (file.EndsWith(".tmp", StringComparison.Ordinal) || file.EndsWith(".deleted", StringComparison.Ordinal))
                notes.Add($"{name}: leftover file {file}; the broker removes it at start");
        }
        bases.Sort();
        foreach (var (file, b) in indexes.OrderBy(i => i.File, StringComparer.Ordinal))
            if (bases.BinarySearch(b) < 0) notes.Add($"{name}: index file {file} has no segment; the broker removes it at start");

        var segments = new List<SegmentCheck>(bases.Count);
        for (int i = 0; i < bases.Count; i++)
        {
            var seg = CheckSegment(dir, bases[i]);
            segments.Add(seg);
            bool last = i == bases.Count - 1;
            if (seg.Problem is not null)
            {
                var what = $"{name}: segment {seg.BaseOffset}: {seg.Problem}";
                if (seg.ValidBytes < seg.SizeBytes)
                    what += $"; {seg.SizeBytes - seg.ValidBytes} byte(s) from position {seg.ValidBytes} (after offset {seg.NextOffset - 1}) cannot be read";
                if (last) notes.Add(what + "; the broker truncates a torn tail of the last segment at start after an unclean shutdown");
                else problems.Add(what);
            }
            if (seg.IndexProblem is not null) notes.Add($"{name}: segment {seg.BaseOffset}: {seg.IndexProblem}; the broker rebuilds its indexes at start");
        }

        var gaps = new List<SegmentGap>();
        for (int i = 0; i + 1 < segments.Count; i++)
            if (segments[i].NextOffset != segments[i + 1].BaseOffset)
                gaps.Add(new SegmentGap(segments[i].BaseOffset, segments[i].NextOffset, segments[i + 1].BaseOffset));
        foreach (var g in gaps)
            problems.Add($"{name}: gap: segment {g.SegmentBaseOffset} ends at offset {g.EndsAt} but the next segment starts at {g.NextSegmentBaseOffset}; " +
                "the partition is offline ('cairn storage repair --truncate-at-gap' keeps what comes before the gap)");

        long? logStart = null, logEnd = null, consistentEnd = null;
        if (segments.Count > 0)
        {
            long checkpoint = new LogStartCheckpoint(Path.Combine(dir, PartitionLog.LogStartCheckpointFile), name, NullLogger.Instance).Read();
            logStart = Math.Max(checkpoint, segments[0].BaseOffset);
            logEnd = segments[^1].NextOffset;
            consistentEnd = gaps.Count > 0 ? gaps[0].EndsAt : logEnd;
            if (logStart > consistentEnd)
                problems.Add($"{name}: the log start offset checkpoint ({logStart}) is past the end of the consistent log ({consistentEnd})");
        }
        return new PartitionCheck(topic, partition, dir, segments, logStart, logEnd, consistentEnd, gaps, problems, notes);
    }

    /// <summary>Walks a segment's batches with their CRCs (read-only) and checks its indexes as an open would.</summary>
    private static SegmentCheck CheckSegment(string dir, long baseOffset)
    {
        var path = LogSegment.PathFor(dir, baseOffset, LogSegment.LogSuffix);
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileIO.Share);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            long size = 0;
            try { size = new FileInfo(path).Length; } catch (IOException) { }
            return new SegmentCheck(baseOffset, baseOffset, size, 0, $"unreadable: {e.Message}", null);
        }
        using (handle)
        {
            long size = RandomAccess.GetLength(handle);
            var scan = SegmentScan.Scan(handle, baseOffset, verifyCrc: true, IndexInterval, size);
            string? indexProblem = null;
            if (scan.ValidEnd == size)
            {
                var check = SegmentScan.QuickCheck(handle, baseOffset, size, LogSegment.PathFor(dir, baseOffset, LogSegment.IndexSuffix),
                    LogSegment.PathFor(dir, baseOffset, LogSegment.TimeIndexSuffix), out _, out var problem);
                if (check != SegmentScan.QuickCheckResult.Ok) indexProblem = problem;
            }
            return new SegmentCheck(baseOffset, scan.NextOffset, size, scan.ValidEnd, scan.Problem, indexProblem);
        }
    }
}
