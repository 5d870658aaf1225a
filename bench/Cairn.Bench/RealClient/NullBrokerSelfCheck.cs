using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;
using Cairn.Protocol.Records;
using Confluent.Kafka.Admin;

namespace Cairn.Bench.RealClient;

/// <summary>
/// Drives a <see cref="NullBroker"/> with the real client (Confluent.Kafka over the system librdkafka): topic
/// creation, three producer runs (acks=1, acks=all, acks=all with idempotence) whose every delivery must succeed
/// with consecutive offsets, watermarks, then a 2-member consumer group over 4 partitions that must split the
/// partitions, read at least N whole records in offset order, and commit; finally a consumer reads a partition nothing
/// was produced to, which replays the options' FetchBatch. Any failed check makes it FAIL.
/// </summary>
internal static class NullBrokerSelfCheck
{
    private const int RecordBytes = 1024;
    private const int Partitions = 4;
    private const string Topic = "null-broker-selfcheck";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan LateJoin = TimeSpan.FromSeconds(2);

    public static async Task<int> RunAsync(string[] args)
    {
        int records = 20_000;
        string? debug = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--records": records = NullBrokerCommands.Number("--records", NullBrokerCommands.Value(args, ref i), 1, 10_000_000); break;
                case "--debug": debug = NullBrokerCommands.Value(args, ref i); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        Console.WriteLine($"librdkafka {SystemLibrdkafka.EnsureLoaded()}");
        var failures = new List<string>();
        await using (var broker = NullBroker.Start(new NullBrokerOptions { FetchBatch = ReplayBatch() }))
        {
            try
            {
                await RunChecksAsync(broker, records, debug, failures);
            }
            catch (Exception e)
            {
                failures.Add($"{e.GetType().Name}: {e.Message}");
            }
            if (broker.Error is { } error) failures.Add($"the null broker closed a connection: {error.GetType().Name}: {error.Message}");
            Console.WriteLine($"null broker: {broker.ProducedBatches} batches / {broker.ProducedBytes} bytes produced, {broker.FetchedBytes} bytes fetched");
        }
        try
        {
            await CheckSinkAsync(records, debug, failures);
        }
        catch (Exception e)
        {
            failures.Add($"sink: {e.GetType().Name}: {e.Message}");
        }
        foreach (var failure in failures) Console.WriteLine($"  failed: {failure}");
        Console.WriteLine(failures.Count == 0 ? "PASS" : "FAIL");
        return failures.Count == 0 ? 0 : 1;
    }

    private static async Task RunChecksAsync(NullBroker broker, int records, string? debug, List<string> failures)
    {
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers, Debug = debug }).Build())
        {
            var spec = new TopicSpecification { Name = Topic, NumPartitions = Partitions, ReplicationFactor = 1 };
            await admin.CreateTopicsAsync([spec]);
            try
            {
                await admin.CreateTopicsAsync([spec]);
                failures.Add("creating the topic twice succeeded");
            }
            catch (CreateTopicsException e) when (e.Results[0].Error.Code == ErrorCode.TopicAlreadyExists) { }
            var metadata = admin.GetMetadata(Topic, TimeSpan.FromSeconds(10));
            if (metadata.Topics[0].Partitions.Count != Partitions) failures.Add($"metadata lists {metadata.Topics[0].Partitions.Count} partitions");
            var unknown = admin.GetMetadata("no-such-topic", TimeSpan.FromSeconds(10)).Topics[0].Error.Code;
            if (unknown != ErrorCode.UnknownTopicOrPart) failures.Add($"metadata of an unknown topic answered {unknown}");
        }

        var next = new long[Partitions];
        foreach (var (name, acks, idempotent) in new[] { ("acks=1", Acks.Leader, false), ("acks=all", Acks.All, false), ("acks=all idempotent", Acks.All, true) })
        {
            var watch = Stopwatch.StartNew();
            Produce(broker, records, acks, idempotent, debug, next, failures, name);
            Console.WriteLine($"{name}: {records} records delivered in {watch.Elapsed.TotalSeconds:F2} s");
        }

        Consume(broker, records, debug, next, failures);
        broker.AddTopic(ReplayTopic, 1);
        ConsumeReplay(broker, records, debug, failures);
    }

    /// <summary>With a sink file and fsync on ack, the file holds exactly the acknowledged batches (topic auto-created).</summary>
    private static async Task CheckSinkAsync(int records, string? debug, List<string> failures)
    {
        string path = Path.Combine(Path.GetTempPath(), $"null-broker-sink-{Environment.ProcessId}.bin");
        try
        {
            // The topic is auto-created by the producer's Metadata request, with DefaultPartitions partitions.
            await using var broker = NullBroker.Start(new NullBrokerOptions { SinkFile = path, FsyncOnAck = true, AutoCreateTopics = true, DefaultPartitions = Partitions });
            var next = new long[Partitions];
            var watch = Stopwatch.StartNew();
            Produce(broker, records, Acks.All, idempotent: false, debug, next, failures, "sink acks=all fsync");
            long length = new FileInfo(path).Length;
            Console.WriteLine($"sink acks=all fsync: {records} records delivered in {watch.Elapsed.TotalSeconds:F2} s, {length} bytes in the sink file");
            if (length != broker.ProducedBytes || length < (long)records * RecordBytes)
                failures.Add($"sink: the file holds {length} bytes, {broker.ProducedBytes} were acknowledged for {records} records");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private const string ReplayTopic = "null-broker-selfcheck-replay";
    private const int ReplayBatchRecords = 100;

    /// <summary>The options' FetchBatch: 100 records of 1 KiB, each value filled with its index.</summary>
    private static byte[] ReplayBatch()
    {
        using var builder = new RecordBatchBuilder();
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < ReplayBatchRecords; i++)
        {
            var value = new byte[RecordBytes];
            value.AsSpan().Fill((byte)i);
            builder.Append(now, key: null, value);
        }
        return builder.Build();
    }

    /// <summary>A partition nothing was produced to replays FetchBatch: a consumer (no group) reads N records from offset 0, in order.</summary>
    private static void ConsumeReplay(NullBroker broker, int records, string? debug, List<string> failures)
    {
        var config = new ConsumerConfig { BootstrapServers = broker.BootstrapServers, GroupId = "null-broker-selfcheck-replay", EnableAutoCommit = false, Debug = debug };
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(config).Build();
        consumer.Assign(new TopicPartitionOffset(ReplayTopic, 0, 0));
        var deadline = Stopwatch.StartNew();
        long read = 0, wrong = 0;
        while (read < records && deadline.Elapsed < Deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is null || result.IsPartitionEOF) continue;
            var value = result.Message.Value;
            if (result.Offset.Value != read || value.Length != RecordBytes || value[0] != (byte)(read % ReplayBatchRecords) || value[^1] != value[0]) wrong++;
            read++;
        }
        consumer.Close();
        if (read < records) failures.Add($"replay: read {read} of {records} records within {Deadline.TotalSeconds} s");
        if (wrong > 0) failures.Add($"replay: {wrong} records were not the FetchBatch's records at the expected offsets");
        Console.WriteLine($"replay: {read} records of FetchBatch read from {ReplayTopic}");
    }

    /// <summary>Every delivery must succeed; each partition's offsets continue exactly where the previous run ended, in produce order.</summary>
    private static void Produce(NullBroker broker, int records, Acks acks, bool idempotent, string? debug, long[] next, List<string> failures, string name)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers, Acks = acks, EnableIdempotence = idempotent, LingerMs = 5, BatchSize = 1_000_000, Debug = debug,
        };
        var reports = new ConcurrentQueue<DeliveryReport<Null, byte[]>>();
        var filler = new byte[RecordBytes];
        Random.Shared.NextBytes(filler);
        using (var producer = new ProducerBuilder<Null, byte[]>(config).Build())
        {
            var deadline = Stopwatch.StartNew();
            for (int i = 0; i < records; i++)
            {
                while (true)
                {
                    try
                    {
                        // The value starts with the record's sequence number, so offsets can be matched to produce order.
                        var value = (byte[])filler.Clone();
                        BinaryPrimitives.WriteInt32BigEndian(value, i);
                        producer.Produce(new TopicPartition(Topic, i % Partitions), new Message<Null, byte[]> { Value = value }, reports.Enqueue);
                        break;
                    }
                    catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull && deadline.Elapsed < Deadline)
                    {
                        producer.Poll(TimeSpan.FromMilliseconds(10));
                    }
                }
            }
            int left = producer.Flush(Deadline);
            if (left > 0) failures.Add($"{name}: {left} records still undelivered after {Deadline.TotalSeconds} s");
        }
        if (reports.Count != records) failures.Add($"{name}: {reports.Count} delivery reports for {records} records");
        // Reports come in offset order per partition only from one polling thread (Flush polls too), so sort them.
        int misplaced = 0;
        string? example = null;
        foreach (var partition in reports.Where(r => !r.Error.IsError).GroupBy(r => r.Partition.Value))
        {
            int p = partition.Key, previousSequence = -1;
            foreach (var report in partition.OrderBy(r => r.Offset.Value))
            {
                int sequence = BinaryPrimitives.ReadInt32BigEndian(report.Message.Value);
                if (report.Offset.Value != next[p] || sequence <= previousSequence)
                {
                    misplaced++;
                    example ??= $"record {sequence} at offset {report.Offset.Value} of partition {p} where {next[p]} was next after record {previousSequence}";
                }
                next[p] = report.Offset.Value + 1;
                previousSequence = sequence;
            }
        }
        int errors = reports.Count(r => r.Error.IsError);
        if (errors > 0) failures.Add($"{name}: {errors} deliveries failed, e.g. {reports.First(r => r.Error.IsError).Error}");
        if (misplaced > 0) failures.Add($"{name}: {misplaced} deliveries did not get the next offset of their partition in produce order, e.g. {example}");
    }

    /// <summary>Two members of one group must split the 4 partitions and together read at least N records, each of them whole and in offset order.</summary>
    private static void Consume(NullBroker broker, int records, string? debug, long[] produced, List<string> failures)
    {
        long consumed = 0;
        var counts = new long[2];
        using var bothDone = new Barrier(2);
        var assignments = new List<TopicPartition>[2];
        var problems = new ConcurrentQueue<string>();
        string finalAssignment = "none";
        using var done = new CancellationTokenSource(Deadline);
        var members = Enumerable.Range(0, 2).Select(member => Task.Factory.StartNew(() =>
        {
            var config = new ConsumerConfig
            {
                BootstrapServers = broker.BootstrapServers, GroupId = "null-broker-selfcheck", AutoOffsetReset = AutoOffsetReset.Earliest,
                EnableAutoCommit = false, Debug = debug, ClientId = $"selfcheck-{member}",
            };
            var last = new Dictionary<int, long>();
            using var consumer = new ConsumerBuilder<Ignore, byte[]>(config)
                .SetPartitionsAssignedHandler((_, partitions) => { lock (assignments) assignments[member] = partitions; last.Clear(); })
                .SetPartitionsRevokedHandler((_, _) => { lock (assignments) assignments[member] = []; })
                .SetErrorHandler((_, e) => { if (e.IsFatal) problems.Enqueue($"member {member}: {e}"); })
                .Build();
            // The second member joins a group that is already stable, so the first learns of the rebalance by heartbeat and rejoins.
            if (member == 1) Thread.Sleep(LateJoin);
            consumer.Subscribe(Topic);
            while (!done.IsCancellationRequested)
            {
                var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
                if (result is null || result.IsPartitionEOF) continue;
                int p = result.Partition.Value;
                if (result.Message.Value.Length != RecordBytes) problems.Enqueue($"member {member}: a {result.Message.Value.Length}-byte value at {result.TopicPartitionOffset}");
                if (last.TryGetValue(p, out long previous) && result.Offset.Value != previous + 1)
                    problems.Enqueue($"member {member}: offset {result.Offset.Value} after {previous} on partition {p}");
                last[p] = result.Offset.Value;
                Interlocked.Increment(ref counts[member]);
                // Done once the group has read enough and both members hold partitions and have read from them.
                if (Interlocked.Increment(ref consumed) >= records && Split(assignments) && Interlocked.Read(ref counts[1 - member]) > 0)
                {
                    lock (assignments) finalAssignment = string.Join(" and ", assignments.Select(a => $"[{string.Join(", ", a.Select(tp => tp.Partition.Value))}]"));
                    done.Cancel();
                }
            }
            if (Interlocked.Read(ref counts[member]) > 0)
            {
                var committed = consumer.Commit();
                var read = consumer.Committed(TimeSpan.FromSeconds(10));
                foreach (var c in committed)
                {
                    var back = read.FirstOrDefault(r => r.TopicPartition == c.TopicPartition);
                    if (back is null || back.Offset != c.Offset) problems.Enqueue($"member {member}: committed {c}, read back {back?.Offset.ToString() ?? "nothing"}");
                }
                foreach (var tp in consumer.Assignment)
                {
                    var marks = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
                    if (marks.Low != 0 || marks.High != produced[tp.Partition.Value])
                        problems.Enqueue($"member {member}: watermarks {marks.Low}..{marks.High} of {tp}, expected 0..{produced[tp.Partition.Value]}");
                }
            }
            else problems.Enqueue($"member {member} read nothing");
            // Neither leaves (which starts a rebalance) before both have committed.
            bothDone.SignalAndWait(TimeSpan.FromSeconds(30));
            consumer.Close();
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(members);
        if (Interlocked.Read(ref consumed) < records) failures.Add($"the group read {consumed} of {records} records within {Deadline.TotalSeconds} s");
        failures.AddRange(problems.Distinct().Take(10));
        Console.WriteLine($"group: {consumed} records read by 2 members, partitions {finalAssignment}");
    }

    /// <summary>Both members hold partitions and together all of them, each once.</summary>
    private static bool Split(List<TopicPartition>[] assignments)
    {
        lock (assignments)
        {
            if (assignments.Any(a => a is null || a.Count == 0)) return false;
            var all = assignments.SelectMany(a => a).Select(tp => tp.Partition.Value).ToList();
            return all.Count == Partitions && all.Distinct().Count() == Partitions;
        }
    }
}
