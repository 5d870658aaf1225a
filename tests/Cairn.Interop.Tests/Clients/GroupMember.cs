using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Clients;

/// <summary>The consumer-group drivers: kcat -G and the group-consume command of the three scripts.</summary>
public enum GroupDriver { Kcat, Confluent, KafkaPython, Kafkajs }

public sealed record GroupMemberOptions
{
    /// <summary>confluent-kafka: manual (commit after every batch and on revoke) or auto. kafka-python: auto or manual (with metadata).</summary>
    public string? Commit { get; init; }
    /// <summary>partition.assignment.strategy (confluent-kafka only).</summary>
    public string? Strategy { get; init; }
    /// <summary>group.instance.id (static membership; confluent-kafka and kcat).</summary>
    public string? InstanceId { get; init; }
    /// <summary>kafka-python manual commits: metadata prefix ("PREFIX:partition:offset").</summary>
    public string? MetadataPrefix { get; init; }
    public int SessionTimeoutMs { get; init; } = 6000;
    public int HeartbeatMs { get; init; } = 500;
    /// <summary>Processing time per record (confluent-kafka only), to keep consumption going during rebalances.</summary>
    public int DelayMs { get; init; }
    /// <summary>confluent-kafka: records per consume() call, i.e. per commit.</summary>
    public int? Batch { get; init; }
    /// <summary>Bound on the member's whole life (the driver exits on its own after it).</summary>
    public int LifetimeSeconds { get; init; } = 150;
}

/// <summary>A consumed record as a group member reported it (values are text in group tests).</summary>
public sealed record GroupRecord(int Partition, long Offset, string Value)
{
    public override string ToString() => $"p{Partition}@{Offset} '{Value}'";
}

/// <summary>An assignment change: assigned / revoked / lost, with the partitions owned afterwards.</summary>
public sealed record AssignmentEvent(string Kind, IReadOnlyList<int> Partitions, IReadOnlyList<int> Owned, TimeSpan At)
{
    public override string ToString() => $"{At.TotalSeconds:F2}s {Kind} [{string.Join(',', Partitions)}] owned [{string.Join(',', Owned)}]";
}

/// <summary>
/// One consumer-group member process. Records, assignment changes and commits are parsed from its
/// output as they arrive (JSON lines for the scripts, the -f format and the "% Group ... rebalanced"
/// lines for kcat). Stopping it cleanly sends SIGTERM: the member commits, leaves and exits 0.
/// </summary>
public sealed class GroupMember : IAsyncDisposable
{
    private static readonly Regex KcatRebalance = new(@"^% Group (?<group>\S+) rebalanced \(memberid (?<member>[^)]*)\): (?<kind>assigned|revoked): ?(?<parts>.*)$");
    private static readonly Regex KcatPartition = new(@"\[(\d+)\]");

    private readonly ChildProcess _process;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly object _gate = new();
    private readonly List<GroupRecord> _records = new();
    private readonly List<AssignmentEvent> _assignments = new();
    private readonly Dictionary<int, long> _committed = new();
    private readonly List<string> _commitFailures = new();
    private int _stdoutParsed;
    private int _stderrParsed;
    private bool _closed;
    private bool _stopRequested;
    private readonly List<string> _otherEvents = new();

    public string Name { get; }
    public GroupDriver Driver { get; }
    public string Topic { get; }
    public string Group { get; }

    private GroupMember(string name, GroupDriver driver, string topic, string group, ChildProcess process)
    {
        Name = name;
        Driver = driver;
        Topic = topic;
        Group = group;
        _process = process;
    }

    public override string ToString() => $"{Name} ({Driver})";

    private const string KcatFormat = "%p %o %s\\n";

    public static GroupMember Start(GroupDriver driver, string name, string bootstrap, string topic, string group,
        GroupMemberOptions? options = null)
    {
        var o = options ?? new GroupMemberOptions();
        ChildProcess p;
        if (driver == GroupDriver.Kcat)
        {
            // kcat -G runs until stopped: `timeout` bounds its life (and forwards SIGTERM to it).
            var args = new List<string>
            {
                "--kill-after=5", o.LifetimeSeconds.ToString(CultureInfo.InvariantCulture), KcatClient.Exe,
                "-G", group, "-b", bootstrap, "-u", "-f", KcatFormat,
                "-X", "auto.offset.reset=earliest",
                "-X", $"session.timeout.ms={o.SessionTimeoutMs}",
                "-X", $"heartbeat.interval.ms={o.HeartbeatMs}",
                "-X", "max.poll.interval.ms=20000",
                "-X", "auto.commit.interval.ms=500",
                "-X", "fetch.wait.max.ms=100",
                "-X", $"client.id=kcat-{name}",
            };
            if (o.InstanceId is not null) args.AddRange(["-X", $"group.instance.id={o.InstanceId}"]);
            args.Add(topic);
            p = ChildProcess.Start("timeout", args);
        }
        else
        {
            var (exe, script) = driver switch
            {
                GroupDriver.Confluent => (Paths.Python, Path.Combine("python", "ck_client.py")),
                GroupDriver.KafkaPython => (Paths.Python, Path.Combine("python", "kp_client.py")),
                _ => ("node", Path.Combine("node", "kjs_client.js")),
            };
            var args = new List<string>
            {
                Path.Combine(Paths.DriversDir, script), "group-consume", "--bootstrap", bootstrap,
                "--topic", topic, "--group", group,
                "--session-timeout", o.SessionTimeoutMs.ToString(CultureInfo.InvariantCulture),
                "--heartbeat", o.HeartbeatMs.ToString(CultureInfo.InvariantCulture),
                "--timeout", o.LifetimeSeconds.ToString(CultureInfo.InvariantCulture),
            };
            if (driver != GroupDriver.Kafkajs) args.AddRange(["--client-id", $"{driver.ToString().ToLowerInvariant()}-{name}"]);
            if (o.Commit is not null) args.AddRange(["--commit", o.Commit]);
            if (o.Strategy is not null) args.AddRange(["--strategy", o.Strategy]);
            if (o.InstanceId is not null) args.AddRange(["--instance-id", o.InstanceId]);
            if (o.MetadataPrefix is not null) args.AddRange(["--metadata", o.MetadataPrefix]);
            if (o.DelayMs > 0) args.AddRange(["--delay-ms", o.DelayMs.ToString(CultureInfo.InvariantCulture)]);
            if (o.Batch is { } batch) args.AddRange(["--batch", batch.ToString(CultureInfo.InvariantCulture)]);
            p = ChildProcess.Start(exe, args);
        }
        return new GroupMember(name, driver, topic, group, p);
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public bool StopRequested => _stopRequested;

    private void Update()
    {
        lock (_gate)
        {
            var lines = _process.StdoutLinesSnapshot();
            for (; _stdoutParsed < lines.Count; _stdoutParsed++)
            {
                if (Driver == GroupDriver.Kcat) ParseKcatRecord(lines[_stdoutParsed]);
                else ParseEvent(lines[_stdoutParsed]);
            }
            if (Driver == GroupDriver.Kcat)
            {
                var err = _process.StderrSnapshot();
                for (; _stderrParsed < err.Count; _stderrParsed++)
                {
                    var m = KcatRebalance.Match(err[_stderrParsed].Trim());
                    if (!m.Success) continue;
                    var parts = KcatPartition.Matches(m.Groups["parts"].Value).Select(x => int.Parse(x.Groups[1].Value, CultureInfo.InvariantCulture)).OrderBy(x => x).ToList();
                    var kind = m.Groups["kind"].Value;
                    var owned = kind == "assigned" ? parts : [];
                    _assignments.Add(new AssignmentEvent(kind, parts, owned, _clock.Elapsed));
                }
            }
        }
    }

    private void ParseKcatRecord(string line)
    {
        var f = line.Split(' ', 3);
        if (f.Length == 3 && int.TryParse(f[0], out var p) && long.TryParse(f[1], out var o))
            _records.Add(new GroupRecord(p, o, f[2]));
        else
            _otherEvents.Add("unparsed: " + line);
    }

    private void ParseEvent(string line)
    {
        var t = line.Trim();
        if (!t.StartsWith('{')) return;
        JsonElement e;
        try
        {
            e = JsonDocument.Parse(t).RootElement;
        }
        catch (JsonException)
        {
            return;
        }
        var ev = e.TryGetProperty("event", out var x) ? x.GetString() : null;
        switch (ev)
        {
            case "record":
                _records.Add(new GroupRecord(e.GetProperty("partition").GetInt32(), e.GetProperty("offset").GetInt64(),
                    e.GetProperty("value").GetString() ?? "(null)"));
                break;
            case "assigned" or "revoked" or "lost":
                _assignments.Add(new AssignmentEvent(ev,
                    e.GetProperty("partitions").EnumerateArray().Select(p => p.GetInt32()).ToList(),
                    e.GetProperty("owned").EnumerateArray().Select(p => p.GetInt32()).ToList(), _clock.Elapsed));
                break;
            case "committed":
                foreach (var prop in e.GetProperty("offsets").EnumerateObject())
                    _committed[int.Parse(prop.Name, CultureInfo.InvariantCulture)] = prop.Value.GetInt64();
                break;
            case "commit-failed":
                _commitFailures.Add(t);
                break;
            case "closed":
                _closed = true;
                break;
            default:
                if (ev is not null && ev != "subscribed") _otherEvents.Add(t);
                break;
        }
    }

    public IReadOnlyList<GroupRecord> Records
    {
        get { Update(); lock (_gate) return _records.ToList(); }
    }

    public IReadOnlyList<AssignmentEvent> Assignments
    {
        get { Update(); lock (_gate) return _assignments.ToList(); }
    }

    /// <summary>Partitions owned now; null before the first assignment.</summary>
    public IReadOnlySet<int>? Owned
    {
        get
        {
            Update();
            lock (_gate)
                return _assignments.Count == 0 ? null : _assignments[^1].Owned.ToHashSet();
        }
    }

    /// <summary>The last offset each partition was committed at, as the member reported it (confluent-kafka manual, kafka-python manual, kafkajs).</summary>
    public IReadOnlyDictionary<int, long> Committed
    {
        get { Update(); lock (_gate) return new Dictionary<int, long>(_committed); }
    }

    public IReadOnlyList<string> CommitFailures
    {
        get { Update(); lock (_gate) return _commitFailures.ToList(); }
    }

    public IReadOnlyList<string> OtherEvents
    {
        get { Update(); lock (_gate) return _otherEvents.ToList(); }
    }

    public bool Closed
    {
        get { Update(); lock (_gate) return _closed; }
    }

    public string Describe() => Describe(_process.HasExited ? "exited" : "running");

    /// <summary>One line: records consumed and the assignment history.</summary>
    public string Summary() =>
        $"{Name} ({Driver}): {Records.Count} records; " +
        string.Join(" → ", Assignments.Select(a => $"{a.Kind}[{string.Join(',', a.Partitions)}]@{a.At.TotalSeconds:F1}s")) +
        (CommitFailures.Count > 0 ? $"; {CommitFailures.Count} failed commit(s), first: {CommitFailures[0]}" : "");

    private string Describe(string state)
    {
        Update();
        string assignments;
        lock (_gate) assignments = string.Join("\n  ", _assignments);
        var records = Records;
        return $"member {Name} ({Driver}, {state}): {records.Count} records, assignments:\n  {assignments}\n" +
               $"other events: {string.Join("; ", OtherEvents.Take(20))}\n" + Truncated(_process.Describe(state));
    }

    private static string Truncated(string s) => s.Length <= 8000 ? s : s[..2000] + "\n…\n" + s[^6000..];

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int SysKill(int pid, int sig);

    private const int SIGTERM = 15;

    /// <summary>Sends SIGTERM (a clean stop: commit, leave the group) without waiting.</summary>
    public void RequestStop()
    {
        _stopRequested = true;
        if (!_process.HasExited && SysKill(_process.Id, SIGTERM) != 0)
            throw new InvalidOperationException($"kill(SIGTERM) of {Name} failed with errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>SIGTERM and wait (bounded) for a clean exit: exit code 0 and, for the scripts, the "closed" event.</summary>
    public async Task StopAsync(TimeSpan? timeout = null)
    {
        RequestStop();
        var r = await _process.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(30));
        if (r.ExitCode != 0)
            throw new InteropFailureException($"member {Name} exited with code {r.ExitCode} after SIGTERM.\n{Describe("exited")}");
        if (Driver != GroupDriver.Kcat && !Closed)
            throw new InteropFailureException($"member {Name} exited without closing its consumer.\n{Describe("exited")}");
    }

    /// <summary>SIGKILL (no commit, no leave), then wait until its output is read to the end.</summary>
    public async Task KillAsync()
    {
        _stopRequested = true;
        _process.Kill();
        await _process.WaitForExitAsync(TimeSpan.FromSeconds(15));
    }

    public async ValueTask DisposeAsync() => await _process.DisposeAsync();
}

/// <summary>Waits and checks across the members of one group.</summary>
public static class GroupCheck
{
    /// <summary>
    /// Waits (bounded) until the condition holds. Fails early, with every member's output, if a
    /// member that was not asked to stop exits.
    /// </summary>
    public static async Task UntilAsync(IEnumerable<GroupMember> members, Func<bool> condition, TimeSpan timeout, string what)
    {
        var list = members.ToList();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (condition()) return;
            var died = list.FirstOrDefault(m => m.HasExited && !m.StopRequested);
            if (died is not null)
            {
                await Task.Delay(300);
                if (condition()) return;
                throw new InteropFailureException($"member {died.Name} exited while waiting for {what}.\n{DescribeAll(list)}");
            }
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0}s waiting for {what}.\n{DescribeAll(list)}");
            await Task.Delay(50);
        }
    }

    public static string DescribeAll(IEnumerable<GroupMember> members) =>
        string.Join("\n", members.Select(m => m.Describe()));

    /// <summary>True once every live member has an assignment and they split all partitions between them (no overlap).</summary>
    public static bool Balanced(IEnumerable<GroupMember> members, int partitions, bool everyMemberHasPartitions = false)
    {
        var owned = members.Where(m => !m.StopRequested).Select(m => m.Owned).ToList();
        if (owned.Any(o => o is null)) return false;
        if (everyMemberHasPartitions && owned.Any(o => o!.Count == 0)) return false;
        var all = owned.SelectMany(o => o!).ToList();
        return all.Count == partitions && all.Distinct().Count() == partitions && all.All(p => p >= 0 && p < partitions);
    }

    /// <summary>Every expected record consumed (by some member).</summary>
    public static bool AllConsumed(IEnumerable<GroupMember> members, IReadOnlyDictionary<(int, long), string> expected)
    {
        var seen = members.SelectMany(m => m.Records).Select(r => (r.Partition, r.Offset)).ToHashSet();
        return expected.Keys.All(seen.Contains);
    }

    /// <summary>
    /// Problems with "every expected record consumed exactly once, nothing else": duplicates (with
    /// who consumed them), records never produced, wrong values, missing records.
    /// </summary>
    public static List<string> ExactlyOnce(IEnumerable<GroupMember> members, IReadOnlyDictionary<(int, long), string> expected)
    {
        var problems = new List<string>();
        var byKey = members.SelectMany(m => m.Records.Select(r => (Member: m.Name, Record: r)))
            .GroupBy(x => (x.Record.Partition, x.Record.Offset)).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var (key, seen) in byKey.OrderBy(kv => kv.Key))
        {
            if (problems.Count > 40) break;
            if (!expected.TryGetValue(key, out var value))
            {
                problems.Add($"p{key.Item1}@{key.Item2} '{seen[0].Record.Value}' consumed by {string.Join(", ", seen.Select(s => s.Member))} but not expected");
                continue;
            }
            if (seen.Count > 1)
                problems.Add($"p{key.Item1}@{key.Item2} '{value}' consumed {seen.Count} times, by {string.Join(", ", seen.Select(s => s.Member))}");
            if (seen.Any(s => s.Record.Value != value))
                problems.Add($"p{key.Item1}@{key.Item2}: value '{seen.First(s => s.Record.Value != value).Record.Value}', expected '{value}'");
        }
        var missing = expected.Keys.Where(k => !byKey.ContainsKey(k)).OrderBy(k => k).ToList();
        foreach (var k in missing.Take(20)) problems.Add($"p{k.Item1}@{k.Item2} '{expected[k]}' never consumed");
        if (missing.Count > 20) problems.Add($"… {missing.Count} records never consumed in all");
        return problems;
    }
}

/// <summary>Producing numbered text records over all partitions of a topic and remembering where they landed.</summary>
public static class GroupData
{
    /// <summary>
    /// Produces <paramref name="count"/> records "prefix-i" round-robin over the partitions (acks=all,
    /// confluent-kafka) and returns (partition, offset) → value for each.
    /// </summary>
    public static async Task<Dictionary<(int, long), string>> ProduceAsync(string bootstrap, string topic, string prefix, int count, int partitions)
    {
        var records = Enumerable.Range(0, count).Select(i => new OutRecord
        {
            Partition = i % partitions,
            Key = Encoding.ASCII.GetBytes($"k{i}"),
            Value = Encoding.ASCII.GetBytes($"{prefix}-{i:D4}"),
        }).ToList();
        var produced = await KafkaClients.Confluent.ProduceAsync(bootstrap, topic, records);
        var result = new Dictionary<(int, long), string>();
        foreach (var a in produced.Acks!)
            result[(a.Partition, a.Offset)] = Encoding.ASCII.GetString(records[a.Index].Value!);
        return result;
    }

    /// <summary>The high watermark of each partition implied by everything produced so far (offsets start at 0).</summary>
    public static Dictionary<int, long> Ends(IEnumerable<(int Partition, long Offset)> produced, int partitions)
    {
        var ends = Enumerable.Range(0, partitions).ToDictionary(p => p, _ => 0L);
        foreach (var (p, o) in produced) ends[p] = Math.Max(ends[p], o + 1);
        return ends;
    }

    public static Dictionary<(int, long), string> Merge(params IReadOnlyDictionary<(int, long), string>[] parts)
    {
        var all = new Dictionary<(int, long), string>();
        foreach (var part in parts)
            foreach (var (k, v) in part)
                all.Add(k, v);
        return all;
    }

    public static string Show(IReadOnlyDictionary<int, long> offsets) =>
        "{" + string.Join(", ", offsets.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}:{kv.Value}")) + "}";
}
