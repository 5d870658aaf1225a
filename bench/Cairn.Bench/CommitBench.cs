using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Cairn.Bench;

internal sealed class CommitBenchOptions
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/Cairn.Bench -- commits [options]
          OffsetCommit throughput (standalone commits) through a broker the bench starts on 127.0.0.1, for the SQLite
          and the PostgreSQL group store (a throwaway PostgreSQL server is started and removed), plus the store API in-process.
          --seconds N             time cap of each measured phase (default 5)
          --max-requests N        request cap of each measured phase (default 200000)
          --connections A,B       client connections (store API: concurrent callers) (default 1,16)
          --in-flight A,B         requests outstanding per connection, one set of broker phases per value (default 4)
          --partitions N          partitions of the bench topic, and offsets in a "many" request (default 100)
          --rounds N              repeat every phase N times (broker and store kept), report medians (default 1)
          --no-postgres           measure only the SQLite store
          --no-store-api          skip the in-process store API phases
          --budget-seconds N      start no new phase once the run would exceed this (default 240)
          --cairn PATH            the cairn executable to start (default: `cairn` on PATH, else
                                  src/Cairn.Cli/bin/Release/net10.0/cairn, built first)
          --no-build              do not build src/Cairn.Cli when no cairn is on PATH
        """;

    public double Seconds { get; private set; } = 5;
    public int MaxRequests { get; private set; } = 200_000;
    public int[] Connections { get; private set; } = [1, 16];
    public int[] InFlight { get; private set; } = [4];
    public int Partitions { get; private set; } = 100;
    public int Rounds { get; private set; } = 1;
    public bool NoPostgres { get; private set; }
    public bool NoStoreApi { get; private set; }
    public double BudgetSeconds { get; private set; } = 240;
    public string? Cairn { get; private set; }
    public bool NoBuild { get; private set; }
    public bool Help { get; private set; }

    public static CommitBenchOptions Parse(string[] args)
    {
        var o = new CommitBenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--seconds": o.Seconds = ParseLong(args[i], Next(), 1, 3600); break;
                case "--max-requests": o.MaxRequests = (int)ParseLong(args[i], Next(), 1, 100_000_000); break;
                case "--connections": o.Connections = ParseList(args[i], Next(), 1, 256); break;
                case "--in-flight": o.InFlight = ParseList(args[i], Next(), 1, 64); break;
                case "--partitions": o.Partitions = (int)ParseLong(args[i], Next(), 1, 10_000); break;
                case "--rounds": o.Rounds = (int)ParseLong(args[i], Next(), 1, 100); break;
                case "--no-postgres": o.NoPostgres = true; break;
                case "--no-store-api": o.NoStoreApi = true; break;
                case "--budget-seconds": o.BudgetSeconds = ParseLong(args[i], Next(), 1, 86400); break;
                case "--cairn": o.Cairn = Next(); break;
                case "--no-build": o.NoBuild = true; break;
                case "-h" or "--help": o.Help = true; break;
                default: throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }
        return o;
    }

    private static int[] ParseList(string name, string value, long min, long max) =>
        value.Split(',').Select(s => (int)ParseLong(name, s, min, max)).Distinct().ToArray();

    private static long ParseLong(string name, string value, long min, long max) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v : throw new ArgumentException($"{name} must be an integer in [{min}, {max}], got '{value}'");
}

/// <summary>One measured phase of the commit benchmark (one row of the table).</summary>
internal sealed class CommitPhase
{
    public required string Store { get; init; }
    public required bool ThroughBroker { get; init; }
    public required int OffsetsPerRequest { get; init; }
    public int Round { get; init; }
    public required int Clients { get; init; }
    public required int InFlight { get; init; }
    public required bool SharedGroup { get; init; }
    public long Requests { get; set; }
    public TimeSpan Elapsed { get; set; }
    public List<double> LatenciesMs { get; } = [];
    public string? StopReason { get; set; }
    public string? Error { get; set; }
    public string? Skipped { get; set; }
    /// <summary>1-minute load average when the phase ended.</summary>
    public double? Load { get; set; }

    public double RequestsPerSecond => Elapsed.TotalSeconds > 0 ? Requests / Elapsed.TotalSeconds : 0;
    public double OffsetsPerSecond => RequestsPerSecond * OffsetsPerRequest;

    public string Label => $"{(Round > 0 ? $"round {Round + 1}, " : "")}{Store}, {(ThroughBroker ? "broker" : "store API")}, {OffsetsPerRequest} offset(s)/request, " +
                           $"{Clients} {(ThroughBroker ? "connection(s)" : "caller(s)")} x {InFlight} in flight, {(SharedGroup ? "one shared group" : "a group each")}";

    public double? Percentile(double p)
    {
        if (LatenciesMs.Count == 0) return null;
        var sorted = LatenciesMs.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}

/// <summary>
/// OffsetCommit throughput and latency through the broker over loopback (the SQLite and the PostgreSQL group store), and
/// the store API in-process as a reference. Standalone commits: generation -1, empty member id, to groups without members.
/// </summary>
internal sealed class CommitBench(CommitBenchOptions options)
{
    private const string Topic = "cairn-bench-commits";
    private static readonly Guid RawTopicId = new("6b0e6f1c-5d2a-4c57-9a4e-0c1a2b3c4d5e");

    private readonly List<CommitPhase> _phases = [];
    private readonly List<string> _issues = [];
    private readonly List<string> _notes = [];
    private readonly List<string> _stores = [];
    private readonly Stopwatch _total = new();
    private string _loadAtStart = "";
    private CancellationToken _ct;

    private sealed record Session(IPEndPoint EndPoint, short OffsetCommitVersion, short OffsetFetchVersion, short CreateTopicsVersion);

    public async Task<int> RunAsync(CancellationToken ct)
    {
        _ct = ct;
        _total.Start();
        _loadAtStart = Bench.LoadAverage();
        PostgresServer? pg = null;
        try
        {
            var cairn = await BenchBroker.LocateCairnAsync(options.Cairn, options.NoBuild);
            Console.Error.WriteLine($"[bench] broker executable: {cairn}");

            _fsync = FsyncReference();
            await RunStoreAsync("SQLite", cairn, ["offset.store=sqlite"], rawStore: dir => Task.FromResult<IGroupStore>(
                new SqliteGroupStore("cairn-bench-raw", Path.Combine(dir, "groups.db"), NullLogger.Instance)), ReadSqliteOffsetsAsync);

            if (options.NoPostgres) _notes.Add("PostgreSQL not measured (--no-postgres)");
            else
            {
                ct.ThrowIfCancellationRequested();
                try
                {
                    Console.Error.WriteLine("[bench] starting a throwaway PostgreSQL server (initdb, pg_ctl start)");
                    pg = await PostgresServer.StartAsync("cairn-bench-pg-", message => Console.Error.WriteLine($"[bench] {message}"));
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    _issues.Add($"PostgreSQL server did not start (run with --no-postgres to skip it): {Bench.Describe(e)}");
                }
                if (pg is not null)
                {
                    var server = pg;
                    _stores.Add($"PostgreSQL {server.Version} started by the bench on 127.0.0.1:{server.Port} ({server.Settings}; data in {Path.GetTempPath()}, " +
                                $"{Bench.FileSystemOf(Path.GetTempPath())}); the broker and the store API reach it over loopback TCP through Npgsql's pool");
                    await server.CreateDatabaseAsync("cairn_bench");
                    await server.CreateDatabaseAsync("cairn_bench_raw");
                    await RunStoreAsync("PostgreSQL", cairn, [$"offset.store.connection={server.BrokerConnectionString("cairn_bench")}"],
                        rawStore: _ => Task.FromResult<IGroupStore>(new PostgresGroupStore("cairn-bench-raw", server.ConnectionStringFor("cairn_bench_raw"), NullLogger.Instance)),
                        (_, clusterId) => ReadPostgresOffsetsAsync(server.ConnectionStringFor("cairn_bench"), clusterId));
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _issues.Add("interrupted");
        }
        catch (Exception e)
        {
            _issues.Add($"bench aborted: {Bench.Describe(e)}" + (e is BenchFailure ? "" : $"\n{Bench.Indent(e.StackTrace ?? "")}"));
        }
        finally
        {
            if (pg is not null) await pg.DisposeAsync();
        }
        Console.Out.Write(Report());
        return _issues.Count == 0 ? 0 : 1;
    }

    // ------------------------------------------------------------------------------------------------
    // One store: the store API in-process, then the broker

    private async Task RunStoreAsync(string store, string cairn, string[] settings, Func<string, Task<IGroupStore>> rawStore,
        Func<string, string, Task<Dictionary<(string Group, int Partition), long>>> readStoreTable)
    {
        var scratch = Directory.CreateTempSubdirectory("cairn-bench-commits-").FullName;
        IGroupStore? raw = null;
        BrokerProcess? broker = null;
        try
        {
            if (!options.NoStoreApi)
            {
                raw = await rawStore(scratch);
                await raw.InitializeAsync(_ct);
            }
            Session? session = null;
            string clusterId = "";
            try
            {
                broker = await BenchBroker.StartAsync(cairn, flushOnAck: false, TimeSpan.FromSeconds(60), settings);
                clusterId = File.ReadAllText(Path.Combine(broker.DataDir, "cluster-id")).Trim();
                session = await SetUpAsync(broker.EndPoint);
                _versions = $"OffsetCommit v{session.OffsetCommitVersion}, OffsetFetch v{session.OffsetFetchVersion}";
                Console.Error.WriteLine($"[bench] {store} broker on {broker.EndPoint}: {_versions}; topic {Topic} ({options.Partitions} partitions)");
            }
            catch (Exception e) when (!_ct.IsCancellationRequested)
            {
                _issues.Add($"{store}: broker not usable: {Bench.Describe(e)}");
            }

            for (int round = 0; round < options.Rounds; round++)
            {
                if (options.Rounds > 1) Console.Error.WriteLine($"[bench] {store}, round {round + 1} of {options.Rounds}");
                if (raw is not null)
                {
                    foreach (int perRequest in OffsetsPerRequest())
                    foreach (int callers in options.Connections)
                        await Phase(new CommitPhase { Store = store, Round = round, ThroughBroker = false, OffsetsPerRequest = perRequest, Clients = callers, InFlight = 1, SharedGroup = false },
                            p => StoreApiPhaseAsync(raw, p));
                }
                if (broker is null || session is not { } live) continue;
                var brokerPhases =
                    from inFlight in options.InFlight
                    from perRequest in OffsetsPerRequest()
                    from connections in options.Connections
                    from shared in connections > 1 ? new[] { false, true } : [false] // with one connection, "shared" is "its own"
                    select (inFlight, perRequest, connections, shared);
                foreach (var (inFlight, perRequest, connections, shared) in brokerPhases)
                {
                    if (broker.ExitCode is { } code)
                    {
                        _issues.Add($"{store}: broker exited with code {code} during the run; last log lines:\n{Bench.Indent(broker.Tail(30))}");
                        session = null;
                        break;
                    }
                    await Phase(new CommitPhase { Store = store, Round = round, ThroughBroker = true, OffsetsPerRequest = perRequest, Clients = connections, InFlight = inFlight, SharedGroup = shared },
                        p => BrokerPhaseAsync(live, p, broker.DataDir, clusterId, readStoreTable));
                }
            }
        }
        finally
        {
            if (raw is not null) await raw.DisposeAsync();
            if (broker is not null)
            {
                await broker.DisposeAsync();
                foreach (var line in broker.ProblemLines()) _issues.Add($"{store} broker log: {line}");
            }
            NpgsqlConnection.ClearAllPools();
            try { Directory.Delete(scratch, recursive: true); } catch { }
        }
    }

    private string _fsync = "";
    private string _versions = "";

    /// <summary>
    /// What one durable write costs on this disk: 1 s of 4 KiB appends, each followed by fsync (<c>Flush(true)</c>), to a file in
    /// the temp directory (where the SQLite files and the PostgreSQL data live). A store that acknowledges a commit only once it
    /// is on disk can do at most this many transactions per second, per writer, unless it batches.
    /// </summary>
    private static string FsyncReference()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cairn-bench-fsync-{Environment.ProcessId}.bin");
        try
        {
            var block = new byte[4096];
            var latencies = new List<double>();
            using (var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                var sw = Stopwatch.StartNew();
                while (sw.Elapsed < TimeSpan.FromSeconds(1))
                {
                    long t0 = Stopwatch.GetTimestamp();
                    f.Write(block);
                    f.Flush(flushToDisk: true);
                    latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                latencies.Sort();
                double P(double q) => latencies[Math.Clamp((int)Math.Ceiling(q * latencies.Count) - 1, 0, latencies.Count - 1)];
                return $"{latencies.Count / sw.Elapsed.TotalSeconds:#,0} appends+fsync/s sequential, p50 {Bench.Ms(P(0.5))} ms, p99 {Bench.Ms(P(0.99))} ms";
            }
        }
        catch (Exception e)
        {
            return $"not measured ({e.Message})";
        }
        finally
        {
            try { File.Delete(path); } catch { }
        }
    }

    private IEnumerable<int> OffsetsPerRequest() => options.Partitions == 1 ? [1] : [1, options.Partitions];

    private bool HasBudget(out string why)
    {
        var needed = TimeSpan.FromSeconds(options.Seconds + 2);
        why = $"the {options.BudgetSeconds:0} s budget (--budget-seconds) would be exceeded";
        return _total.Elapsed + needed <= TimeSpan.FromSeconds(options.BudgetSeconds);
    }

    private async Task Phase(CommitPhase phase, Func<CommitPhase, Task> run)
    {
        _ct.ThrowIfCancellationRequested();
        _phases.Add(phase);
        if (!HasBudget(out var why))
        {
            phase.Skipped = why;
            Console.Error.WriteLine($"[bench]   {phase.Label}: skipped ({why})");
            return;
        }
        await SettleAsync();
        Console.Error.Write($"[bench]   {phase.Label} ... ");
        try
        {
            await run(phase);
            phase.Load = Load1();
            Console.Error.WriteLine($"{phase.RequestsPerSecond:#,0} requests/s, {phase.OffsetsPerSecond:#,0} offsets/s, p50 {Bench.Ms(phase.Percentile(0.5))} ms, " +
                                    $"p99 {Bench.Ms(phase.Percentile(0.99))} ms ({phase.Requests} requests in {phase.Elapsed.TotalSeconds:0.00} s, stopped by {phase.StopReason})");
        }
        catch (Exception e) when (!_ct.IsCancellationRequested)
        {
            phase.Error = Bench.Describe(e);
            _issues.Add($"{phase.Label}: {phase.Error}");
            Console.Error.WriteLine($"FAILED: {phase.Error}");
        }
    }

    private static double? Load1() =>
        double.TryParse(Bench.LoadAverage().Split('/')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var l) ? l : null;

    [DllImport("libc", EntryPoint = "sync")]
    private static extern void LibcSync();

    /// <summary>sync(2), so that no phase pays for the previous one's dirty pages, then a short pause.</summary>
    private static async Task SettleAsync()
    {
        try { await Task.Run(LibcSync); } catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        await Task.Delay(200);
    }

    private readonly HashSet<string> _warmed = [];

    /// <summary>Warm-up before each phase: 1.5 s for the first phase on each target (tiered JIT in the bench and in each broker process), 0.4 s otherwise.</summary>
    private TimeSpan WarmupTime(CommitPhase phase) =>
        _warmed.Add($"{phase.Store}/{phase.ThroughBroker}") ? TimeSpan.FromSeconds(1.5) : TimeSpan.FromSeconds(0.4);

    /// <summary>The partitions client <paramref name="client"/> commits: all of them, or its own slice.</summary>
    private int[] PartitionsOf(int client, int perRequest) =>
        Enumerable.Range(0, perRequest).Select(k => (client * perRequest + k) % options.Partitions).Distinct().ToArray();

    // ------------------------------------------------------------------------------------------------
    // Store API, in-process

    private async Task StoreApiPhaseAsync(IGroupStore store, CommitPhase phase)
    {
        string prefix = $"raw-r{phase.Round + 1}-{phase.OffsetsPerRequest}x{phase.Clients}";
        int callers = phase.Clients;
        var next = new long[callers];
        var warmup = WarmupTime(phase);
        var latencies = Enumerable.Range(0, callers).Select(_ => new List<double>()).ToArray();
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var measure = new Stopwatch();
        long started = 0;
        string? stop = null;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(_ct);

        async Task Caller(int c)
        {
            string group = $"{prefix}-{c}";
            var partitions = PartitionsOf(c, phase.OffsetsPerRequest);
            async Task CommitOnce(bool measured)
            {
                long offset = next[c]++;
                var now = DateTimeOffset.UtcNow;
                var offsets = new CommittedOffset[partitions.Length];
                for (int i = 0; i < partitions.Length; i++) offsets[i] = new CommittedOffset(Topic, RawTopicId, partitions[i], offset, -1, "", now);
                long t0 = Stopwatch.GetTimestamp();
                await store.CommitOffsetsAsync([new GroupOffsetCommit(group, offsets)], failed.Token);
                if (measured) latencies[c].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            var w = Stopwatch.StartNew();
            while (w.Elapsed < warmup) await CommitOnce(measured: false);
            await go.Task;
            while (true)
            {
                if (Interlocked.Increment(ref started) > options.MaxRequests) { stop ??= "count"; break; }
                if (measure.Elapsed >= TimeSpan.FromSeconds(options.Seconds)) { stop ??= "time"; break; }
                await CommitOnce(measured: true);
            }
        }

        var tasks = Enumerable.Range(0, callers).Select(c => Task.Run(() => Caller(c))).ToArray();
        foreach (var t in tasks) _ = t.ContinueWith(x => { if (x.IsFaulted) failed.Cancel(); }, TaskScheduler.Default); // one failure stops the others
        // Every caller warms up on its own clock; the measurement starts for all at once.
        await Task.Delay(warmup);
        measure.Start();
        go.SetResult();
        try { await Task.WhenAll(tasks); }
        catch { throw FirstRealFailure(tasks); }
        phase.Elapsed = measure.Elapsed;
        phase.StopReason = stop;
        foreach (var l in latencies) phase.LatenciesMs.AddRange(l);
        phase.Requests = phase.LatenciesMs.Count;

        // Read back: each group holds the last offset its caller committed, on every one of its partitions.
        var all = await store.GetAllOffsetsAsync(_ct);
        for (int c = 0; c < callers; c++)
        {
            var stored = all.TryGetValue($"{prefix}-{c}", out var offsets) ? offsets : [];
            var expected = PartitionsOf(c, phase.OffsetsPerRequest);
            if (stored.Count != expected.Length || expected.Any(p => stored.FirstOrDefault(o => o.Partition == p)?.Offset != next[c] - 1))
                throw new BenchFailure($"store API read-back of {prefix}-{c}: expected offset {next[c] - 1} on {expected.Length} partitions, got " +
                                       string.Join(", ", stored.Take(5).Select(o => $"{o.Partition}:{o.Offset}")));
        }
    }

    private static Exception FirstRealFailure(Task[] tasks) =>
        tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException)
        ?? tasks.Where(t => t.IsFaulted || t.IsCanceled).Select(t => t.Exception?.InnerException ?? new OperationCanceledException()).First();

    // ------------------------------------------------------------------------------------------------
    // Broker over loopback

    private async Task<Session> SetUpAsync(IPEndPoint endPoint)
    {
        await using var conn = await PipelinedConnection.ConnectAsync(endPoint, "cairn-bench-admin", _ct);
        var versions = await conn.CallAsync<ApiVersionsRequest, ApiVersionsResponse>(ApiKey.ApiVersions, 3,
            new ApiVersionsRequest { ClientSoftwareName = "cairn-bench", ClientSoftwareVersion = "1.0" }, _ct);
        if (versions.ErrorCode != 0) throw new BenchFailure($"ApiVersions v3: error {(ErrorCode)versions.ErrorCode}");
        short Pick(ApiKey key, short ours, short minimum)
        {
            var range = versions.ApiKeys.FirstOrDefault(k => k.ApiKey == (short)key) ?? throw new BenchFailure($"ApiVersions: broker does not list {key}");
            short v = Math.Min(ours, range.MaxVersion);
            if (v < Math.Max(minimum, range.MinVersion))
                throw new BenchFailure($"ApiVersions: broker serves {key} v{range.MinVersion}-{range.MaxVersion}, bench needs v{minimum}-{ours}");
            return v;
        }
        var session = new Session(endPoint, Pick(ApiKey.OffsetCommit, 9, 1), Pick(ApiKey.OffsetFetch, 7, 1), Pick(ApiKey.CreateTopics, 7, 0));

        var created = await conn.CallAsync<CreateTopicsRequest, CreateTopicsResponse>(ApiKey.CreateTopics, session.CreateTopicsVersion, new CreateTopicsRequest
        {
            TimeoutMs = 30_000,
            Topics = [new CreateTopicsRequest.CreatableTopic { Name = Topic, NumPartitions = options.Partitions, ReplicationFactor = 1 }],
        }, _ct);
        var result = created.Topics.FirstOrDefault(t => t.Name == Topic) ?? throw new BenchFailure($"CreateTopics v{session.CreateTopicsVersion}: no result for {Topic}");
        if (result.ErrorCode != 0)
            throw new BenchFailure($"CreateTopics v{session.CreateTopicsVersion} {Topic} ({options.Partitions} partitions): error {(ErrorCode)result.ErrorCode} {result.ErrorMessage}");
        return session;
    }

    private sealed class Client
    {
        public required string Group { get; init; }
        public required int[] Partitions { get; init; }
        public required OffsetCommitRequest Request { get; init; }
        public long NextOffset;
        public readonly List<double> Latencies = [];
    }

    private async Task BrokerPhaseAsync(Session s, CommitPhase phase, string dataDir, string clusterId,
        Func<string, string, Task<Dictionary<(string Group, int Partition), long>>> readStoreTable)
    {
        string prefix = $"bench-r{phase.Round + 1}-{phase.OffsetsPerRequest}x{phase.Clients}x{phase.InFlight}-{(phase.SharedGroup ? "shared" : "own")}";
        short version = s.OffsetCommitVersion;
        var clients = Enumerable.Range(0, phase.Clients).Select(c =>
        {
            string group = phase.SharedGroup ? prefix : $"{prefix}-{c}";
            var partitions = PartitionsOf(c, phase.OffsetsPerRequest);
            return new Client
            {
                Group = group,
                Partitions = partitions,
                Request = new OffsetCommitRequest
                {
                    GroupId = group,
                    GenerationIdOrMemberEpoch = -1, // standalone commit: no generation, no member
                    MemberId = "",
                    GroupInstanceId = null,
                    Topics =
                    [
                        new OffsetCommitRequest.OffsetCommitRequestTopic
                        {
                            Name = Topic,
                            Partitions = partitions.Select(p => new OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition
                            {
                                PartitionIndex = p, CommittedOffset = 0, CommittedLeaderEpoch = -1, CommittedMetadata = "",
                            }).ToList(),
                        },
                    ],
                },
            };
        }).ToArray();

        var warmup = WarmupTime(phase);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var measure = new Stopwatch();
        long started = 0;
        string? stop = null;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        var timeout = TimeSpan.FromSeconds(60);

        void Check(Client c, Response r, long offset)
        {
            using (r)
            {
                var response = r.Read<OffsetCommitResponse>(version);
                string where = $"OffsetCommit v{version} group {c.Group}, offset {offset}";
                if (response.Topics.Count != 1 || response.Topics[0].Name != Topic)
                    throw new BenchFailure($"{where}: expected one topic {Topic}, got [{string.Join(", ", response.Topics.Select(t => t.Name))}]");
                var parts = response.Topics[0].Partitions;
                if (parts.Count != c.Partitions.Length)
                    throw new BenchFailure($"{where}: {parts.Count} partition results for {c.Partitions.Length} partitions");
                for (int i = 0; i < parts.Count; i++)
                {
                    if (parts[i].PartitionIndex != c.Partitions[i])
                        throw new BenchFailure($"{where}: result {i} is for partition {parts[i].PartitionIndex}, expected {c.Partitions[i]}");
                    if (parts[i].ErrorCode != 0)
                        throw new BenchFailure($"{where}: partition {parts[i].PartitionIndex} error {(ErrorCode)parts[i].ErrorCode} ({parts[i].ErrorCode})");
                }
            }
        }

        async Task RunClient(Client c)
        {
            await using var conn = await PipelinedConnection.ConnectAsync(s.EndPoint, "cairn-bench-commit", failed.Token);
            var inflight = new Queue<(Task<Response> Response, long Offset)>();
            async Task Send()
            {
                long offset = c.NextOffset++;
                foreach (var p in c.Request.Topics[0].Partitions) p.CommittedOffset = offset;
                var body = PipelinedConnection.Encode(c.Request, version);
                inflight.Enqueue((await conn.SendAsync(ApiKey.OffsetCommit, version, body, failed.Token), offset));
            }
            async Task CompleteOldest(bool measured)
            {
                var (task, offset) = inflight.Dequeue();
                var r = await task.WaitAsync(timeout, failed.Token);
                double latency = r.LatencyMs;
                Check(c, r, offset);
                if (measured) c.Latencies.Add(latency);
            }

            var w = Stopwatch.StartNew();
            while (w.Elapsed < warmup)
            {
                if (inflight.Count >= phase.InFlight) await CompleteOldest(measured: false);
                await Send();
            }
            while (inflight.Count > 0) await CompleteOldest(measured: false);
            await go.Task;
            while (true)
            {
                if (inflight.Count >= phase.InFlight) await CompleteOldest(measured: true);
                if (Interlocked.Increment(ref started) > options.MaxRequests) { stop ??= "count"; break; }
                if (measure.Elapsed >= TimeSpan.FromSeconds(options.Seconds)) { stop ??= "time"; break; }
                await Send();
            }
            while (inflight.Count > 0) await CompleteOldest(measured: true);
        }

        var tasks = clients.Select(c => Task.Run(() => RunClient(c))).ToArray();
        foreach (var t in tasks) _ = t.ContinueWith(x => { if (x.IsFaulted) failed.Cancel(); }, TaskScheduler.Default);
        // Warm-up on every connection (connections that finish early wait), then all start measuring at once.
        await Task.Delay(warmup + TimeSpan.FromMilliseconds(100));
        measure.Start();
        go.SetResult();
        try { await Task.WhenAll(tasks); }
        catch { throw FirstRealFailure(tasks); }
        phase.Elapsed = measure.Elapsed;
        phase.StopReason = stop;
        foreach (var c in clients) phase.LatenciesMs.AddRange(c.Latencies);
        phase.Requests = phase.LatenciesMs.Count;

        // Read back, through the protocol (OffsetFetch) and in the store's table (a separate database connection): every
        // partition holds the last offset one of the clients committed to it (with a shared group, any client's last one).
        var expected = new Dictionary<(string Group, int Partition), HashSet<long>>();
        foreach (var c in clients)
        foreach (var p in c.Partitions)
        {
            if (!expected.TryGetValue((c.Group, p), out var set)) expected[(c.Group, p)] = set = [];
            set.Add(c.NextOffset - 1);
        }
        await using (var conn = await PipelinedConnection.ConnectAsync(s.EndPoint, "cairn-bench-admin", _ct))
        {
            foreach (var group in clients.Select(c => c.Group).Distinct())
            {
                var fetched = await conn.CallAsync<OffsetFetchRequest, OffsetFetchResponse>(ApiKey.OffsetFetch, s.OffsetFetchVersion,
                    new OffsetFetchRequest { GroupId = group, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = Topic, PartitionIndexes = [.. Enumerable.Range(0, options.Partitions)] }] }, _ct);
                if (fetched.ErrorCode != 0) throw new BenchFailure($"OffsetFetch v{s.OffsetFetchVersion} {group}: error {(ErrorCode)fetched.ErrorCode}");
                int answered = fetched.Topics.Where(t => t.Name == Topic).Sum(t => t.Partitions.Count);
                if (answered != options.Partitions)
                    throw new BenchFailure($"OffsetFetch v{s.OffsetFetchVersion} {group}: {answered} partitions of {Topic} answered, {options.Partitions} asked for");
                foreach (var p in fetched.Topics.SelectMany(t => t.Partitions))
                {
                    if (p.ErrorCode != 0) throw new BenchFailure($"OffsetFetch v{s.OffsetFetchVersion} {group} partition {p.PartitionIndex}: error {(ErrorCode)p.ErrorCode}");
                    bool committed = expected.TryGetValue((group, p.PartitionIndex), out var want);
                    if (committed ? !want!.Contains(p.CommittedOffset) : p.CommittedOffset != -1)
                        throw new BenchFailure($"OffsetFetch v{s.OffsetFetchVersion} {group} partition {p.PartitionIndex}: offset {p.CommittedOffset}, expected " +
                                               (committed ? string.Join(" or ", want!) : "-1 (never committed)"));
                }
            }
        }
        var table = await readStoreTable(dataDir, clusterId);
        foreach (var ((group, partition), want) in expected)
        {
            if (!table.TryGetValue((group, partition), out var stored) || !want.Contains(stored))
                throw new BenchFailure($"{phase.Store} store table: {group} {Topic}-{partition} holds " +
                                       (table.ContainsKey((group, partition)) ? stored.ToString(CultureInfo.InvariantCulture) : "no row") +
                                       $" after every commit was acknowledged, expected {string.Join(" or ", want)}");
        }
    }

    private static readonly Lazy<bool> SqliteInit = new(() => { SQLitePCL.Batteries_V2.Init(); return true; });

    /// <summary>The broker's groups.db read with a separate read-only connection (WAL: sees every committed transaction).</summary>
    private static Task<Dictionary<(string Group, int Partition), long>> ReadSqliteOffsetsAsync(string dataDir, string clusterId)
    {
        _ = SqliteInit.Value;
        var path = Path.Combine(dataDir, SqliteGroupStore.DefaultFileName);
        using var conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        conn.Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT group_id, partition, committed_offset FROM group_offsets WHERE cluster_id = $c AND topic = $t";
        cmd.Parameters.AddWithValue("$c", clusterId);
        cmd.Parameters.AddWithValue("$t", Topic);
        var rows = new Dictionary<(string, int), long>();
        using var reader = cmd.ExecuteReader();
        while (reader.Read()) rows[(reader.GetString(0), reader.GetInt32(1))] = reader.GetInt64(2);
        return Task.FromResult(rows);
    }

    private static async Task<Dictionary<(string Group, int Partition), long>> ReadPostgresOffsetsAsync(string connectionString, string clusterId)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT group_id, partition, committed_offset FROM group_offsets WHERE cluster_id = $1 AND topic = $2", conn);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = clusterId });
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Topic });
        var rows = new Dictionary<(string, int), long>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync()) rows[(reader.GetString(0), reader.GetInt32(1))] = reader.GetInt64(2);
        return rows;
    }

    // ------------------------------------------------------------------------------------------------
    // Report

    private string Report()
    {
        var sb = new StringBuilder();
        var tmp = Path.GetTempPath();
        sb.AppendLine();
        sb.AppendLine($"### Cairn OffsetCommit throughput ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine();
        sb.AppendLine($"- Machine: {Environment.ProcessorCount} CPUs (nproc), {Bench.CpuModel()}, {Bench.MemoryInfo()}, {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
        sb.AppendLine($"- Load average (1/5/15 min) at start {_loadAtStart}, at end {Bench.LoadAverage()}; the bench, the broker and PostgreSQL share these {Environment.ProcessorCount} CPUs");
        sb.AppendLine($"- Disk reference: 4 KiB append + fsync to a file in {tmp}: {_fsync}");
        sb.AppendLine($"- SQLite store: `groups.db` in the broker's temporary data dir under {tmp} ({Bench.FileSystemOf(tmp)}), WAL, synchronous=FULL; the store API phases use their own file there");
        foreach (var s in _stores) sb.AppendLine($"- {s}");
        sb.AppendLine($"- Broker: `cairn serve` started by the bench on 127.0.0.1, topic `{Topic}` with {options.Partitions} partitions; standalone commits (generation -1, member \"\", " +
                      $"groups without members), {(_versions.Length > 0 ? _versions : "OffsetCommit")} encoded with the Cairn.Protocol codecs; every response is decoded and each partition's error code must be 0; " +
                      "after each phase the last offsets are read back through OffsetFetch and from the store's table with a separate database connection");
        sb.AppendLine($"- Clients: with N connections, connection i commits to group `<phase>-i` (\"a group each\") or all to one group (\"shared\"); with 1 offset per request " +
                      $"connection i commits partition i, with {options.Partitions} it commits all of them. Store API: caller i calls CommitOffsetsAsync on its own group, one call at a time");
        sb.AppendLine($"- Each phase: warm-up (1.5 s for the first on each broker process and in-process store, 0.4 s otherwise), then bounded by {options.Seconds:0} s or {options.MaxRequests:#,0} requests; " +
                      "latency per request from the start of its send to its response (broker: with up to N in flight per connection, so it includes waiting behind earlier requests " +
                      "on the connection, which the broker serves one at a time) or per CommitOffsetsAsync call (store API). " +
                      (options.Rounds > 1 ? $"{options.Rounds} rounds: requests/s and offsets/s are medians over rounds, latencies pooled. " : "") +
                      "load: the 1-minute load average when the phase ended");
        sb.AppendLine();
        sb.AppendLine("| store | path | offsets/request | clients x in flight | groups | requests/s | offsets/s | p50 ms | p99 ms | requests | load |");
        sb.AppendLine("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        foreach (var rows in _phases.GroupBy(p => (p.Store, p.ThroughBroker, p.InFlight, p.OffsetsPerRequest, p.Clients, p.SharedGroup)))
        {
            var p = rows.First();
            var ok = rows.Where(r => r.Error is null && r.Skipped is null).ToList();
            string path = p.ThroughBroker ? "broker, loopback" : "store API, in-process";
            string groups = p.SharedGroup ? "shared" : p.Clients == 1 ? "one" : "one each";
            string head = $"| {p.Store} | {path} | {p.OffsetsPerRequest} | {p.Clients} x {p.InFlight} | {groups} |";
            if (ok.Count == 0)
            {
                sb.AppendLine($"{head} {(rows.Any(r => r.Error is not null) ? "failed" : "skipped")} | | | | | |");
                continue;
            }
            var pooled = new CommitPhase { Store = "", ThroughBroker = false, OffsetsPerRequest = 0, Clients = 0, InFlight = 0, SharedGroup = false };
            foreach (var r in ok) pooled.LatenciesMs.AddRange(r.LatenciesMs);
            string rounds = options.Rounds > 1 ? $" in {ok.Count} round{(ok.Count > 1 ? "s" : "")}" : "";
            string capped = ok.Any(r => r.StopReason == "count") ? " (count cap)" : "";
            var loads = ok.Select(r => r.Load).Where(l => l is not null).Select(l => l!.Value).ToList();
            sb.AppendLine($"{head} {Bench.Median(ok.Select(r => r.RequestsPerSecond)):#,0} | {Bench.Median(ok.Select(r => r.OffsetsPerSecond)):#,0} | " +
                          $"{Bench.Ms(pooled.Percentile(0.5))} | {Bench.Ms(pooled.Percentile(0.99))} | {ok.Sum(r => r.Requests):#,0}{rounds}{capped} | " +
                          $"{(loads.Count == 0 ? "" : loads.Count == 1 ? $"{loads[0]:0.0}" : $"{loads.Min():0.0}-{loads.Max():0.0}")} |");
        }
        sb.AppendLine();
        if (options.Rounds > 1)
        {
            sb.AppendLine("<details><summary>every phase</summary>");
            sb.AppendLine();
            foreach (var r in _phases)
                sb.AppendLine(r.Skipped is not null ? $"- {r.Label}: skipped" : r.Error is not null ? $"- {r.Label}: failed" :
                    $"- {r.Label}: {r.RequestsPerSecond:#,0} requests/s, {r.OffsetsPerSecond:#,0} offsets/s, p50 {Bench.Ms(r.Percentile(0.5))} ms, " +
                    $"p99 {Bench.Ms(r.Percentile(0.99))} ms, {r.Requests:#,0} requests in {r.Elapsed.TotalSeconds:0.00} s (stopped by {r.StopReason}), load {r.Load:0.0}");
            sb.AppendLine();
            sb.AppendLine("</details>");
            sb.AppendLine();
        }
        int skipped = _phases.Count(r => r.Skipped is not null);
        if (skipped > 0) _notes.Add($"{skipped} phase(s) skipped: the {options.BudgetSeconds:0} s budget (--budget-seconds) would have been exceeded");
        Bench.AppendFooter(sb, _total.Elapsed.TotalSeconds, _notes, _issues);
        return sb.ToString();
    }
}
