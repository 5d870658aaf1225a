using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Cairn.Bench;
using Cairn.Bench.RealClient;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Testing;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

if (args.Length > 0 && args[0] is "null-broker" or "null-broker-selfcheck")
    return await Cairn.Bench.RealClient.NullBrokerCommands.RunAsync(args);

if (args.Length > 0 && args[0] == "commits")
    return await RunModeAsync("cairn-bench commits", () => CommitBenchOptions.Parse(args[1..]), CommitBenchOptions.Usage, o => o.Help,
        (o, ct) => new CommitBench(o).RunAsync(ct));
if (args.Length > 0 && args[0] == "footprint")
    return await RunModeAsync("cairn-bench footprint", () => FootprintOptions.Parse(args[1..]), FootprintOptions.Usage, o => o.Help,
        (o, ct) => new FootprintBench(o).RunAsync(ct));
if (args.Contains("--client"))
    return await RunModeAsync("cairn-bench --client", () => RealClientOptions.Parse(args), RealClientOptions.Usage, o => o.Help,
        (o, ct) => new RealClientBench(o).RunAsync(ct));
return await RunModeAsync("cairn-bench", () => BenchOptions.Parse(args), BenchOptions.Usage, o => o.Help,
    (o, ct) => new Bench(o).RunAsync(ct));

// Parses a mode's options (usage and exit code 2 on a bad argument), prints its usage for --help, else runs it until
// done or Ctrl+C.
static async Task<int> RunModeAsync<TOptions>(string name, Func<TOptions> parse, string usage, Func<TOptions, bool> help,
    Func<TOptions, CancellationToken, Task<int>> run)
{
    TOptions options;
    try
    {
        options = parse();
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{name}: {e.Message}");
        Console.Error.WriteLine(usage);
        return 2;
    }
    if (help(options))
    {
        Console.WriteLine(usage);
        return 0;
    }
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
    return await run(options, cancel.Token);
}

namespace Cairn.Bench
{
    internal sealed class BenchOptions
    {
        public const string Usage = """
            usage: dotnet run -c Release --project bench/Cairn.Bench -- [--bootstrap 127.0.0.1:9092 | --start-broker] [options]
                   dotnet run -c Release --project bench/Cairn.Bench -- commits [options]   (OffsetCommit benchmark; commits --help)
                   dotnet run -c Release --project bench/Cairn.Bench -- --client librdkafka [options]   (real client; --client librdkafka --help)
              --bootstrap HOST:PORT   broker to measure (loopback only; default 127.0.0.1:9092)
              --start-broker          start `cairn serve` on a free 127.0.0.1 port (no admin HTTP server) with
                                      --set log.flush.on.ack=true and a temporary data dir, stop it (SIGTERM) at the end
              --baseline-only         measure only the baselines
              --total-mb N            bound of each measured phase, in MB of record batches (default 512)
              --seconds N             time cap of each measured phase (default 10)
              --rounds N              repeat baseline+broker phases N times, report medians (default 3)
              --budget-seconds N      start no new round once the run would exceed this (default 170; >= 1 round)
              --in-flight N           requests outstanding per connection (default 4)
              --batch-bytes N         size of the record batch in each produce request (default 1000000)
              --sizes A,B             record value sizes in bytes (default 100,1024)
              --fetch-max-bytes N     fetch partition_max_bytes and max_bytes (default 1048576)
              --cairn PATH            the cairn executable to start (default: `cairn` on PATH, else
                                      src/Cairn.Cli/bin/Release/net10.0/cairn, built first)
              --no-build              with --start-broker, do not build src/Cairn.Cli when no cairn is on PATH
              --keep-topics           with --bootstrap, do not delete the bench topics afterwards
            """;

        public IPEndPoint? Bootstrap { get; private set; } = new(IPAddress.Loopback, 9092);
        public bool StartBroker { get; private set; }
        public bool BaselineOnly { get; private set; }
        public long TotalMb { get; private set; } = 512;
        public double Seconds { get; private set; } = 10;
        public int Rounds { get; private set; } = 3;
        public double BudgetSeconds { get; private set; } = 170;
        public int InFlight { get; private set; } = 4;
        public int BatchBytes { get; private set; } = 1_000_000;
        public int[] Sizes { get; private set; } = [100, 1024];
        public int FetchMaxBytes { get; private set; } = 1024 * 1024;
        public string? Cairn { get; private set; }
        public bool NoBuild { get; private set; }
        public bool KeepTopics { get; private set; }
        public bool Help { get; private set; }

        public static BenchOptions Parse(string[] args)
        {
            var o = new BenchOptions();
            bool bootstrapGiven = false;
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--bootstrap": o.Bootstrap = ParseEndPoint(Next()); bootstrapGiven = true; break;
                    case "--start-broker": o.StartBroker = true; break;
                    case "--baseline-only": o.BaselineOnly = true; break;
                    case "--total-mb": o.TotalMb = ParseLong(args[i], Next(), 1, 1_000_000); break;
                    case "--seconds": o.Seconds = ParseLong(args[i], Next(), 1, 3600); break;
                    case "--rounds": o.Rounds = (int)ParseLong(args[i], Next(), 1, 100); break;
                    case "--budget-seconds": o.BudgetSeconds = ParseLong(args[i], Next(), 1, 86400); break;
                    case "--in-flight": o.InFlight = (int)ParseLong(args[i], Next(), 1, 64); break;
                    case "--batch-bytes": o.BatchBytes = (int)ParseLong(args[i], Next(), 4096, 16_000_000); break;
                    case "--sizes": o.Sizes = Next().Split(',').Select(s => (int)ParseLong("--sizes", s, 1, 1_000_000)).ToArray(); break;
                    case "--fetch-max-bytes": o.FetchMaxBytes = (int)ParseLong(args[i], Next(), 1024, 64 * 1024 * 1024); break;
                    case "--cairn": o.Cairn = Next(); break;
                    case "--no-build": o.NoBuild = true; break;
                    case "--keep-topics": o.KeepTopics = true; break;
                    case "-h" or "--help": o.Help = true; break;
                    default: throw new ArgumentException($"unknown argument '{args[i]}'");
                }
            }
            if (o.StartBroker && bootstrapGiven) throw new ArgumentException("--bootstrap and --start-broker exclude each other");
            if (o.StartBroker || o.BaselineOnly) o.Bootstrap = null;
            if (o.FetchMaxBytes < o.BatchBytes) throw new ArgumentException("--fetch-max-bytes must hold one batch (>= --batch-bytes)");
            return o;
        }

        private static long ParseLong(string name, string value, long min, long max) =>
            long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
                ? v : throw new ArgumentException($"{name} must be an integer in [{min}, {max}], got '{value}'");

        private static IPEndPoint ParseEndPoint(string value)
        {
            int colon = value.LastIndexOf(':');
            if (colon <= 0) throw new ArgumentException($"--bootstrap must be HOST:PORT, got '{value}'");
            var host = value[..colon];
            var address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var a) ? a : null;
            if (address is null || !IPAddress.IsLoopback(address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
                throw new ArgumentException($"only 127.0.0.1 is allowed, got '{host}'");
            return new IPEndPoint(address, (int)ParseLong("--bootstrap port", value[(colon + 1)..], 1, 65535));
        }
    }

    /// <summary>API versions agreed with the broker (ApiVersions), and what it says about durability.</summary>
    internal sealed record BrokerSession(IPEndPoint EndPoint, short ProduceVersion, short FetchVersion, short CreateTopicsVersion,
        short? DeleteTopicsVersion, bool? FlushOnAck);

    internal sealed class Bench(BenchOptions options)
    {
        private readonly List<PhaseResult> _results = [];
        private readonly List<string> _issues = [];
        private readonly List<string> _createdTopics = [];
        private BrokerProcess? _broker;
        private BrokerSession? _session;
        private string _brokerLabel = "";
        private readonly List<string> _notes = [];
        private int _roundsRun;
        private string _loadAtStart = "";

        private Limits LimitsFor(int round) => new(options.TotalMb * 1_000_000, TimeSpan.FromSeconds(options.Seconds), options.InFlight,
            round == 0 ? Warmup.Jit : Warmup.Short, ResponseTimeout: TimeSpan.FromSeconds(60));

        private CancellationToken _ct;

        public async Task<int> RunAsync(CancellationToken ct)
        {
            _ct = ct;
            var total = Stopwatch.StartNew();
            _loadAtStart = LoadAverage();
            var scratch = Path.Combine(Path.GetTempPath(), $"cairn-bench-baseline-{Environment.ProcessId}");
            Directory.CreateDirectory(scratch);
            try
            {
                await SetUpBrokerAsync(ct);
                // The broker it was asked to start is not there: its issue says why, and baselines alone measure nothing asked for.
                int rounds = options.StartBroker && _session is null ? 0 : options.Rounds;
                var measuring = Stopwatch.StartNew();
                for (int round = 0; round < rounds; round++)
                {
                    if (round > 0)
                    {
                        var perRound = measuring.Elapsed / round;
                        if (total.Elapsed + perRound > TimeSpan.FromSeconds(options.BudgetSeconds))
                        {
                            _notes.Add($"ran {round} of {options.Rounds} rounds: another (~{perRound.TotalSeconds:0} s) would exceed the {options.BudgetSeconds:0} s budget");
                            break;
                        }
                    }
                    _roundsRun = round + 1;
                    foreach (int size in options.Sizes)
                    {
                        ct.ThrowIfCancellationRequested();
                        await RunSizeAsync(size, round, scratch, ct);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                _issues.Add("interrupted");
            }
            catch (Exception e)
            {
                _issues.Add($"bench aborted: {Describe(e)}\n{Indent(e.StackTrace ?? "")}");
            }
            finally
            {
                if (_broker is not null)
                {
                    await _broker.DisposeAsync();
                    foreach (var line in _broker.ProblemLines()) _issues.Add($"broker log: {line}");
                }
                try { Directory.Delete(scratch, recursive: true); } catch { }
            }
            Console.Out.Write(Report(total.Elapsed));
            return _issues.Count == 0 ? 0 : 1;
        }

        // ------------------------------------------------------------------------------------------------
        // Broker setup

        private async Task SetUpBrokerAsync(CancellationToken ct)
        {
            IPEndPoint? endPoint = options.Bootstrap;
            if (options.StartBroker)
            {
                string cairn;
                try
                {
                    cairn = await BenchBroker.LocateCairnAsync(options.Cairn, options.NoBuild);
                }
                catch (BenchFailure e)
                {
                    _issues.Add($"--start-broker: {e.Message}");
                    return;
                }
                try
                {
                    _broker = await BenchBroker.StartAsync(cairn, flushOnAck: true, TimeSpan.FromSeconds(60));
                }
                catch (Exception e)
                {
                    _issues.Add($"broker did not start: {e.Message}");
                    return;
                }
                endPoint = _broker.EndPoint;
            }
            if (endPoint is null) return;

            try
            {
                await using var conn = await PipelinedConnection.ConnectAsync(endPoint, "cairn-bench-admin", ct);
                var versions = await conn.CallAsync<ApiVersionsRequest, ApiVersionsResponse>(ApiKey.ApiVersions, 3,
                    new ApiVersionsRequest { ClientSoftwareName = "cairn-bench", ClientSoftwareVersion = "1.0" }, ct);
                if (versions.ErrorCode != 0) throw new BenchFailure($"ApiVersions v3: error {(ErrorCode)versions.ErrorCode}");
                short Pick(ApiKey key, short ours, short minimum)
                {
                    var range = versions.ApiKeys.FirstOrDefault(k => k.ApiKey == (short)key)
                        ?? throw new BenchFailure($"ApiVersions: broker does not list {key}");
                    short v = Math.Min(ours, range.MaxVersion);
                    if (v < Math.Max(minimum, range.MinVersion))
                        throw new BenchFailure($"ApiVersions: broker serves {key} v{range.MinVersion}-{range.MaxVersion}, bench needs v{minimum}-{ours}");
                    return v;
                }
                short? TryPick(ApiKey key, short ours, short minimum) { try { return Pick(key, ours, minimum); } catch (BenchFailure) { return null; } }

                short produce = Pick(ApiKey.Produce, 11, 3);   // v3+: record batch v2
                short fetch = Pick(ApiKey.Fetch, 12, 4);       // up to v12: topics by name
                short create = Pick(ApiKey.CreateTopics, 7, 0);
                short? delete = TryPick(ApiKey.DeleteTopics, 5, 0);
                bool? flushOnAck = options.StartBroker ? true : null;
                if (flushOnAck is null && TryPick(ApiKey.DescribeConfigs, 4, 1) is { } describeVersion)
                {
                    var described = await conn.CallAsync<DescribeConfigsRequest, DescribeConfigsResponse>(ApiKey.DescribeConfigs, describeVersion,
                        new DescribeConfigsRequest
                        {
                            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 4, ResourceName = "", ConfigurationKeys = ["log.flush.on.ack"] }],
                        }, ct);
                    var value = described.Results.FirstOrDefault()?.Configs.FirstOrDefault(c => c.Name == "log.flush.on.ack")?.Value;
                    if (value is not null) flushOnAck = value == "true";
                }
                _session = new BrokerSession(endPoint, produce, fetch, create, delete, flushOnAck);
                _brokerLabel = options.StartBroker ? $"cairn serve (started by the bench, log.flush.on.ack=true)" : $"broker at {endPoint}";
                Console.Error.WriteLine($"[bench] {_brokerLabel}: Produce v{produce}, Fetch v{fetch}, CreateTopics v{create}, log.flush.on.ack={flushOnAck switch { true => "true", false => "false", _ => "unknown" }}");
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                _issues.Add($"broker at {endPoint} not usable: {Describe(e)}");
            }
        }

        private async Task<bool> CreateTopicsAsync(IEnumerable<string> names, CancellationToken ct)
        {
            var s = _session!;
            try
            {
                return await CreateTopicsCoreAsync(s, names, ct);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                _issues.Add($"CreateTopics v{s.CreateTopicsVersion} failed: {Describe(e)}");
                return false;
            }
        }

        private async Task<bool> CreateTopicsCoreAsync(BrokerSession s, IEnumerable<string> names, CancellationToken ct)
        {
            await using var conn = await PipelinedConnection.ConnectAsync(s.EndPoint, "cairn-bench-admin", ct);
            var request = new CreateTopicsRequest
            {
                TimeoutMs = 30_000,
                Topics = names.Select(n => new CreateTopicsRequest.CreatableTopic
                {
                    Name = n,
                    NumPartitions = 1,
                    ReplicationFactor = 1,
                    // A ~1 MB batch plus its overhead exceeds Kafka's default max.message.bytes (1048588).
                    Configs = [new CreateTopicsRequest.CreatableTopic.CreatableTopicConfig { Name = "max.message.bytes", Value = "2000000" }],
                }).ToList(),
            };
            var response = await conn.CallAsync<CreateTopicsRequest, CreateTopicsResponse>(ApiKey.CreateTopics, s.CreateTopicsVersion, request, ct);
            bool ok = true;
            foreach (var name in request.Topics.Select(t => t.Name))
            {
                var r = response.Topics.FirstOrDefault(t => t.Name == name);
                if (r is null) { _issues.Add($"CreateTopics v{s.CreateTopicsVersion}: no result for {name}"); ok = false; }
                else if (r.ErrorCode != 0)
                {
                    _issues.Add($"CreateTopics v{s.CreateTopicsVersion} {name} (1 partition, max.message.bytes=2000000): error {(ErrorCode)r.ErrorCode} ({r.ErrorCode}) {r.ErrorMessage}");
                    ok = false;
                }
                else _createdTopics.Add(name);
            }
            return ok;
        }

        /// <summary>Deletes a finished round's topics (best effort), so the data directory does not grow round after round.</summary>
        private async Task DeleteTopicsAsync(List<string> topics, CancellationToken ct)
        {
            var s = _session;
            if (s?.DeleteTopicsVersion is not { } v || topics.Count == 0 || options.KeepTopics) return;
            try
            {
                await using var conn = await PipelinedConnection.ConnectAsync(s.EndPoint, "cairn-bench-admin", ct);
                var response = await conn.CallAsync<DeleteTopicsRequest, DeleteTopicsResponse>(ApiKey.DeleteTopics, v,
                    new DeleteTopicsRequest { TopicNames = [.. topics], TimeoutMs = 30_000 }, ct);
                foreach (var r in response.Responses.Where(r => r.ErrorCode != 0))
                    _issues.Add($"DeleteTopics v{v} {r.Name}: error {(ErrorCode)r.ErrorCode}");
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                _issues.Add($"DeleteTopics failed: {Describe(e)}");
            }
        }

        private bool BrokerAlive()
        {
            if (_session is null) return false;
            if (_broker?.ExitCode is { } code)
            {
                _issues.Add($"broker process exited with code {code} during the run; last log lines:\n{Indent(_broker.Tail(30))}");
                _session = null;
                return false;
            }
            return true;
        }

        // ------------------------------------------------------------------------------------------------
        // One record size: baselines and broker, interleaved so they see the same machine state

        private async Task RunSizeAsync(int size, int round, string scratch, CancellationToken ct)
        {
            if (!_payloads.TryGetValue(size, out var payload)) _payloads[size] = payload = ProducePayload.Build(size, options.BatchBytes);
            Console.Error.WriteLine($"[bench] round {round + 1}, {size} B records: {payload.RecordsPerBatch} records, {payload.BatchBytes} bytes per batch");
            _round = round;
            short produceVersion = _session?.ProduceVersion ?? 11;
            short fetchVersion = _session?.FetchVersion ?? 12;
            string run = $"{Environment.ProcessId:x}{DateTime.UtcNow:HHmmss}";
            string topicAcks1 = $"cairn-bench-{run}-r{round + 1}-{size}b-acks1";
            string topicAcksAll = $"cairn-bench-{run}-r{round + 1}-{size}b-acksall";
            var bodyAcks1 = payload.RequestBody(topicAcks1, 1, produceVersion);
            var bodyAcksAll = payload.RequestBody(topicAcksAll, -1, produceVersion);
            var sinkFile = Path.Combine(scratch, $"sink-{size}.bin");
            var sinkFsyncFile = Path.Combine(scratch, $"sink-fsync-{size}.bin");
            var limits = LimitsFor(round);

            // Baseline: TCP -> file sink, the same frames as the acks=1 run, then as the acks=-1 run with fsync per frame.
            var sink = await Phase("baseline: TCP->file sink", size, async () =>
            {
                await using var server = new FileSinkServer(sinkFile, fsync: false);
                server.Start();
                var r = await Workloads.ProduceAsync(server.EndPoint, "", payload, bodyAcks1, produceVersion, limits, null, ct);
                if (server.Error is { } e) throw e;
                return r;
            });
            var sinkFsync = await Phase("baseline: TCP->file sink, fsync per frame", size, async () =>
            {
                await using var server = new FileSinkServer(sinkFsyncFile, fsync: true);
                server.Start();
                var r = await Workloads.ProduceAsync(server.EndPoint, "", payload, bodyAcksAll, produceVersion, limits, null, ct);
                if (server.Error is { } e) throw e;
                return r;
            });
            TryDelete(sinkFsyncFile);

            // Broker: produce acks=1, produce acks=-1, then fetch the acks=-1 topic back from offset 0.
            var offsets = new List<long>();
            PhaseResult? fetch = null;
            string durable = _session?.FlushOnAck switch { true => ", log.flush.on.ack=true (durable)", false => ", log.flush.on.ack=false", _ => "" };
            if (BrokerAlive() && await CreateTopicsAsync([topicAcks1, topicAcksAll], ct))
            {
                var s = _session!;
                await Phase("produce acks=1", size, () =>
                    Workloads.ProduceAsync(s.EndPoint, "", payload, bodyAcks1, s.ProduceVersion, limits, null, ct), sink);
                if (BrokerAlive())
                    await Phase($"produce acks=-1{durable}", size, () =>
                        Workloads.ProduceAsync(s.EndPoint, "", payload, bodyAcksAll, s.ProduceVersion, limits, offsets, ct),
                        s.FlushOnAck == false ? sink : sinkFsync);
                if (BrokerAlive() && offsets.Count > 0)
                {
                    // Everything the acks=-1 phase wrote (warm-up included), still bounded by the time cap.
                    var fetchLimits = limits with { TotalBytes = Math.Max(limits.TotalBytes, (long)offsets.Count * payload.BatchBytes) };
                    fetch = await Phase($"fetch from offset 0 (max_bytes {options.FetchMaxBytes})", size, () =>
                        Workloads.FetchAsync(s.EndPoint, "", size, topicAcksAll, offsets, options.FetchMaxBytes, s.FetchVersion, fetchLimits, null, ct));
                }
            }

            // Baseline: file -> TCP, batch-sized chunks of the sink's file in answer to the same fetch requests.
            if (File.Exists(sinkFile) && new FileInfo(sinkFile).Length >= payload.BatchBytes)
            {
                IReadOnlyList<long> fetchOffsets = fetch is { Requests: > 0 } && offsets.Count > 0
                    ? offsets.Take(fetch.Requests).ToList() // as many requests as the broker fetch answered
                    : Enumerable.Range(0, (int)(new FileInfo(sinkFile).Length / payload.BatchBytes)).Select(i => (long)i * payload.RecordsPerBatch).ToList();
                var fileFetch = await Phase("baseline: file->TCP chunks", size, async () =>
                {
                    await using var server = new FileChunkServer(sinkFile, payload.BatchBytes);
                    server.Start();
                    var r = await Workloads.FetchAsync(server.EndPoint, "", size, topicAcksAll, fetchOffsets, options.FetchMaxBytes, fetchVersion,
                        limits with { TotalBytes = Math.Max(limits.TotalBytes, (long)fetchOffsets.Count * payload.BatchBytes) },
                        baselineRecordsPerChunk: payload.RecordsPerBatch, ct);
                    if (server.Error is { } e) throw e;
                    return r;
                });
                if (fetch is not null) _baselineOf[fetch] = fileFetch;
            }
            TryDelete(sinkFile);
            if (_session is not null) await DeleteTopicsAsync(_createdTopics.Where(t => t == topicAcks1 || t == topicAcksAll).ToList(), ct);
        }

        private int _round;

        private readonly Dictionary<PhaseResult, PhaseResult?> _baselineOf = [];

        [DllImport("libc", EntryPoint = "sync")]
        private static extern void LibcSync();

        /// <summary>
        /// Before every phase: sync(2) so no phase pays for the previous one's dirty pages being written back, then a short pause.
        /// </summary>
        internal static async Task SettleAsync()
        {
            try { await Task.Run(LibcSync); } catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
            await Task.Delay(200);
        }
        private readonly Dictionary<int, ProducePayload> _payloads = [];

        private async Task<PhaseResult> Phase(string scenario, int size, Func<Task<PhaseResult>> run, PhaseResult? baseline = null)
        {
            await SettleAsync();
            Console.Error.Write($"[bench]   {scenario}, {size} B ... ");
            PhaseResult result;
            try
            {
                var r = await run();
                result = new PhaseResult { Scenario = scenario, RecordSize = size, Round = _round, Bytes = r.Bytes, Records = r.Records, Requests = r.Requests, Elapsed = r.Elapsed, StopReason = r.StopReason };
                result.LatenciesMs.AddRange(r.LatenciesMs);
                Console.Error.WriteLine($"{result.MBps:0.0} MB/s, {result.Requests} requests in {result.Elapsed.TotalSeconds:0.00} s (stopped by {result.StopReason})");
            }
            catch (Exception e) when (!_ct.IsCancellationRequested)
            {
                result = new PhaseResult { Scenario = scenario, RecordSize = size, Round = _round, Error = Describe(e) };
                _issues.Add($"round {_round + 1}, {scenario}, {size} B records: {result.Error}");
                Console.Error.WriteLine($"FAILED: {result.Error}");
            }
            _results.Add(result);
            _baselineOf[result] = baseline;
            return result;
        }

        // ------------------------------------------------------------------------------------------------
        // Report

        private string Report(TimeSpan total)
        {
            var sb = new StringBuilder();
            sb.AppendLine();
            sb.AppendLine($"### Cairn loopback throughput ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
            sb.AppendLine();
            sb.AppendLine($"- Machine: {Environment.ProcessorCount} CPUs (nproc), {CpuModel()}, {MemoryInfo()}, {RuntimeInformation.OSDescription}, .NET {Environment.Version}; data in {Path.GetTempPath()} ({FileSystemOf(Path.GetTempPath())})");
            sb.AppendLine($"- Load average (1/5/15 min) at start {_loadAtStart}, at end {LoadAverage()}: other work on the machine competes for the {Environment.ProcessorCount} CPUs and skews the numbers, which is why rounds are interleaved and medians reported");
            sb.AppendLine($"- Broker: {(_brokerLabel.Length > 0 ? _brokerLabel : "not measured")}; a new topic per run (1 partition, max.message.bytes=2000000)");
            var batches = string.Join(", ", _payloads.Values.Select(p => $"{p.RecordsPerBatch} x {p.RecordSize} B = {p.BatchBytes} B"));
            sb.AppendLine($"- Each produce request carries one uncompressed v2 record batch of ~{options.BatchBytes / 1e6:0.##} MB ({batches}), encoded once and re-sent; " +
                          $"up to {options.InFlight} requests in flight on one connection; each phase bounded by {options.TotalMb} MB or {options.Seconds:0} s; " +
                          $"{_roundsRun} round(s), baseline and broker phases interleaved in each; figures are medians over rounds, the ratio is the median of per-round ratios");
            sb.AppendLine($"- MB = 10^6 bytes of record batches. Latency: per request, from the start of its send to its response, with up to {options.InFlight} in flight (includes waiting behind earlier requests); pooled over rounds");
            sb.AppendLine("- Baselines run in-process on 127.0.0.1 with the same client: the sink receives the very same produce frames, appends each to a file (FileStream, optionally fsync) and answers with a small ProduceResponse; " +
                          "the file server answers the same fetch requests each with the next batch-sized chunk of the sink's file (pread + send)");
            sb.AppendLine();
            sb.AppendLine("| scenario | record size | MB/s | records/s | p50 ms | p99 ms | baseline MB/s | ratio |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            var rows = Aggregate();
            foreach (var row in rows)
            {
                string size = row.RecordSize == 1024 ? "1 KiB" : $"{row.RecordSize} B";
                if (row.Ok.Count == 0)
                {
                    sb.AppendLine($"| {row.Scenario} | {size} | failed | | | | {F(row.BaselineMBps)} | |");
                    continue;
                }
                string ratio = row.Ratio is { } r ? $"{r:0.00}" : "";
                sb.AppendLine($"| {row.Scenario} | {size} | {row.MBps:0.0} | {row.RecordsPerSecond:#,0} | {Ms(row.P50)} | {Ms(row.P99)} | {F(row.BaselineMBps)} | {ratio} |");
            }
            sb.AppendLine();

            var checks = new List<string>();
            foreach (var row in rows.Where(r => r.Ratio is not null && (r.Scenario.StartsWith("produce acks=-1") || r.Scenario.StartsWith("fetch"))))
            {
                string line = $"{row.Scenario}, {row.RecordSize} B: {row.Ratio:0.00}x {row.BaselineScenario} {Verdict(row.Ratio!.Value)}";
                if (row.Scenario.StartsWith("produce") && row.BaselineScenario != SinkPlain)
                {
                    var vsPlain = MedianRatio(row.Ok, SinkPlain);
                    if (vsPlain is { } v) line += $"; {v:0.00}x the sink without fsync {Verdict(v)}";
                }
                checks.Add(line);
            }
            if (checks.Count > 0)
            {
                sb.AppendLine("Bar (>= 0.7x the trivial loopback sink moving the same bytes in the same run):");
                foreach (var c in checks) sb.AppendLine($"- {c}");
                sb.AppendLine();
            }
            sb.AppendLine("<details><summary>every phase</summary>");
            sb.AppendLine();
            foreach (var r in _results)
            {
                var b = _baselineOf.GetValueOrDefault(r);
                string vs = r.Error is null && b is { Error: null, MBps: > 0 } ? $", {r.MBps / b.MBps:0.00}x baseline" : "";
                sb.AppendLine(r.Error is null
                    ? $"- round {r.Round + 1}, {r.Scenario}, {r.RecordSize} B: {r.MBps:0.0} MB/s, {r.Requests} requests, {r.Bytes / 1e6:0} MB in {r.Elapsed.TotalSeconds:0.00} s (stopped by {r.StopReason}), p50 {Ms(r.Percentile(0.5))} ms, p99 {Ms(r.Percentile(0.99))} ms{vs}"
                    : $"- round {r.Round + 1}, {r.Scenario}, {r.RecordSize} B: failed");
            }
            sb.AppendLine();
            sb.AppendLine("</details>");
            sb.AppendLine();
            AppendFooter(sb, total.TotalSeconds, _notes, _issues);
            return sb.ToString();
        }

        private const string SinkPlain = "baseline: TCP->file sink";

        private sealed record Row(string Scenario, int RecordSize, List<PhaseResult> Ok, double MBps, double RecordsPerSecond, double? P50, double? P99,
            string? BaselineScenario, double? BaselineMBps, double? Ratio);

        private List<Row> Aggregate()
        {
            var rows = new List<Row>();
            foreach (var group in _results.GroupBy(r => r.Scenario))
            foreach (var bySize in group.GroupBy(r => r.RecordSize))
            {
                var ok = bySize.Where(r => r.Error is null).ToList();
                var baselines = bySize.Select(r => _baselineOf.GetValueOrDefault(r)).Where(b => b is { Error: null, MBps: > 0 }).Select(b => b!).ToList();
                var latencies = new PhaseResult { Scenario = "", RecordSize = 0 };
                foreach (var r in ok) latencies.LatenciesMs.AddRange(r.LatenciesMs);
                var ratios = ok.Select(r => _baselineOf.GetValueOrDefault(r) is { Error: null, MBps: > 0 } b ? r.MBps / b.MBps : (double?)null)
                    .Where(x => x is not null).Select(x => x!.Value).ToList();
                rows.Add(new Row(group.Key, bySize.Key, ok,
                    Median(ok.Select(r => r.MBps)) ?? 0, Median(ok.Select(r => r.RecordsPerSecond)) ?? 0,
                    latencies.Percentile(0.50), latencies.Percentile(0.99),
                    baselines.FirstOrDefault()?.Scenario, Median(baselines.Select(b => b.MBps)), Median(ratios)));
            }
            return rows;
        }

        /// <summary>Median over rounds of the ratio of each phase to the same round's phase of <paramref name="baselineScenario"/>.</summary>
        private double? MedianRatio(List<PhaseResult> phases, string baselineScenario) => Median(phases
            .Select(r => _results.FirstOrDefault(b => b.Scenario == baselineScenario && b.RecordSize == r.RecordSize && b.Round == r.Round && b.Error is null && b.MBps > 0) is { } b
                ? r.MBps / b.MBps : (double?)null)
            .Where(x => x is not null).Select(x => x!.Value));

        internal static double? Median(IEnumerable<double> values)
        {
            var v = values.Order().ToArray();
            if (v.Length == 0) return null;
            return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
        }

        private static string Verdict(double ratio) => ratio >= 0.7 ? "(meets 0.7x)" : "(BELOW 0.7x)";
        private static string F(double? v) => v is { } x ? $"{x:0.0}" : "";

        internal static string LoadAverage()
        {
            try { return string.Join('/', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
            catch { return "unknown"; }
        }

        internal static string FileSystemOf(string path)
        {
            try
            {
                var full = Path.GetFullPath(path);
                var best = File.ReadLines("/proc/mounts").Select(l => l.Split(' ')).Where(f => f.Length > 2 && full.StartsWith(f[1], StringComparison.Ordinal))
                    .MaxBy(f => f[1].Length);
                return best is null ? "unknown fs" : $"{best[2]} on {best[0]}";
            }
            catch { return "unknown fs"; }
        }

        internal static string Ms(double? v) => v is null ? "" : v < 10 ? $"{v:0.00}" : $"{v:0.0}";

        internal static string CpuModel()
        {
            try
            {
                var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                return line is null ? "unknown CPU" : line[(line.IndexOf(':') + 1)..].Trim();
            }
            catch { return "unknown CPU"; }
        }

        internal static string MemoryInfo()
        {
            try
            {
                var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
                if (line is null) return "";
                long kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                return $"{kb / 1024.0 / 1024.0:0} GiB RAM";
            }
            catch { return ""; }
        }

        // ------------------------------------------------------------------------------------------------

        internal static string? FindRepoRoot()
        {
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            {
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                    if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return dir.FullName;
            }
            return null;
        }

        private static void TryDelete(string path)
        {
            try { File.Delete(path); } catch { }
        }

        internal static string Describe(Exception e) => e switch
        {
            BenchFailure f => f.Message,
            TimeoutException => $"no response within the timeout ({e.Message})",
            _ when e.InnerException is not null => $"{e.GetType().Name}: {e.Message} <- {Describe(e.InnerException)}",
            _ => $"{e.GetType().Name}: {e.Message}",
        };

        internal static string Trim(string text, int lines)
        {
            var all = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return string.Join('\n', all.Take(lines)) + (all.Length > lines ? $"\n... ({all.Length - lines} more lines)" : "");
        }

        /// <summary>The end every mode's report shares: total run time, notes, then the issues of the run.</summary>
        internal static void AppendFooter(StringBuilder sb, double totalSeconds, IEnumerable<string> notes, IReadOnlyCollection<string> issues)
        {
            sb.AppendLine($"Total run time {totalSeconds:0} s.");
            foreach (var n in notes) sb.AppendLine($"Note: {n}.");
            if (issues.Count > 0)
            {
                sb.AppendLine();
                sb.AppendLine("Issues:");
                foreach (var i in issues) sb.AppendLine($"- {i}");
            }
        }

        internal static string Indent(string text) => string.Join('\n', text.Split('\n').Select(l => "    " + l));
    }
}
