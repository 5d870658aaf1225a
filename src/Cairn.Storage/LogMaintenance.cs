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
