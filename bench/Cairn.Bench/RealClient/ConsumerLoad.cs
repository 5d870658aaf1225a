using System.Diagnostics;
using Confluent.Kafka;

namespace Cairn.Bench.RealClient;

/// <summary>One consume phase.</summary>
/// <param name="UseGroup">Subscribe as members of one consumer group (Cairn); else each member is assigned its share of the
/// partitions from offset 0 (the null broker has no group coordinator).</param>
/// <param name="Records">Records to read over all members (what the topic holds).</param>
internal sealed record ConsumeSpec(string Topic, int Partitions, int Members, bool UseGroup, long Records, TimeSpan Duration);

internal sealed record ConsumeResult(long Records, long Bytes, TimeSpan Elapsed)
{
    public double RecordsPerSecond => Elapsed > TimeSpan.Zero ? Records / Elapsed.TotalSeconds : 0;
    public double MBps => Elapsed > TimeSpan.Zero ? Bytes / 1e6 / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Drives Confluent.Kafka consumers, each on its own thread, until together they have read the topic's records or the
/// time cap passes. The clock starts once every member holds partitions (after the group's first rebalance), so the
/// figure is steady-state reading, not group formation; records read before that are not counted.
/// </summary>
internal static class ConsumerLoad
{
    public static ConsumeResult Run(string bootstrap, ConsumeSpec spec, CancellationToken ct)
    {
        SystemLibrdkafka.EnsureLoaded();
        var members = new Member[spec.Members];
        var shared = new Shared(spec.Members);
        shared.BytesSoFar = () => members.Sum(m => m?.Bytes ?? 0);
        var deadline = TimeSpan.FromSeconds(30) + spec.Duration; // joining a group takes seconds (initial rebalance delay)
        var phase = Stopwatch.StartNew();
        try
        {
            for (int i = 0; i < members.Length; i++) members[i] = new Member(i, Build(bootstrap, spec, shared, i), shared);
            if (!spec.UseGroup)
            {
                for (int i = 0; i < members.Length; i++)
                {
                    var mine = Enumerable.Range(0, spec.Partitions).Where(p => p % spec.Members == i)
                        .Select(p => new TopicPartitionOffset(spec.Topic, p, 0)).ToList();
                    members[i].Consumer.Assign(mine);
                    shared.Assigned(i);
                }
            }
            else foreach (var m in members) m.Consumer.Subscribe(spec.Topic);

            var threads = members.Select(m => new Thread(() => m.Run(spec, phase, deadline, ct)) { IsBackground = true, Name = $"bench-consumer-{m.Index}" }).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            ct.ThrowIfCancellationRequested();
            var failure = members.Select(m => m.Failure).FirstOrDefault(f => f is not null);
            if (failure is not null) throw new BenchFailure($"consume failed: {failure}");
            if (shared.Start == 0) throw new BenchFailure($"not every member of {spec.Members} was assigned partitions within {deadline.TotalSeconds:0} s");
            long records = shared.Total() - shared.CountedBefore;
            long bytes = members.Sum(m => m.Bytes) - shared.BytesBefore;
            long last = members.Max(m => m.LastRecord);
            return new ConsumeResult(records, bytes, Stopwatch.GetElapsedTime(shared.Start, Math.Max(last, shared.Start + 1)));
        }
        finally
        {
            Parallel.ForEach(members.Where(m => m is not null), m =>
            {
                try { if (spec.UseGroup) m.Consumer.Close(); } catch (KafkaException) { }
                m.Consumer.Dispose();
            });
        }
    }

    private static IConsumer<Ignore, byte[]> Build(string bootstrap, ConsumeSpec spec, Shared shared, int index)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = $"cairn-bench-consumer-{index}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = false,
            SocketNagleDisable = true,
        };
        if (spec.UseGroup) config.GroupId = $"cairn-bench-{spec.Topic}";
        else config.EnableAutoCommit = false; // no group.id, no coordinator: nothing to commit to
        var builder = new ConsumerBuilder<Ignore, byte[]>(config);
        if (spec.UseGroup)
            builder.SetPartitionsAssignedHandler((_, partitions) => { if (partitions.Count > 0) shared.Assigned(index); });
        return builder.Build();
    }

    /// <summary>State the members share: who holds partitions, when the clock started, and the running counts.</summary>
    private sealed class Shared(int members)
    {
        private readonly bool[] _assigned = new bool[members];
        private readonly long[] _counts = new long[members * 16]; // one cache line per member
        private readonly Lock _gate = new();
        private int _assignedCount;
        private long _start;

        public long Start => Volatile.Read(ref _start);
        public long CountedBefore { get; private set; }
        public long BytesBefore { get; private set; }
        public Func<long>? BytesSoFar { get; set; }

        public void Publish(int member, long count) => Volatile.Write(ref _counts[member * 16], count);

        public long Total()
        {
            long sum = 0;
            for (int i = 0; i < _counts.Length; i += 16) sum += Volatile.Read(ref _counts[i]);
            return sum;
        }

        public void Assigned(int member)
        {
            lock (_gate)
            {
                if (_assigned[member]) return;
                _assigned[member] = true;
                if (++_assignedCount < _assigned.Length) return;
                CountedBefore = Total();
                BytesBefore = BytesSoFar?.Invoke() ?? 0;
                Volatile.Write(ref _start, Stopwatch.GetTimestamp());
            }
        }
    }

    private sealed class Member(int index, IConsumer<Ignore, byte[]> consumer, Shared shared)
    {
        private long _bytes;
        public int Index { get; } = index;
        public IConsumer<Ignore, byte[]> Consumer { get; } = consumer;
        public string? Failure { get; private set; }
        public long Bytes => Volatile.Read(ref _bytes);
        public long LastRecord { get; private set; }

        public void Run(ConsumeSpec spec, Stopwatch phase, TimeSpan deadline, CancellationToken ct)
        {
            long count = 0;
            var poll = TimeSpan.FromMilliseconds(100);
            try
            {
                while (!ct.IsCancellationRequested && phase.Elapsed < deadline)
                {
                    long start = shared.Start;
                    if (start != 0 && Stopwatch.GetElapsedTime(start) > spec.Duration) break;
                    var result = Consumer.Consume(poll);
                    if (result is not null)
                    {
                        count++;
                        Volatile.Write(ref _bytes, _bytes + (result.Message.Value?.Length ?? 0));
                        LastRecord = Stopwatch.GetTimestamp();
                        shared.Publish(Index, count);
                    }
                    // Summing the members' counts on every record would cost more than reading it.
                    if ((result is null || (count & 1023) == 0) && shared.Total() >= spec.Records) break;
                }
            }
            catch (ConsumeException e)
            {
                Failure = $"{e.Error.Code} {e.Error.Reason}";
            }
        }
    }
}
