using System.Diagnostics;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Testing;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Cairn.Bench.RealClient;

/// <summary>
/// The real-client mode: Confluent.Kafka producers and consumers against a `cairn serve` the bench starts
/// (log.flush.on.ack=true, so acks=all is durable and acks=1 stays in the page cache) and, in the same round, against the
/// in-process <see cref="NullBroker"/> (the client's ceiling; for acks=all a TCP->file sink that fsyncs per ack). Each
/// Cairn figure is reported as a ratio to its baseline measured right before it.
/// </summary>
internal sealed class RealClientBench(RealClientOptions options)
{
    internal const string Subject = "subject";
    internal const string Baseline = "baseline";

    private readonly List<PhaseRecord> _records = [];
    private readonly List<string> _issues = [];
    private readonly List<string> _notes = [];
    private BrokerProcess? _broker;
    private IAdminClient? _admin;
    private string _scratch = "";
    private int _round;
    private CancellationToken _ct;

    public async Task<int> RunAsync(CancellationToken ct)
    {
        _ct = ct;
        var header = RunHeader.Capture(options);
        var total = Stopwatch.StartNew();
        _scratch = Path.Combine(Path.GetTempPath(), $"cairn-bench-realclient-{Environment.ProcessId}");
        Directory.CreateDirectory(_scratch);
        try
        {
            header.Librdkafka = SystemLibrdkafka.EnsureLoaded();
            var cairn = await BenchBroker.LocateCairnAsync(options.Cairn, options.NoBuild);
            _broker = await BenchBroker.StartAsync(cairn, flushOnAck: true, TimeSpan.FromSeconds(60));
            _admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _broker.Bootstrap }).Build();
            for (_round = 0; _round < options.Rounds; _round++)
            {
                ct.ThrowIfCancellationRequested();
                await RunRoundAsync();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _issues.Add("interrupted");
        }
        catch (Exception e)
        {
            _issues.Add($"bench aborted: {Bench.Describe(e)}\n{Bench.Indent(e.StackTrace ?? "")}");
        }
        finally
        {
            _admin?.Dispose();
            if (_broker is not null)
            {
                try
                {
                    // A broker that does not stop cleanly on SIGTERM is a finding of the run, with its last words.
                    int code = await _broker.StopAsync(TimeSpan.FromSeconds(30));
                    if (code != 0) _issues.Add($"broker exited with code {code} after SIGTERM; last log lines:\n{Bench.Indent(_broker.Tail(30))}");
                }
                catch (TimeoutException e) { _issues.Add(Bench.Trim(e.Message, 30)); }
                await _broker.DisposeAsync();
                foreach (var line in _broker.ProblemLines()) _issues.Add($"broker log: {line}");
            }
            try { Directory.Delete(_scratch, recursive: true); } catch { }
        }
        header.Finish(total.Elapsed);
        var report = new RealClientReport(header, _records, _issues, _notes);
        Console.Out.Write(report.Markdown());
        if (options.JsonPath is { } json)
        {
            await File.WriteAllTextAsync(json, report.Json(), CancellationToken.None);
            Console.Error.WriteLine($"[bench] results written to {json}");
        }
        return _issues.Count == 0 ? 0 : 1;
    }

    private async Task RunRoundAsync()
    {
        Console.Error.WriteLine($"[bench] round {_round + 1} of {options.Rounds}");
        var kept = new List<string>();
        var maxima = new Dictionary<(string Acks, int Size, Shape Shape), (double RecordsPerSecond, string Topic, long Records)>();
        try
        {
            // Produce: null broker then Cairn, for every configuration.
            foreach (var acks in options.Acks)
            foreach (var size in options.Sizes)
            foreach (var shape in options.Shapes)
            {
                string config = $"acks={acks}, {SizeLabel(size)}, {shape.Describe()}";
                var spec = new ProduceSpec("", shape.Partitions, shape.Producers, size, ToAcks(acks), 5, options.Duration, options.MaxRecords);
                await Phase("produce", config, Baseline, () => OnNullAsync(writeSink: acks == "all", fsync: acks == "all", shape.Partitions, null, spec));
                string topic = await CreateTopicAsync($"acks{acks}-{size}b-{shape}", shape.Partitions);
                kept.Add(topic);
                var cairn = await Phase("produce", config, Subject, () => Task.FromResult(ToRecord(ProducerLoad.Run(_broker!.Bootstrap, spec with { Topic = topic }, _ct))));
                if (cairn.Error is null) maxima[(acks, size, shape)] = (cairn.RecordsPerSecond, topic, cairn.Records + (long)shape.Partitions * shape.Producers);
                if (acks == "1")
                {
                    // The disk path: the null broker appending every batch to a file (no fsync, page cache as Cairn's
                    // acks=1), the same client. Cairn's figure above is compared with it in a table of its own.
                    await Phase("disk", config, Baseline, () => OnNullAsync(writeSink: true, fsync: false, shape.Partitions, null, spec));
                    _records.Add(cairn with { Kind = "disk" });
                }
            }

            int size0 = options.Sizes[0];
            var single = new Shape(1, 1);
            // Latency at half of Cairn's maximum for the configuration, the same offered load against both.
            var rates = new Dictionary<string, double>();
            foreach (var acks in options.Acks)
            {
                if (!maxima.TryGetValue((acks, size0, single), out var max))
                {
                    _notes.Add($"round {_round + 1}: no latency for acks={acks}: no {SizeLabel(size0)} 1x1 produce figure from Cairn in this round");
                    continue;
                }
                double rate = Math.Max(100, max.RecordsPerSecond / 2);
                rates[acks] = rate;
                string config = $"acks={acks}, {SizeLabel(size0)}, 1 partition, 1 producer, linger.ms {options.LatencyLingerMs(acks)}";
                var spec = new ProduceSpec("", 1, 1, size0, ToAcks(acks), options.LatencyLingerMs(acks), options.Duration, options.MaxRecords, rate, MeasureLatency: true);
                await Phase("latency", config, Baseline, () => OnNullAsync(writeSink: acks == "all", fsync: acks == "all", 1, null, spec), rate);
                string topic = await CreateTopicAsync($"lat-acks{acks}", 1);
                kept.Add(topic);
                await Phase("latency", config, Subject, () => Task.FromResult(ToRecord(ProducerLoad.Run(_broker!.Bootstrap, spec with { Topic = topic }, _ct))), rate);
            }

            // Consume what the acks=1 produce phases wrote: a 4-member group on 16 partitions next to one consumer on 1.
            string acksC = options.Acks.Contains("1") ? "1" : options.Acks[0];
            foreach (var (shape, members) in new[] { (single, 1), (new Shape(16, 4), 4) })
            {
                if (!maxima.TryGetValue((acksC, size0, shape), out var filled))
                {
                    if (_round == 0) _notes.Add($"no consume phase for {shape.Partitions} partition(s): shape {shape} was not produced (--shapes)");
                    continue;
                }
                string config = $"{SizeLabel(size0)}, {shape.Partitions} partition{(shape.Partitions == 1 ? "" : "s")}, " +
                                (members == 1 ? "1 consumer" : $"{members}-member group");
                await Phase("consume", config, Baseline, () => ConsumeOnNullAsync(shape.Partitions, members, size0, filled.Records));
                await Phase("consume", config, Subject, () => Task.FromResult(ToRecord(ConsumerLoad.Run(_broker!.Bootstrap,
                    new ConsumeSpec(filled.Topic, shape.Partitions, members, UseGroup: true, filled.Records, options.Duration), _ct))));
            }

            if (options.IdleConnections > 0 && rates.TryGetValue(acksC, out var latencyRate))
            {
                // A twentieth of one producer's maximum (latencyRate is already half of it): ten producers with linger.ms 0
                // over 16 partitions send many small requests, and at a quarter of the maximum they saturated a 2-core
                // machine in every round (p99 ~2.3 s with and without idle connections). This rate leaves headroom, so the
                // phase measures what idle connections cost, not a saturated broker's queueing.
                double idleRate = latencyRate / 10;
                string config = $"acks={acksC}, {SizeLabel(size0)}, 16 partitions, 10 producers, linger.ms {options.LatencyLingerMs(acksC)}: " +
                                $"{options.IdleConnections:#,0} idle connections vs none";
                var spec = new ProduceSpec(await CreateTopicAsync("idle", 16), 16, 10, size0, ToAcks(acksC), options.LatencyLingerMs(acksC),
                    options.Duration, options.MaxRecords, idleRate, MeasureLatency: true);
                kept.Add(spec.Topic);
                await Phase("idle", config, Baseline, () => Task.FromResult(ToRecord(ProducerLoad.Run(_broker!.Bootstrap, spec, _ct))), idleRate);
                await Phase("idle", config, Subject, () => WithIdleConnectionsAsync(() => ToRecord(ProducerLoad.Run(_broker!.Bootstrap, spec, _ct))), idleRate);
            }
        }
        finally
        {
            await DeleteTopicsAsync(kept);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Null broker phases

    private async Task<PhaseRecord> OnNullAsync(bool writeSink, bool fsync, int partitions, ReadOnlyMemory<byte>? fetchBatch, ProduceSpec spec)
    {
        string? sink = writeSink ? Path.Combine(_scratch, $"sink-{Guid.NewGuid():N}.bin") : null;
        try
        {
            await using var broker = NullBroker.Start(new NullBrokerOptions
            {
                DefaultPartitions = partitions,
                SinkFile = sink,
                FsyncOnAck = fsync,
                FetchBatch = fetchBatch ?? default,
            });
            const string topic = "cairn-bench-null";
            broker.AddTopic(topic, partitions);
            var record = await Task.Run(() => ToRecord(ProducerLoad.Run(broker.BootstrapServers, spec with { Topic = topic }, _ct)));
            return broker.Error is { } e ? throw new BenchFailure($"null broker closed a connection: {Bench.Describe(e)}") : record;
        }
        finally
        {
            if (sink is not null) try { File.Delete(sink); } catch (IOException) { }
        }
    }

    private async Task<PhaseRecord> ConsumeOnNullAsync(int partitions, int members, int size, long records)
    {
        await using var broker = NullBroker.Start(new NullBrokerOptions { DefaultPartitions = partitions, FetchBatch = FetchBatch(size) });
        const string topic = "cairn-bench-null";
        broker.AddTopic(topic, partitions);
        var record = await Task.Run(() => ToRecord(ConsumerLoad.Run(broker.BootstrapServers,
            new ConsumeSpec(topic, partitions, members, UseGroup: true, records, options.Duration), _ct)));
        return broker.Error is { } e ? throw new BenchFailure($"null broker closed a connection: {Bench.Describe(e)}") : record;
    }

    /// <summary>A v2 batch of about 1 MB (the producer's batch.size) of records of <paramref name="size"/> bytes, for the null broker to replay.</summary>
    private static byte[] FetchBatch(int size)
    {
        var value = new byte[size];
        new Random(size).NextBytes(value);
        int count = Math.Max(1, 1_000_000 / (size + 16));
        using var builder = new RecordBatchBuilder(CompressionCodec.None, count * (size + 16) + 1024);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < count; i++) builder.Append(now, (byte[]?)null, value);
        return builder.Build();
    }

    // ------------------------------------------------------------------------------------------------
    // Idle connections

    /// <summary>
    /// Opens the idle connections (each sends one ApiVersions request and waits for its answer, as a client that connected
    /// and went quiet), runs <paramref name="run"/>, and closes them.
    /// </summary>
    private async Task<PhaseRecord> WithIdleConnectionsAsync(Func<PhaseRecord> run)
    {
        var idle = new List<PipelinedConnection>(options.IdleConnections);
        try
        {
            var endPoint = _broker!.EndPoint;
            var request = new ApiVersionsRequest { ClientSoftwareName = "cairn-bench-idle", ClientSoftwareVersion = "1.0" };
            for (int opened = 0; opened < options.IdleConnections; opened += 50)
            {
                var batch = await Task.WhenAll(Enumerable.Range(0, Math.Min(50, options.IdleConnections - opened)).Select(async _ =>
                {
                    var conn = await PipelinedConnection.ConnectAsync(endPoint, "cairn-bench-idle", _ct);
                    lock (idle) idle.Add(conn);
                    return (await conn.CallAsync<ApiVersionsRequest, ApiVersionsResponse>(ApiKey.ApiVersions, 3, request, _ct)).ErrorCode;
                }));
                if (batch.FirstOrDefault(e => e != 0) is var error and not 0)
                    throw new BenchFailure($"idle connection: ApiVersions error {(Cairn.Protocol.ErrorCode)error}");
            }
            Console.Error.Write($"({idle.Count} idle connections open) ");
            var result = await Task.Run(run);
            // Every idle connection must still answer, or the phase measured fewer connections than it claims.
            await Task.WhenAll(idle.Select(c => c.CallAsync<ApiVersionsRequest, ApiVersionsResponse>(ApiKey.ApiVersions, 3, request, _ct)));
            return result;
        }
        finally
        {
            foreach (var conn in idle) await conn.DisposeAsync();
        }
    }

    // ------------------------------------------------------------------------------------------------

    private async Task<PhaseRecord> Phase(string kind, string config, string role, Func<Task<PhaseRecord>> run, double? rate = null)
    {
        await Bench.SettleAsync();
        string target = kind == "idle" ? (role == Subject ? $"Cairn + {options.IdleConnections} idle" : "Cairn")
            : role == Subject ? "Cairn" : kind == "disk" ? "TCP->file sink" : "null broker";
        Console.Error.Write($"[bench]   {kind} {config} on {target} ... ");
        PhaseRecord record;
        try
        {
            if (_broker?.ExitCode is { } code) throw new BenchFailure($"broker exited with code {code}:\n{Bench.Indent(_broker.Tail(20))}");
            record = await run();
            Console.Error.WriteLine($"{record.RecordsPerSecond:#,0} records/s, {record.MBps:0.0} MB/s" +
                                    (record.P99Ms is { } p99 ? $", p50 {record.P50Ms:0.00} ms, p99 {p99:0.00} ms" : ""));
        }
        catch (Exception e) when (!_ct.IsCancellationRequested)
        {
            record = new PhaseRecord { Error = Bench.Describe(e) };
            _issues.Add($"round {_round + 1}, {kind} {config} on {target}: {record.Error}");
            Console.Error.WriteLine($"FAILED: {record.Error}");
        }
        record = record with { Round = _round, Kind = kind, Config = config, Role = role, Target = target, RateLimit = rate };
        _records.Add(record);
        return record;
    }

    private static PhaseRecord ToRecord(ProduceResult r) => new()
    {
        Records = r.Records, Bytes = r.Bytes, Seconds = r.Elapsed.TotalSeconds,
        P50Ms = r.Latency.PercentileMs(0.5), P99Ms = r.Latency.PercentileMs(0.99), P999Ms = r.Latency.PercentileMs(0.999),
        Latency = r.Latency.Count > 0 ? r.Latency : null,
    };

    private static PhaseRecord ToRecord(ConsumeResult r) => new() { Records = r.Records, Bytes = r.Bytes, Seconds = r.Elapsed.TotalSeconds };

    private async Task<string> CreateTopicAsync(string suffix, int partitions)
    {
        string name = $"cairn-bench-rc-{Environment.ProcessId:x}-r{_round + 1}-{suffix}";
        await _admin!.CreateTopicsAsync([new TopicSpecification
        {
            Name = name, NumPartitions = partitions, ReplicationFactor = 1,
            // batch.size 1 MB plus batch overhead exceeds Kafka's default max.message.bytes (1048588)
            Configs = new Dictionary<string, string> { ["max.message.bytes"] = "2000000" },
        }]);
        return name;
    }

    /// <summary>Deletes a round's topics so the data directory does not grow round after round.</summary>
    private async Task DeleteTopicsAsync(List<string> topics)
    {
        if (topics.Count == 0 || _admin is null || _broker?.ExitCode is not null) return;
        try { await _admin.DeleteTopicsAsync(topics); }
        catch (DeleteTopicsException e) { _issues.Add($"DeleteTopics: {string.Join(", ", e.Results.Where(r => r.Error.IsError).Select(r => $"{r.Topic}: {r.Error.Reason}"))}"); }
    }

    private static Acks ToAcks(string acks) => acks == "all" ? Acks.All : Acks.Leader;
    internal static string SizeLabel(int size) => size == 1024 ? "1 KiB" : $"{size} B";
}

/// <summary>One measured phase (one round, one role).</summary>
internal sealed record PhaseRecord
{
    public int Round { get; init; }
    public string Kind { get; init; } = "";
    public string Config { get; init; } = "";
    public string Role { get; init; } = "";
    public string Target { get; init; } = "";
    public double? RateLimit { get; init; }
    public long Records { get; init; }
    public long Bytes { get; init; }
    public double Seconds { get; init; }
    public double RecordsPerSecond => Seconds > 0 ? Records / Seconds : 0;
    public double MBps => Seconds > 0 ? Bytes / 1e6 / Seconds : 0;
    public double? P50Ms { get; init; }
    public double? P99Ms { get; init; }
    public double? P999Ms { get; init; }
    [System.Text.Json.Serialization.JsonIgnore] public LatencyHistogram? Latency { get; init; }
    public string? Error { get; init; }
}
