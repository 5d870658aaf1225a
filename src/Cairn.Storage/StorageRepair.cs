using System.Globalization;

namespace Cairn.Storage;

/// <summary>One file a repair moved: from the partition directory into its aside directory (or a tail cut off into a new file there).</summary>
public sealed record MovedFile(string From, string To, long Bytes);

/// <summary>What <see cref="StorageRepair.TruncateAtGap"/> did to one partition.</summary>
/// <param name="AsideDirectory">where everything removed from the log went (nothing is deleted); null when nothing was done</param>
/// <param name="NewLogEndOffset">the log end the broker will find: the end of the segments kept</param>
/// <param name="Refused">why the partition was left as it is; null when it was repaired</param>
public sealed record PartitionRepair(string Topic, int Partition, string? AsideDirectory, IReadOnlyList<MovedFile> Moved,
    long? OldLogEndOffset, long? NewLogEndOffset, string? Refused);

/// <summary>
/// <c>cairn storage repair --truncate-at-gap</c>: makes an offline partition consistent by keeping its segments before
/// the first gap (or before the first damage inside an older segment) and moving everything after it, with the
/// indexes, into <c>&lt;partition&gt;/.truncated-&lt;unix ms&gt;/</c>. Nothing is deleted: an operator who finds the
/// missing segment can put the files back. Run it on a stopped broker's directory (see <see cref="DataDirectoryLock"/>).
/// </summary>
public static class StorageRepair
{
    public const string AsidePrefix = ".truncated-";

    /// <summary>
    /// Repairs the partitions of <paramref name="dataDirectory"/> that need it (only <paramref name="topic"/>'s, only its
    /// <paramref name="partition"/>, when given). Returns one entry per partition that needed a repair (none when none did).
    /// </summary>
    public static IReadOnlyList<PartitionRepair> TruncateAtGap(string dataDirectory, string? topic, int? partition, DateTimeOffset now)
    {
        var report = StorageCheck.Run(dataDirectory);
        var wanted = report.Partitions.Where(p => (topic is null || p.Topic == topic) && (partition is null || p.Partition == partition)).ToList();
        if (topic is not null && partition is not null && wanted.Count == 0)
            throw new ArgumentException($"no partition directory for {topic}-{partition} in {dataDirectory}");
        var results = new List<PartitionRepair>();
        foreach (var p in wanted)
        {
            if (CutIndex(p) is { } cut) results.Add(Repair(p, cut, now));
        }
        return results;
    }

    /// <summary>The last segment to keep: the one ending at the first gap or holding damage before the last segment; null when consistent.</summary>
    private static int? CutIndex(PartitionCheck p)
    {
        for (int i = 0; i + 1 < p.Segments.Count; i++)
        {
            var s = p.Segments[i];
            if (s.ValidBytes < s.SizeBytes || s.NextOffset != p.Segments[i + 1].BaseOffset) return i;
        }
        return null;
    }

    private static PartitionRepair Repair(PartitionCheck p, int cut, DateTimeOffset now)
    {
        var kept = p.Segments[cut];
        if (p.LogStartOffset is { } start && start > kept.NextOffset)
            return new PartitionRepair(p.Topic, p.Partition, null, [], p.LogEndOffset, null,
                $"its log start offset ({start}) is past the end of the segments before the gap ({kept.NextOffset}): nothing readable would be left; " +
                "put the missing segment back instead");
        if (kept.Problem is not null && kept.Problem.StartsWith("unreadable", StringComparison.Ordinal))
            return new PartitionRepair(p.Topic, p.Partition, null, [], p.LogEndOffset, null,
                $"segment {kept.BaseOffset} cannot be opened ({kept.Problem}); fix its permissions first");

        var dir = p.Directory;
        var aside = Path.Combine(dir, AsidePrefix + now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(aside);
        var moved = new List<MovedFile>();

        void MoveAside(string file)
        {
            var from = Path.Combine(dir, file);
            if (!File.Exists(from)) return;
            var to = Path.Combine(aside, file);
            long bytes = new FileInfo(from).Length;
            File.Move(from, to);
            moved.Add(new MovedFile(from, to, bytes));
        }

        // The damaged end of the last segment kept: copied (and fsynced) into the aside directory before it is cut off.
        if (kept.ValidBytes < kept.SizeBytes)
        {
            var logPath = LogSegment.PathFor(dir, kept.BaseOffset, LogSegment.LogSuffix);
            var tailPath = Path.Combine(aside, Path.GetFileName(logPath) + ".tail-from-byte-" + kept.ValidBytes.ToString(CultureInfo.InvariantCulture));
            using (var log = File.OpenHandle(logPath, FileMode.Open, FileAccess.ReadWrite, FileIO.Share))
            {
                using (var source = new FileStream(log, FileAccess.ReadWrite) { Position = kept.ValidBytes })
                using (var tail = new FileStream(tailPath, FileMode.CreateNew, FileAccess.Write))
                {
                    source.CopyTo(tail);
                    tail.Flush(flushToDisk: true);
                    RandomAccess.SetLength(log, kept.ValidBytes);
                    RandomAccess.FlushToDisk(log);
                }
            }
            moved.Add(new MovedFile(logPath, tailPath, kept.SizeBytes - kept.ValidBytes));
        }
        // Its indexes may point past its new end: set aside, the broker rebuilds them.
        if (kept.ValidBytes < kept.SizeBytes || cut < p.Segments.Count - 1)
        {
            MoveAside(Path.GetFileName(LogSegment.PathFor(dir, kept.BaseOffset, LogSegment.IndexSuffix)));
            MoveAside(Path.GetFileName(LogSegment.PathFor(dir, kept.BaseOffset, LogSegment.TimeIndexSuffix)));
        }
        for (int i = cut + 1; i < p.Segments.Count; i++)
            foreach (var suffix in (string[])[LogSegment.LogSuffix, LogSegment.IndexSuffix, LogSegment.TimeIndexSuffix])
                MoveAside(Path.GetFileName(LogSegment.PathFor(dir, p.Segments[i].BaseOffset, suffix)));
        // The clean-shutdown marker and producer snapshot describe the old end: without them the broker walks the new
        // last segment batch by batch and rebuilds the producer state from what is kept.
        MoveAside(PartitionLog.CleanShutdownFile);
        MoveAside(PartitionLog.ProducerSnapshotFile);
        FileIO.FlushDirectory(aside);
        FileIO.FlushDirectory(dir);
        return new PartitionRepair(p.Topic, p.Partition, aside, moved, p.LogEndOffset, kept.NextOffset, null);
    }
}

/// <summary>
/// The data directory's <c>.lock</c>, taken as a broker takes it (exclusively), so an offline tool never works on
/// files a running broker has open, and no broker starts while it does.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    private readonly FileStream _lock;

    private DataDirectoryLock(FileStream lockFile) => _lock = lockFile;

    /// <summary>Takes the lock; <see cref="DataDirectoryInUseException"/> when a broker (or another tool) holds it.</summary>
    public static DataDirectoryLock Acquire(string dataDirectory)
    {
        if (!Directory.Exists(dataDirectory)) throw new DirectoryNotFoundException($"no such data directory '{dataDirectory}'");
        try
        {
            return new DataDirectoryLock(new FileStream(Path.Combine(dataDirectory, LogManager.LockFileName), FileMode.OpenOrCreate,
                FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new DataDirectoryInUseException(
                $"data directory {dataDirectory} is in use (a running broker holds its {LogManager.LockFileName}); stop the broker first", e);
        }
    }

    public void Dispose() => _lock.Dispose();
}

/// <summary>The data directory is locked by a running broker.</summary>
public sealed class DataDirectoryInUseException(string message, Exception inner) : IOException(message, inner);
