using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// The data directory's background work: retention on every partition every retention check interval, and the
/// flush.ms interval flushes for topics that set it (woken only as often as some topic needs).
/// </summary>
internal sealed class LogMaintenance(Func<IEnumerable<TopicLog>> topics, StorageOptions options, TimeProvider time, ILogger logger)
{
    /// <summary>Applies retention to every partition; returns what was deleted (partitions with deletions only).</summary>
    public IReadOnlyList<(string Topic, int Partition, RetentionResult Result)> ApplyRetention(DateTimeOffset now)
    {
        var results = new List<(string, int, RetentionResult)>();
        foreach (var topic in topics())
            foreach (var p in topic.Partitions)
            {
                try
                {
                    var r = p.ApplyRetention(now);
                    if (r.SegmentsDeleted > 0) results.Add((topic.Name, p.Partition, r));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    logger.LogError(e, "Retention on {Topic}-{Partition} failed", topic.Name, p.Partition);
                }
            }
        return results;
    }

    /// <summary>Runs until <paramref name="ct"/> fires.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var retentionInterval = options.RetentionCheckInterval <= TimeSpan.Zero ? TimeSpan.FromMinutes(5) : options.RetentionCheckInterval;
        var flushInterval = options.FlushCheckInterval <= TimeSpan.Zero ? TimeSpan.FromSeconds(1) : options.FlushCheckInterval;
        var nextRetention = time.GetUtcNow() + retentionInterval;
        while (!ct.IsCancellationRequested)
        {
            bool anyIntervalFlush = false;
            foreach (var topic in topics())
                if (topic.Config.FlushMs != long.MaxValue) { anyIntervalFlush = true; break; }
            var untilRetention = nextRetention - time.GetUtcNow();
            if (untilRetention < TimeSpan.Zero) untilRetention = TimeSpan.Zero;
            var delay = anyIntervalFlush && flushInterval < untilRetention ? flushInterval : untilRetention;
            try
            {
                await Task.Delay(delay, time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var now = time.GetUtcNow();
            try
            {
                foreach (var topic in topics())
                    if (topic.Config.FlushMs != long.MaxValue)
                        foreach (var p in topic.Partitions) p.FlushIfDue(now);
                if (now >= nextRetention)
                {
                    ApplyRetention(now);
                    nextRetention = now + retentionInterval;
                }
            }
            catch (Exception e)
            {
                logger.LogError(e, "Background log maintenance failed");
            }
        }
    }
}

/// <summary>
/// Partition directories nobody owns, left over from an interrupted topic deletion or partition creation: found
/// by name (&lt;topic&gt;-&lt;partition&gt;) and content (segments, a checkpoint or marker, or nothing) and removed at startup.
/// </summary>
internal static class OrphanedPartitions
{
    public static void Delete(string dataDir, Func<string, int, bool> isOwned, ILogger logger)
    {
        foreach (var dir in Directory.EnumerateDirectories(dataDir))
        {
            var name = Path.GetFileName(dir);
            if (!TryParsePartitionDirectory(name, out var topicName, out var partition)) continue;
            if (isOwned(topicName, partition)) continue;
            if (!LooksLikePartitionDirectory(dir)) continue;
            logger.LogWarning("Deleting orphaned partition directory {Directory}", dir);
            try { Directory.Delete(dir, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning(e, "Could not delete {Directory}", dir);
            }
        }
    }

    private static bool TryParsePartitionDirectory(string name, out string topic, out int partition)
    {
        topic = "";
        partition = -1;
        int dash = name.LastIndexOf('-');
        if (dash <= 0 || dash == name.Length - 1) return false;
        if (!int.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out partition)) return false;
        topic = name[..dash];
        return TopicNames.IsValid(topic);
    }

    private static bool LooksLikePartitionDirectory(string dir)
    {
        foreach (var f in Directory.EnumerateFiles(dir))
        {
            var n = Path.GetFileName(f);
            if (n.EndsWith(LogSegment.LogSuffix, StringComparison.Ordinal) || n == PartitionLog.LogStartCheckpointFile
                || n == PartitionLog.CleanShutdownFile)
                return true;
        }
        return !Directory.EnumerateFileSystemEntries(dir).Any();
    }
}
