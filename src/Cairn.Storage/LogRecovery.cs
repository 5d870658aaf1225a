using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// Opening a partition directory: drops leftovers (temp files, orphaned indexes), opens the segments (the active one
/// with a full CRC walk and truncation of a torn tail after an unclean shutdown; damaged indexes are rebuilt),
/// takes the partition offline at a gap between segments, reconciles the log start offset checkpoint, and restores the
/// idempotent-producer state from the clean-shutdown snapshot or by replaying the last segments.
/// </summary>
internal static class LogRecovery
{
    /// <summary>Fills <paramref name="state"/> from disk; returns the offset below which everything is known to be fsynced.</summary>
    public static long Recover(PartitionState state)
    {
        var dir = state.Directory;
        var logger = state.Logger;
        var name = state.Name;
        // A partition being created has nothing to recover: report it as new, not as an unclean shutdown.
        bool isNew = !Directory.Exists(dir) || !Directory.EnumerateFileSystemEntries(dir).Any();
        Directory.CreateDirectory(dir);
        var markerPath = Path.Combine(dir, PartitionLog.CleanShutdownFile);
        bool clean = File.Exists(markerPath);
        long nowMs = state.NowMs;

        var bases = ListSegmentBases(dir, logger, name);
        long checkpoint = state.Checkpoint.Read();
        var cfg = state.Config;
        var segments = new List<LogSegment>(bases.Count + 1);
        long durable;
        try
        {
            for (int i = 0; i < bases.Count; i++)
            {
                bool active = i == bases.Count - 1;
                segments.Add(LogSegment.Open(dir, bases[i], active, fullRecovery: active && !clean, cfg.IndexIntervalBytes, state.Files, logger, name, nowMs, out _));
            }
            ThrowAtFirstGap(segments, name);

            long next = segments.Count > 0 ? segments[^1].NextOffset : Math.Max(0, checkpoint);
            long logStart = Math.Max(Math.Max(0, checkpoint), segments.Count > 0 ? segments[0].BaseOffset : next);
            if (logStart > next)
            {
                logger.LogWarning("{Partition}: log start offset {LogStart} is past the recovered log end {Next}; starting an empty log at {LogStart}",
                    name, logStart, next, logStart);
                foreach (var s in segments) { s.CloseHandles(); s.DeleteFiles(); }
                segments.Clear();
                next = logStart;
            }
            if (segments.Count == 0)
                segments.Add(LogSegment.Create(dir, next, state.Files, logger, name));

            state.Segments = segments.ToArray();
            state.Active = state.Segments[^1];
            state.NextOffset = next;
            state.LogStartOffset = logStart;
            durable = clean ? next : state.Active.BaseOffset;
            foreach (var s in state.Segments) s.IndexInterval = cfg.IndexIntervalBytes;
        }
        catch
        {
            foreach (var s in segments) s.CloseHandles();
            throw;
        }

        RestoreProducerState(state, clean, isNew);

        if (checkpoint != state.LogStartOffset) state.Checkpoint.Write(ref state.LogStartOffset);
        else state.Checkpoint.Assume(checkpoint);
        FileIO.TryDelete(markerPath);
        if (isNew) logger.LogInformation("{Partition}: created", name);
        else logger.LogInformation("{Partition}: opened ({Shutdown} shutdown), {Segments} segment(s), log start {LogStart}, log end {LogEnd}",
            name, clean ? "clean" : "unclean", state.Segments.Length, state.LogStartOffset, state.NextOffset);
        return durable;
    }

    /// <summary>Base offsets of the .log files, sorted; deletes temp files and index files without a segment.</summary>
    private static List<long> ListSegmentBases(string dir, ILogger logger, string name)
    {
        var bases = new List<long>();
        var indexFiles = new List<(string Path, long Base)>();
        foreach (var path in Directory.EnumerateFiles(dir))
        {
            var file = Path.GetFileName(path);
            if (file.EndsWith(".tmp", StringComparison.Ordinal) || file.EndsWith(".deleted", StringComparison.Ordinal))
            {
                FileIO.TryDelete(path);
                continue;
            }
            if (LogSegment.TryParseBaseOffset(file, LogSegment.LogSuffix, out var b)) bases.Add(b);
            else if (LogSegment.TryParseBaseOffset(file, LogSegment.IndexSuffix, out b)
                     || LogSegment.TryParseBaseOffset(file, LogSegment.TimeIndexSuffix, out b))
                indexFiles.Add((path, b));
        }
        bases.Sort();
        foreach (var (path, b) in indexFiles)
            if (bases.BinarySearch(b) < 0)
            {
                logger.LogWarning("{Partition}: deleting index file without a segment: {File}", name, Path.GetFileName(path));
                FileIO.TryDelete(path);
            }
        return bases;
    }

    /// <summary>
    /// Segments must chain. A gap means a segment file is missing or lost its tail; which side is right only an operator
    /// can tell, so nothing is changed and the partition goes offline (the caller closes the segments).
    /// </summary>
    private static void ThrowAtFirstGap(List<LogSegment> segments, string name)
    {
        for (int i = 0; i + 1 < segments.Count; i++)
        {
            if (segments[i].NextOffset == segments[i + 1].BaseOffset) continue;
            throw new PartitionOfflineException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{name}: segment {segments[i].BaseOffset} ends at offset {segments[i].NextOffset} but the next segment starts at " +
                $"{segments[i + 1].BaseOffset} (a segment file is missing or truncated); the partition is offline and every file is left in place"));
        }
    }

    /// <summary>Producer state: the clean-shutdown snapshot, else a replay of the last two segments' batch headers.</summary>
    private static void RestoreProducerState(PartitionState state, bool clean, bool isNew)
    {
        var producers = state.Producers;
        var segments = state.Segments;
        var snapshot = clean ? FileIO.TryReadAll(Path.Combine(state.Directory, PartitionLog.ProducerSnapshotFile)) : null;
        if (snapshot is null || !producers.TryLoad(snapshot, state.NextOffset))
        {
            producers.Clear();
            int batches = 0;
            for (int i = Math.Max(0, segments.Length - 2); i < segments.Length; i++)
                segments[i].WalkHeaders(h => { batches++; producers.Replay(h); });
            // Not for a partition without batches in its last segments (most of them, with thousands of partitions).
            if (producers.Count > 0 || (!clean && !isNew && batches > 0))
                state.Logger.LogInformation("{Partition}: rebuilt producer state ({Producers} producers) from {Batches} batches",
                    state.Name, producers.Count, batches);
        }
        producers.RemoveBefore(state.LogStartOffset);
    }
}
