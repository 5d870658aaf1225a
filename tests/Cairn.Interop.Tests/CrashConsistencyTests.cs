using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;
using Cairn.Interop.Tests.PowerLoss;
using Xunit.Abstractions;

namespace Cairn.Interop.Tests;

/// <summary>
/// Crash consistency under load: a real idempotent producer (librdkafka, enable.idempotence=true, acks=all) keeps producing
/// while the broker is SIGKILLed at random (seeded) moments and restarted on the same data directory and port. Afterwards
/// every acknowledged record must be at exactly its acknowledged offset with its payload, and no payload may appear twice
/// (the producer's retries of batches the broker had written before it died must be recognised as duplicates after recovery).
/// SIGKILL keeps the page cache, so even without log.flush.on.ack nothing acknowledged may be lost.
/// Set CAIRN_CRASH_SEED to replay a seed printed by a failure.
/// </summary>
public sealed class CrashConsistencyTests(ITestOutputHelper output)
{
    private const int Partitions = 4;
    private const int MaxCycles = 10;
    private static readonly TimeSpan ChaosBudget = TimeSpan.FromSeconds(40);

    [Fact]
    public Task Idempotent_producer_loses_and_duplicates_nothing_across_SIGKILL_cycles() => RunAsync(flushOnAck: false);

    [Fact]
    public Task Idempotent_producer_loses_and_duplicates_nothing_across_SIGKILL_cycles_with_flush_on_ack() => RunAsync(flushOnAck: true);

    /// <summary>
    /// Power loss (simulated: after each SIGKILL whatever no fsync covered is discarded, see powerloss_shim.c): with
    /// log.flush.on.ack=true an acks=all record is fsynced before it is acknowledged, so none may be lost.
    /// </summary>
    [Fact]
    public async Task Flush_on_ack_loses_no_acknowledged_record_across_simulated_power_losses()
    {
        using var powerLoss = await PowerLossSimulation.BuildAsync();
        await RunAsync(flushOnAck: true, powerLoss);
    }

    /// <summary>
    /// The simulation has teeth: without log.flush.on.ack nothing is fsynced before the ack, so one power loss loses
    /// acknowledged records. (If this passes vacuously, the shim is not intercepting and the test above proves nothing.)
    /// </summary>
    [Fact]
    public async Task Without_flush_on_ack_a_simulated_power_loss_loses_acknowledged_records()
    {
        using var powerLoss = await PowerLossSimulation.BuildAsync();
        await RunAsync(flushOnAck: false, powerLoss, maxCycles: 1, expectLoss: true);
    }

    private async Task RunAsync(bool flushOnAck, PowerLossSimulation? powerLoss = null, int maxCycles = MaxCycles, bool expectLoss = false)
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("CAIRN_CRASH_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s)
            ? s
            : Random.Shared.Next();
        var rng = new Random(seed);
        var what = $"crash-consistency seed={seed} (replay: CAIRN_CRASH_SEED={seed}), log.flush.on.ack={flushOnAck.ToString().ToLowerInvariant()}" +
                   (powerLoss is null ? "" : ", simulated power loss");
        output.WriteLine(what);

        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions
        {
            FlushOnAck = flushOnAck,
            DefaultPartitions = Partitions,
            AdminListen = "none",
            Environment = powerLoss?.BrokerEnvironment ?? new Dictionary<string, string>(),
        });
        var b = broker.Bootstrap;
        var topic = Topics.Unique("crashidem");
        var total = Stopwatch.StartNew();
        var cycles = 0;
        long filesRolledBack = 0, bytesDiscarded = 0;
        var phase = "starting the producer";
        ChildProcess? producer = null;
        try
        {
            // Bounded: the driver stops at 200,000 records or 120 s on its own; we close its stdin long before.
            producer = ChildProcess.Start(Paths.Python,
            [
                Path.Combine(Paths.DriversDir, "python", "ck_client.py"), "idem-produce", "--bootstrap", b, "--topic", topic,
                "--partitions", Partitions.ToString(CultureInfo.InvariantCulture), "--max", "200000", "--max-seconds", "120",
                "--rate", "2000", "--pad", "40", "--message-timeout", "30", "--flush-seconds", "35",
            ], keepStdinOpen: true);
            await WaitForProgressAsync(producer, 0, 200, TimeSpan.FromSeconds(30), "the first acknowledgements");

            // Kill at a random moment 0.3-3 s into each run, but only once the producer made progress since the last
            // restart, so every SIGKILL lands on a client that is producing (and has requests in flight).
            phase = "SIGKILL cycles";
            var chaos = Stopwatch.StartNew();
            var linesAtLastRestart = 0;
            while (cycles < maxCycles && chaos.Elapsed < ChaosBudget)
            {
                var before = producer.StdoutLineCount;
                await Task.Delay(rng.Next(300, 3000));
                await WaitForProgressAsync(producer, before, 50, TimeSpan.FromSeconds(30), $"progress after restart #{cycles}");
                broker.Kill();
                cycles++;
                await Task.Delay(rng.Next(0, 500)); // the client notices, its requests fail and are retried
                if (powerLoss is not null)
                {
                    var (files, bytes) = await powerLoss.ApplyAsync(broker.DataDir);
                    filesRolledBack += files;
                    bytesDiscarded += bytes;
                }
                await broker.RestartAsync(graceful: false);
                linesAtLastRestart = producer.StdoutLineCount;
            }
            phase = "producing after the last restart";
            await WaitForProgressAsync(producer, linesAtLastRestart, 500, TimeSpan.FromSeconds(30), "progress after the last restart");

            phase = "stopping the producer";
            producer.StandardInput.Close();
            var produced = await producer.WaitForExitAsync(TimeSpan.FromSeconds(60));
            if (produced.ExitCode != 0) throw new InteropFailureException($"{what}: the producer failed. {produced.Describe()}");
            var run = ProducerRun.Parse(produced.StdoutLines);
            var afterLastRestart = produced.StdoutLines.Skip(linesAtLastRestart).Count(l => l.Contains("\"o\":", StringComparison.Ordinal));

            phase = "reading the log back";
            var high = (await KafkaClients.Confluent.CommandAsync("offsets", b, "--topic", topic))
                .GetProperty("partitions").EnumerateArray()
                .ToDictionary(p => p.GetProperty("partition").GetInt32(), p => p.GetProperty("high").GetInt64());
            var inLog = high.Values.Sum();
            var got = await KafkaClients.Confluent.ConsumeAsync(b, topic, checked((int)inLog), StartAt.Earliest,
                timeout: TimeSpan.FromSeconds(60));

            var check = Check(run, high, got.Records, out var lost, out var duplicates, out var inDoubtFound);
            var report =
                $"{what}: {cycles} SIGKILL cycles in {total.Elapsed.TotalSeconds:F1}s; {run.Produced} produced, {run.Acked.Count} acknowledged " +
                $"({afterLastRestart} after the last restart), {run.Failed.Count} failed and reported ({inDoubtFound} of them found in the log), " +
                $"{run.Unreported} unreported at exit; {inLog} records in the log; acknowledged lost: {lost}, duplicated payloads: {duplicates}; " +
                $"delivery errors: {Kinds(run.Failed.Values)}; client errors: {Kinds(run.ClientErrors)}; fatal: {run.Fatal.Count}" +
                (powerLoss is null ? "" : $"; power loss: {filesRolledBack} file rollbacks, {bytesDiscarded} unsynced bytes discarded");
            output.WriteLine(report);
            foreach (var line in broker.ProblemLines().Take(20)) output.WriteLine("broker: " + line);

            check.AddRange(run.ReportProblems);
            if (run.Fatal.Count > 0) check.Add($"librdkafka raised fatal errors: {string.Join("; ", run.Fatal.Take(3))}");
            Assert.True(cycles >= Math.Min(3, maxCycles), $"{report}\nonly {cycles} cycles ran");
            if (powerLoss is not null)
                Assert.True(powerLoss.TrackedFiles >= Partitions, $"{report}\nthe power-loss shim tracked only {powerLoss.TrackedFiles} files");
            if (expectLoss)
            {
                Assert.True(lost > 0, $"{report}\nno acknowledged record was lost although nothing was fsynced: the power-loss simulation is not working");
                return;
            }
            Assert.True(run.Acked.Count >= 1000, $"{report}\ntoo few acknowledgements to mean anything");
            if (got.Records.Count != inLog) check.Add($"consumed {got.Records.Count} records, the high watermarks add up to {inLog}");
            if (check.Count > 0)
                throw new InteropFailureException(
                    $"{report}\n{string.Join('\n', check.Take(30))}\n\n{broker.RecentOutput(120)}\n{got.Diagnostics[..Math.Min(1500, got.Diagnostics.Length)]}");
        }
        catch (Exception e) when (e is not InteropFailureException)
        {
            throw new InteropFailureException(
                $"{what}: failed while {phase} after {cycles} cycles ({total.Elapsed.TotalSeconds:F1}s): {e.GetType().Name}: {e.Message}\n\n{broker.RecentOutput()}", e);
        }
        finally
        {
            if (producer is not null) await producer.DisposeAsync();
        }
    }

    /// <summary>Waits (bounded) until the producer printed <paramref name="atLeast"/> more lines than <paramref name="from"/>.</summary>
    private static async Task WaitForProgressAsync(ChildProcess producer, int from, int atLeast, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (producer.StdoutLineCount < from + atLeast)
        {
            if (producer.HasExited) throw new InteropFailureException($"the producer exited before {what}. {producer.Describe("exited")}");
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"no {what} within {timeout.TotalSeconds:F0}s ({producer.StdoutLineCount - from} lines). {producer.Describe()}");
            await Task.Delay(20);
        }
    }

    /// <summary>Compares the log with the delivery reports; returns the problems found.</summary>
    private static List<string> Check(ProducerRun run, Dictionary<int, long> high, IReadOnlyList<KRecord> records,
        out int lost, out int duplicates, out int inDoubtFound)
    {
        var problems = new List<string>();
        var at = new Dictionary<(int, long), string>();
        var byId = new Dictionary<int, List<(int P, long O)>>();
        foreach (var r in records)
        {
            var value = Encoding.ASCII.GetString(r.Value ?? []);
            if (!at.TryAdd((r.Partition, r.Offset), value))
            {
                problems.Add($"the consumer returned p{r.Partition}@{r.Offset} twice");
                continue;
            }
            if (!TryId(value, out var id) || id >= run.Produced)
            {
                problems.Add($"p{r.Partition}@{r.Offset} holds '{value}', which was never produced");
                continue;
            }
            if (!byId.TryGetValue(id, out var places)) byId[id] = places = [];
            places.Add((r.Partition, r.Offset));
        }
        // Offsets are dense: no compaction, no transactions.
        foreach (var (p, h) in high)
            for (long o = 0; o < h && problems.Count < 50; o++)
                if (!at.ContainsKey((p, o))) problems.Add($"p{p}@{o} is below the high watermark {h} but was not returned");

        lost = 0;
        foreach (var (id, (p, o)) in run.Acked.OrderBy(kv => kv.Key))
        {
            if (at.TryGetValue((p, o), out var value) && value == ProducerRun.Payload(id)) continue;
            lost++;
            if (problems.Count < 80)
                problems.Add(value is null
                    ? $"record {id} acknowledged at p{p}@{o} is missing (high watermark {high.GetValueOrDefault(p)})"
                    : $"record {id} acknowledged at p{p}@{o}, but that offset holds '{value[..Math.Min(20, value.Length)]}'");
        }
        duplicates = 0;
        foreach (var (id, places) in byId.Where(kv => kv.Value.Count > 1).OrderBy(kv => kv.Key))
        {
            duplicates++;
            if (problems.Count < 100)
                problems.Add($"record {id} is in the log {places.Count} times: {string.Join(", ", places.Select(x => $"p{x.P}@{x.O}"))}" +
                             (run.Acked.TryGetValue(id, out var a) ? $" (acknowledged at p{a.P}@{a.O})" : " (not acknowledged)"));
        }
        inDoubtFound = run.Failed.Keys.Count(byId.ContainsKey);
        return problems;
    }

    private static string Kinds(IEnumerable<string> errors)
    {
        var kinds = errors.GroupBy(e => e).OrderByDescending(g => g.Count()).Select(g => $"{g.Key}×{g.Count()}").ToList();
        return kinds.Count == 0 ? "none" : string.Join(", ", kinds);
    }

    private static bool TryId(string value, out int id)
    {
        id = -1;
        return value.Length > 13 && value.StartsWith("idem-", StringComparison.Ordinal)
            && int.TryParse(value.AsSpan(5, 8), NumberStyles.None, CultureInfo.InvariantCulture, out id);
    }

    /// <summary>What the idem-produce driver printed (drivers/python/ck_client.py).</summary>
    private sealed class ProducerRun
    {
        public Dictionary<int, (int P, long O)> Acked { get; } = [];
        public Dictionary<int, string> Failed { get; } = [];
        public List<string> ClientErrors { get; } = [];
        public List<string> Fatal { get; } = [];
        public List<string> ReportProblems { get; } = [];
        public int Produced { get; private set; } = -1;
        public int Unreported { get; private set; } = -1;

        public static string Payload(int id) => string.Create(CultureInfo.InvariantCulture, $"idem-{id:D8}-") + new string('x', 40);

        public static ProducerRun Parse(IEnumerable<string> lines)
        {
            var run = new ProducerRun();
            foreach (var e in JsonLines.Parse(lines))
            {
                if (JsonLines.IsEvent(e, "error"))
                {
                    var name = e.GetProperty("err").GetString()!;
                    run.ClientErrors.Add(name);
                    if (e.GetProperty("fatal").GetBoolean()) run.Fatal.Add($"{name}: {e.GetProperty("msg").GetString()}");
                    continue;
                }
                if (JsonLines.IsEvent(e, "done"))
                {
                    run.Produced = e.GetProperty("produced").GetInt32();
                    run.Unreported = e.GetProperty("unreported").GetInt32();
                    continue;
                }
                if (!e.TryGetProperty("id", out var idElement)) continue;
                var id = idElement.GetInt32();
                if (e.TryGetProperty("err", out var err))
                {
                    if (e.GetProperty("fatal").GetBoolean()) run.Fatal.Add($"record {id}: {err.GetString()}");
                    if (!run.Failed.TryAdd(id, err.GetString()!) || run.Acked.ContainsKey(id))
                        run.ReportProblems.Add($"record {id} has more than one delivery report");
                }
                else if (!run.Acked.TryAdd(id, (e.GetProperty("p").GetInt32(), e.GetProperty("o").GetInt64())) || run.Failed.ContainsKey(id))
                    run.ReportProblems.Add($"record {id} has more than one delivery report");
            }
            if (run.Produced < 0) throw new InteropFailureException("the producer printed no \"done\" line");
            return run;
        }
    }
}
