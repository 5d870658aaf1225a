using System.Diagnostics;
using Cairn.Client;
using Cairn.Offsets;

namespace Cairn.Cli.Tool;

/// <summary>Reads the record at given offsets (the first one at or after each), for the lag in time of a group.</summary>
internal static class CommittedRecords
{
    /// <summary>
    /// The timestamp of the first record at or after each position (a position below the log start reads the first
    /// record still there). Partitions whose record does not arrive within <paramref name="budget"/> are left out.
    /// </summary>
    public static async Task<Dictionary<TopicPartition, DateTimeOffset>> TimestampsAsync(KafkaClientOptions clientOptions,
        IReadOnlyDictionary<TopicPartition, long> positions, TimeSpan budget, Action<string>? debug, CancellationToken cancellationToken)
    {
        var found = new Dictionary<TopicPartition, DateTimeOffset>();
        if (positions.Count == 0) return found;
        await using var consumer = new KafkaConsumer(clientOptions, new ConsumerOptions
        {
            AutoOffsetReset = AutoOffsetReset.Earliest,
            MaxWait = TimeSpan.FromMilliseconds(100),
            // One batch per partition is enough; the first batch comes whole even when larger.
            MaxPartitionBytes = 64 * 1024,
        });
        var remaining = positions.Keys.ToHashSet();
        consumer.Assign(remaining);
        foreach (var (tp, offset) in positions) await consumer.SeekAsync(tp, Offset.Sequence(offset), cancellationToken);
        var clock = Stopwatch.StartNew();
        while (remaining.Count > 0 && clock.Elapsed < budget)
        {
            ConsumeResult? r;
            try
            {
                r = await consumer.ConsumeAsync(budget - clock.Elapsed, cancellationToken);
            }
            catch (KafkaException e)
            {
                debug?.Invoke($"reading the records at the committed offsets: {e.Message}");
                if (e.TopicPartition is { } failed && remaining.Remove(failed))
                {
                    consumer.Assign(remaining);
                    continue;
                }
                break;
            }
            if (r is null) break;
            if (r.IsPartitionEof || !remaining.Remove(r.TopicPartition)) continue;
            found[r.TopicPartition] = r.Timestamp;
            consumer.Assign(remaining);
        }
        return found;
    }
}
