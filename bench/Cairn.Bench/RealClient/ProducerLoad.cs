using System.Diagnostics;
using Confluent.Kafka;

namespace Cairn.Bench.RealClient;

/// <summary>One produce phase: who produces what, for how long.</summary>
/// <param name="RatePerSecond">Records per second over all producers (paced per millisecond); null: as fast as the client goes.</param>
/// <param name="MeasureLatency">Record each message's time from Produce() to its delivery report.</param>
internal sealed record ProduceSpec(string Topic, int Partitions, int Producers, int RecordSize, Acks Acks, int LingerMs,
    TimeSpan Duration, long MaxRecords, double? RatePerSecond = null, bool MeasureLatency = false);

internal sealed record ProduceResult(long Records, long Bytes, TimeSpan Elapsed, LatencyHistogram Latency)
{
    public double RecordsPerSecond => Elapsed > TimeSpan.Zero ? Records / Elapsed.TotalSeconds : 0;
    public double MBps => Elapsed > TimeSpan.Zero ? Bytes / 1e6 / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Drives Confluent.Kafka producers (over the system librdkafka) at a broker: each producer on its own thread calls
/// Produce() in a loop, round-robin over the topic's partitions, until the phase's time or record bound; then every
/// producer is flushed. Throughput counts delivery reports, from the first Produce() to the last report; any delivery
/// error fails the phase. Connections and metadata are set up before the clock starts (one record per partition,
/// awaited), so the phase measures the steady state.
/// </summary>
internal static class ProducerLoad
{
    /// <summary>Per-producer queue bound: enough 1 MB batches that the producer never starves, small enough to flush quickly.</summary>
    private const int QueueKbytes = 64 * 1024;
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(60);

    public static ProducerConfig Config(string bootstrap, Acks acks, int lingerMs) => new()
    {
        BootstrapServers = bootstrap,
        ClientId = "cairn-bench-producer",
        Acks = acks,
        LingerMs = lingerMs,
        BatchSize = 1_000_000,
        // message.max.bytes caps the batch (librdkafka); the bench topics allow 2000000 (max.message.bytes).
        MessageMaxBytes = 2_000_000,
        QueueBufferingMaxKbytes = QueueKbytes,
        QueueBufferingMaxMessages = 1_000_000,
        SocketNagleDisable = true,
        EnableIdempotence = false,
    };

    public static ProduceResult Run(string bootstrap, ProduceSpec spec, CancellationToken ct)
    {
        SystemLibrdkafka.EnsureLoaded();
        var payload = new byte[spec.RecordSize];
        new Random(spec.RecordSize).NextBytes(payload); // incompressible, and nothing compresses anyway
        var partitions = Enumerable.Range(0, spec.Partitions).Select(p => new TopicPartition(spec.Topic, new Partition(p))).ToArray();
        var latency = new LatencyHistogram();
        var workers = new Worker[spec.Producers];
        try
        {
            for (int i = 0; i < workers.Length; i++)
                workers[i] = new Worker(new ProducerBuilder<Null, byte[]>(Config(bootstrap, spec.Acks, spec.LingerMs)).Build(), payload, latency);
            WarmUp(workers, partitions, ct);

            long perProducer = Math.Max(1, spec.MaxRecords / spec.Producers);
            double? ratePerProducer = spec.RatePerSecond / spec.Producers;
            long start = Stopwatch.GetTimestamp();
            var threads = workers.Select((w, i) => new Thread(() => w.Produce(partitions, i, start, spec.Duration, perProducer, ratePerProducer, spec.MeasureLatency, ct))
            { IsBackground = true, Name = $"bench-producer-{i}" }).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            foreach (var w in workers)
            {
                int left = w.Producer.Flush(FlushTimeout);
                if (left > 0) throw new BenchFailure($"{left} records not delivered {FlushTimeout.TotalSeconds:0} s after the phase ended");
            }
            ct.ThrowIfCancellationRequested();
            var failure = workers.Select(w => w.Failure).FirstOrDefault(f => f is not null);
            if (failure is not null) throw new BenchFailure($"delivery failed: {failure}");
            long delivered = workers.Sum(w => w.Delivered);
            long last = workers.Max(w => w.LastDelivery);
            var elapsed = Stopwatch.GetElapsedTime(start, Math.Max(last, start + 1));
            return new ProduceResult(delivered, delivered * (long)spec.RecordSize, elapsed, latency);
        }
        finally
        {
            foreach (var w in workers) w?.Producer.Dispose();
        }
    }

    /// <summary>One awaited record per partition and producer: connections open, metadata and leaders known.</summary>
    private static void WarmUp(Worker[] workers, TopicPartition[] partitions, CancellationToken ct)
    {
        var sends = workers.SelectMany(w => partitions.Select(tp => w.Producer.ProduceAsync(tp, w.Message, ct))).ToArray();
        try
        {
            if (!Task.WaitAll(sends, 60_000, ct)) throw new BenchFailure("warm-up records not delivered within 60 s");
        }
        catch (AggregateException e) when (e.InnerException is ProduceException<Null, byte[]> p)
        {
            throw new BenchFailure($"warm-up delivery failed: {p.Error.Code} {p.Error.Reason}");
        }
    }

    private sealed class Worker
    {
        private readonly LatencyHistogram _latency;
        private readonly Action<DeliveryReport<Null, byte[]>> _onDelivered;
        private long _delivered;
        private long _lastDelivery;

        public Worker(IProducer<Null, byte[]> producer, byte[] payload, LatencyHistogram latency)
        {
            Producer = producer;
            // One message object, re-used: Produce() copies the value into librdkafka and reads nothing back.
            Message = new Message<Null, byte[]> { Value = payload };
            _latency = latency;
            _onDelivered = OnDelivered;
        }

        public IProducer<Null, byte[]> Producer { get; }
        public Message<Null, byte[]> Message { get; }
        public string? Failure { get; private set; }
        public long Delivered => Volatile.Read(ref _delivered);
        public long LastDelivery => Volatile.Read(ref _lastDelivery);

        // Delivery reports of one producer arrive on its single poll thread.
        private void OnDelivered(DeliveryReport<Null, byte[]> report)
        {
            if (report.Error.IsError)
            {
                Failure ??= $"{report.TopicPartition}: {report.Error.Code} {report.Error.Reason}";
                return;
            }
            Volatile.Write(ref _delivered, _delivered + 1);
            Volatile.Write(ref _lastDelivery, Stopwatch.GetTimestamp());
        }

        public void Produce(TopicPartition[] partitions, int offset, long start, TimeSpan duration, long maxRecords, double? rate,
            bool measureLatency, CancellationToken ct)
        {
            long sent = 0;
            int next = offset % partitions.Length;
            long durationTicks = (long)(duration.TotalSeconds * Stopwatch.Frequency);
            while (sent < maxRecords && Failure is null && !ct.IsCancellationRequested)
            {
                long now = Stopwatch.GetTimestamp();
                if (now - start >= durationTicks) break;
                if (rate is { } r && sent >= r * (now - start) / Stopwatch.Frequency)
                {
                    Thread.Sleep(1); // paced per millisecond: at most ~1 ms of records leave together
                    continue;
                }
                var tp = partitions[next];
                try
                {
                    if (measureLatency)
                    {
                        // The closure carries the send time; the client allocates per message anyway (its delivery shim).
                        long sentAt = now;
                        Producer.Produce(tp, Message, report =>
                        {
                            if (!report.Error.IsError) _latency.RecordSince(sentAt);
                            OnDelivered(report);
                        });
                    }
                    else Producer.Produce(tp, Message, _onDelivered);
                }
                catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    Thread.Sleep(1); // the client's queue is full: the broker side is the bottleneck, which is what is measured
                    continue;
                }
                sent++;
                if (++next == partitions.Length) next = 0;
            }
        }
    }
}
