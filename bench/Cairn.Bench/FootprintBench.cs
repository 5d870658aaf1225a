using System.Diagnostics;
using System.Globalization;
using Cairn.Testing;

namespace Cairn.Bench;

/// <summary>
/// The footprint benchmark: the broker's memory idle, with many partitions and under produce load; its start-up time with
/// many partitions after SIGTERM and after SIGKILL; and its recovery time after SIGKILL with a small and a large data set in
/// the same partitions (which must be about equal: recovery depends on the active segments, not on the total data).
/// </summary>
internal sealed class FootprintBench(FootprintOptions options)
{
    private const string LoadTopic = "footprint-load";
    private const string RecoveryTopic = "footprint-recovery";
    private const int LoadPartitions = 16;
    private const int LoadConnections = 4;
    private const int LoadInFlight = 4;
    private const int LoadBatchBytes = 512 * 1024;
    private const int FillBatchBytes = 256 * 1024;
    private const int FillPartitionsPerRequest = 8;
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan FillTimeCap = TimeSpan.FromMinutes(20);

    private readonly FootprintResults _results = new();
    private CancellationToken _ct;
    private string _cairn = "";

    public async Task<int> RunAsync(CancellationToken ct)
    {
        _ct = ct;
        var total = Stopwatch.StartNew();
        _results.LoadAtStart = Bench.LoadAverage();
        try
        {
            _cairn = await BenchBroker.LocateCairnAsync(options.Cairn, options.NoBuild);
            _results.Broker = _cairn;
            Console.Error.WriteLine($"[bench] broker executable: {_cairn}");
            CheckDisk();
            if (!options.SkipPartitions || !options.SkipLoad) await PartitionsAndLoadAsync();
            if (!options.SkipRecovery) await RecoveryAsync();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _results.Issues.Add("interrupted");
        }
        catch (Exception e)
        {
            _results.Issues.Add($"bench aborted: {Bench.Describe(e)}" + (e is BenchFailure ? "" : $"\n{Bench.Indent(e.StackTrace ?? "")}"));
        }
        _results.LoadAtEnd = Bench.LoadAverage();
        _results.TotalSeconds = total.Elapsed.TotalSeconds;
        Console.Out.Write(_results.Markdown(options));
        if (options.Json is { } json)
        {
            File.WriteAllText(json, _results.Json(options));
            Console.Error.WriteLine($"[bench] results written to {json}");
        }
        return _results.Issues.Count == 0 ? 0 : 1;
    }

    /// <summary>The data sets must fit with room to spare: at most half of the free space is used.</summary>
    private void CheckDisk()
    {
        long free = new DriveInfo(Path.GetTempPath()).AvailableFreeSpace;
        double needed = (options.SkipRecovery ? 0 : options.DataGb * 1.1e9) + (options.SkipLoad ? 0 : options.LoadMb * 1.1e6) + 0.5e9;
        _results.Notes.Add($"free space in {Path.GetTempPath()} at start: {free / 1e9:0.0} GB; this run writes up to {needed / 1e9:0.0} GB and deletes it");
        if (needed > free / 2.0)
            throw new BenchFailure($"not enough free space in {Path.GetTempPath()}: {free / 1e9:0.0} GB free, the run needs {needed / 1e9:0.0} GB " +
                                   "(at most half the free space is used); lower --data-gb or --load-mb");
    }

    private Task<BrokerProcess> StartBrokerAsync(string prefix, Dictionary<string, string> settings) =>
        BrokerProcess.StartAsync(new BrokerOptions
        {
            Cairn = _cairn,
            DefaultPartitions = null,
            AutoCreateTopics = false,
            // The admin HTTP server (and the metrics behind /metrics) is on by default; measure what users run.
            AdminListen = $"127.0.0.1:{BrokerProcess.FreePort()}",
            Settings = settings,
            StartTimeout = StartTimeout,
            StartPollInterval = TimeSpan.FromMilliseconds(10),
            DataDirPrefix = $"cairn-bench-{Environment.ProcessId}-{prefix}",
            StopGracefullyOnDispose = false, // SIGKILL: the data directory is deleted anyway
            Log = message => Console.Error.WriteLine($"[bench] {message}"),
        });

    // ------------------------------------------------------------------------------------------------
    // Memory idle, with many partitions, under load; start-up time with many partitions

    private async Task PartitionsAndLoadAsync()
    {
        int partitions = options.TotalPartitions;
        await using var broker = await StartBrokerAsync("partitions-", new() { ["max.partitions"] = (partitions + LoadPartitions + 100).ToString(CultureInfo.InvariantCulture) });
        using var killOnExit = KillOnExit(broker);
        var expected = new Dictionary<string, int>();
        await FootprintKafka.WaitReadyAsync(broker.EndPoint, expected, StartTimeout, _ct);
        await SampleIdleAsync(broker, "idle after start, no topics");
        if (!options.SkipPartitions)
        {
            // The reference: what starting the process and the broker costs without any partition.
            var empty = _results.Timing("start-up", "no topics, after SIGTERM", 0);
            for (int round = 0; round < options.Rounds; round++)
                await TimedRestartAsync(empty, broker, graceful: true, expected);
        }

        if (!options.SkipPartitions)
        {
            var names = Enumerable.Range(0, options.Topics).Select(t => $"footprint-{t:D4}").ToList();
            Console.Error.WriteLine($"[bench] creating {names.Count} topics x {options.Partitions} partitions");
            var create = Stopwatch.StartNew();
            await FootprintKafka.CreateTopicsAsync(broker.EndPoint, names, options.Partitions, new Dictionary<string, string>(), 10, _ct);
            _results.CreateSeconds = create.Elapsed.TotalSeconds;
            foreach (var n in names) expected[n] = options.Partitions;
            await SampleIdleAsync(broker, $"idle, {partitions:N0} partitions, just created");

            var clean = _results.Timing("start-up", $"{partitions:N0} empty partitions, after SIGTERM", partitions);
            for (int round = 0; round < options.Rounds; round++)
            {
                await TimedRestartAsync(clean, broker, graceful: true, expected);
                if (round == 0) await SampleIdleAsync(broker, $"idle, {partitions:N0} partitions, after a restart");
            }
            var killed = _results.Timing("start-up", $"{partitions:N0} empty partitions, after SIGKILL", partitions);
            for (int round = 0; round < options.Rounds; round++)
                await TimedRestartAsync(killed, broker, graceful: false, expected);
        }

        if (!options.SkipLoad) await LoadAsync(broker, partitions: options.SkipPartitions ? 0 : partitions);
        await broker.DisposeAsync();
        Console.Error.WriteLine("[bench] broker killed, data deleted");
    }

    private async Task LoadAsync(BrokerProcess broker, int partitions)
    {
        await FootprintKafka.CreateTopicsAsync(broker.EndPoint, [LoadTopic], LoadPartitions, new Dictionary<string, string>(), 1, _ct);
        var payload = ProducePayload.Build(1024, LoadBatchBytes);
        var bodies = Enumerable.Range(0, LoadPartitions).Select(p => (FootprintKafka.ProduceBody(LoadTopic, [p], payload.Batch), (long)payload.BatchBytes)).ToList();
        long maxRequests = Math.Max(1, options.LoadMb * 1_000_000 / payload.BatchBytes);
        string condition = $"produce load: {LoadConnections} connections x {LoadInFlight} in flight, {payload.BatchBytes / 1024} KiB batches of 1 KiB records, acks=1, " +
                           $"{LoadPartitions} partitions{(partitions > 0 ? $", beside {partitions:N0} idle ones" : "")}";
        Console.Error.WriteLine($"[bench] {condition}, up to {options.LoadSeconds:0} s or {options.LoadMb} MB");

        long peakRss = 0;
        using var stopSampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                if (broker.Pid is { } pid && ProcessSample.Read(pid) is { } s) peakRss = Math.Max(peakRss, s.RssKb);
                try { await Task.Delay(100, stopSampling.Token); } catch (OperationCanceledException) { }
            }
        });
        ProduceTotals totals;
        try
        {
            totals = await FootprintKafka.ProduceAsync(broker.EndPoint, bodies, maxRequests, LoadConnections, LoadInFlight, TimeSpan.FromSeconds(options.LoadSeconds), _ct);
        }
        finally
        {
            stopSampling.Cancel();
            await sampler;
        }
        var end = Sample(broker);
        _results.Memory.Add(new MemoryRow(condition, end, peakRss,
            $"{totals.BatchBytes / 1e6:0} MB in {totals.Elapsed.TotalSeconds:0.0} s = {totals.MBps:0} MB/s (stopped by {totals.StopReason}); VmRSS is the peak of 100 ms samples"));
        Console.Error.WriteLine($"[bench] load: {totals.MBps:0} MB/s, peak VmRSS {peakRss / 1024.0:0} MB, VmHWM {end.HwmKb / 1024.0:0} MB");
        await FootprintKafka.DeleteTopicsAsync(broker.EndPoint, [LoadTopic], _ct);
        await SampleIdleAsync(broker, "idle again after the load (load topic deleted)");
    }

    // ------------------------------------------------------------------------------------------------
    // Recovery after SIGKILL: a small and a large data set in the same partitions

    private async Task RecoveryAsync()
    {
        int partitions = options.RecoveryPartitions;
        long segmentBytes = options.SegmentMb * 1024L * 1024;
        var payload = ProducePayload.Build(1024, FillBatchBytes);
        // A segment rolls when the next batch would not fit; the active segment is kept half full in both data sets so that
        // they differ only in the number of closed segments.
        long batchesPerSegment = Math.Max(1, segmentBytes / payload.BatchBytes);
        long BatchesFor(double gb)
        {
            long closed = Math.Max(1, (long)Math.Round(gb * 1e9 / partitions / (batchesPerSegment * payload.BatchBytes)));
            return closed * batchesPerSegment + batchesPerSegment / 2;
        }
        long small = BatchesFor(options.SmallGb), large = Math.Max(BatchesFor(options.DataGb), small + batchesPerSegment);

        await using var broker = await StartBrokerAsync("recovery-", new()
        {
            ["log.segment.bytes"] = segmentBytes.ToString(CultureInfo.InvariantCulture),
            ["max.partitions"] = (partitions + 100).ToString(CultureInfo.InvariantCulture),
        });
        using var killOnExit = KillOnExit(broker);
        await FootprintKafka.WaitReadyAsync(broker.EndPoint, new Dictionary<string, int>(), StartTimeout, _ct);
        await FootprintKafka.CreateTopicsAsync(broker.EndPoint, [RecoveryTopic], partitions, new Dictionary<string, string>(), 1, _ct);
        var expected = new Dictionary<string, int> { [RecoveryTopic] = partitions };
        var bodies = Enumerable.Range(0, partitions).Chunk(FillPartitionsPerRequest)
            .Select(group => (FootprintKafka.ProduceBody(RecoveryTopic, group, payload.Batch), (long)payload.BatchBytes * group.Length)).ToList();

        long written = 0;
        foreach (var (label, batches) in new[] { ("small", small), ("large", large) })
        {
            long add = batches - written;
            Console.Error.WriteLine($"[bench] recovery, {label} data set: writing {add * partitions * payload.BatchBytes / 1e9:0.00} GB " +
                                    $"({add} batches of {payload.BatchBytes} B to each of {partitions} partitions)");
            var fill = await FootprintKafka.ProduceAsync(broker.EndPoint, bodies, add * bodies.Count, 2, 4, FillTimeCap, _ct);
            if (fill.StopReason != "count") throw new BenchFailure($"filling the {label} data set took over {FillTimeCap.TotalMinutes:0} minutes");
            written = batches;
            Console.Error.WriteLine($"[bench] wrote at {fill.MBps:0} MB/s");

            double gb = written * partitions * payload.BatchBytes / 1e9;
            int segments = (int)Math.Ceiling((double)written / batchesPerSegment);
            string dataSet = $"{label}: {gb:0.00} GB in {partitions} partitions, {segments} segments of {options.SegmentMb} MiB each";
            var killed = _results.Timing("recovery", $"{dataSet}, after SIGKILL", partitions, gb, segments);
            for (int round = 0; round < options.Rounds; round++)
            {
                await TimedRestartAsync(killed, broker, graceful: false, expected);
                if (round == 0) await CheckNothingLostAsync(broker, written * payload.RecordsPerBatch);
            }
            var clean = _results.Timing("recovery", $"{dataSet}, after SIGTERM", partitions, gb, segments);
            for (int round = 0; round < options.Rounds; round++)
                await TimedRestartAsync(clean, broker, graceful: true, expected);
        }
        await broker.DisposeAsync();
        Console.Error.WriteLine("[bench] broker killed, data deleted");
    }

    /// <summary>Every acknowledged record survives a SIGKILL (the page cache outlives the process): the log ends are exact.</summary>
    private async Task CheckNothingLostAsync(BrokerProcess broker, long expectedEnd)
    {
        var ends = await FootprintKafka.LogEndOffsetsAsync(broker.EndPoint, RecoveryTopic, options.RecoveryPartitions, _ct);
        var wrong = ends.Select((end, p) => (end, p)).Where(x => x.end != expectedEnd).ToList();
        if (wrong.Count > 0)
            throw new BenchFailure($"after SIGKILL, {wrong.Count} partition(s) do not end at offset {expectedEnd}: " +
                                   string.Join(", ", wrong.Take(5).Select(x => $"{RecoveryTopic}-{x.p} ends at {x.end}")));
    }

    // ------------------------------------------------------------------------------------------------

    /// <summary>Stops the broker (SIGTERM and wait, or SIGKILL) and times a start from process start to a complete Metadata answer.</summary>
    private async Task<double> TimedRestartAsync(TimingRow row, BrokerProcess broker, bool graceful, IReadOnlyDictionary<string, int> expected)
    {
        if (graceful)
        {
            // Not straight after a start: a stop is measured from a broker that finished starting (admin server included).
            await Task.Delay(TimeSpan.FromSeconds(1), _ct);
            var stopRow = _results.Timings.FirstOrDefault(t => t.Section == "clean stop" && t.Condition == row.Condition)
                          ?? _results.Timing("clean stop", row.Condition, row.Partitions, row.DataGb, row.SegmentsPerPartition);
            var stopping = Stopwatch.StartNew();
            int code = await broker.StopAsync(TimeSpan.FromMinutes(10));
            stopRow.Seconds.Add(stopping.Elapsed.TotalSeconds);
            Console.Error.WriteLine($"[bench] SIGTERM to exit: {stopping.Elapsed.TotalSeconds:0.000} s");
            if (code != 0)
                _results.Issues.Add($"broker exited with code {code} after SIGTERM (not a clean shutdown: the next start recovers as after a crash); " +
                                    $"its last lines:\n{Bench.Indent(broker.Tail(8))}");
        }
        else broker.Kill();
        var clock = Stopwatch.StartNew();
        await broker.RestartAsync();
        await FootprintKafka.WaitReadyAsync(broker.EndPoint, expected, StartTimeout, _ct);
        double seconds = clock.Elapsed.TotalSeconds;
        // CPU time to ready: less sensitive than the wall clock to other work on a shared machine.
        double? cpu = broker.Pid is { } pid ? ProcessSample.CpuSeconds(pid) : null;
        if (cpu is { } c) row.CpuSeconds.Add(c);
        row.Seconds.Add(seconds);
        Console.Error.WriteLine($"[bench] restart after {(graceful ? "SIGTERM" : "SIGKILL")}: ready in {seconds:0.000} s, {cpu:0.00} CPU s");
        return seconds;
    }

    private async Task SampleIdleAsync(BrokerProcess broker, string condition)
    {
        await Task.Delay(Settle, _ct);
        var s = Sample(broker);
        _results.Memory.Add(new MemoryRow(condition, s, null, $"{Settle.TotalSeconds:0} s after the last request"));
        Console.Error.WriteLine($"[bench] {condition}: VmRSS {s.RssKb / 1024.0:0.0} MB, VmHWM {s.HwmKb / 1024.0:0.0} MB, {s.Threads} threads, {s.OpenFds} fds");
    }

    private static ProcessSample Sample(BrokerProcess broker) =>
        broker.Pid is { } pid && ProcessSample.Read(pid) is { } s ? s : throw new BenchFailure($"cannot read /proc of the broker (pid {broker.Pid})");

    /// <summary>The broker is killed even when the bench is stopped by SIGTERM/Ctrl-C before it disposes it.</summary>
    private static IDisposable KillOnExit(BrokerProcess broker)
    {
        EventHandler handler = (_, _) => broker.Kill();
        AppDomain.CurrentDomain.ProcessExit += handler;
        return new Unsubscribe(() => AppDomain.CurrentDomain.ProcessExit -= handler);
    }

    private sealed class Unsubscribe(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
