using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Clients;

/// <summary>
/// A client driven through one of the scripts in drivers/ (kafka-python, confluent-kafka,
/// kafkajs). All three share one command line and print JSON lines (see drivers/python/common.py).
/// </summary>
public sealed class ScriptClient : IKafkaClient
{
    private readonly string _exe;
    private readonly string _script;

    public string Name { get; }
    public ClientCaps Caps { get; }

    private ScriptClient(string name, string exe, string script, ClientCaps caps)
    {
        Name = name;
        _exe = exe;
        _script = script;
        Caps = caps;
    }

    public static ScriptClient Python(string name, string script, ClientCaps caps) =>
        new(name, Paths.Python, Path.Combine("python", script), caps);

    public static ScriptClient Node(string name, string script, ClientCaps caps) =>
        new(name, "node", Path.Combine("node", script), caps);

    public override string ToString() => Name;

    private List<string> Args(string command, string bootstrap, IEnumerable<string> extra)
    {
        var args = new List<string> { Path.Combine(Paths.DriversDir, _script), command, "--bootstrap", bootstrap };
        args.AddRange(extra);
        return args;
    }

    /// <summary>Runs a driver command and returns its result without judging the exit code.</summary>
    public Task<ProcessResult> RunAsync(string command, string bootstrap, IEnumerable<string> extra, TimeSpan? timeout = null) =>
        ChildProcess.RunAsync(_exe, Args(command, bootstrap, extra), timeout ?? ChildProcess.DefaultTimeout);

    /// <summary>Runs an admin-style command that prints one JSON object; fails unless it exits 0.</summary>
    public async Task<JsonElement> CommandAsync(string command, string bootstrap, params string[] extra)
    {
        var r = (await RunAsync(command, bootstrap, extra)).EnsureSuccess();
        var objects = JsonLines.Parse(r.StdoutLines).ToList();
        if (objects.Count == 0)
            throw new ExternalCommandException($"{Name} {command} printed no JSON. {r.Describe()}");
        return objects[^1];
    }

    public async Task<ProduceResult> ProduceAsync(string bootstrap, string topic, IReadOnlyList<OutRecord> records,
        string codec = "none", bool idempotent = false)
    {
        var input = Path.Combine(Path.GetTempPath(), $"cairn-interop-{Guid.NewGuid():N}.jsonl");
        await File.WriteAllTextAsync(input, string.Join('\n', records.Select(r => r.ToJsonLine())) + "\n", new UTF8Encoding(false));
        try
        {
            var extra = new List<string> { "--topic", topic, "--input", input, "--codec", codec, "--timeout", "45" };
            if (idempotent) extra.Add("--idempotent");
            var r = await RunAsync("produce", bootstrap, extra, TimeSpan.FromSeconds(75));
            var acks = new List<Ack>();
            var errors = new List<string>();
            foreach (var e in JsonLines.Parse(r.StdoutLines))
            {
                if (!e.TryGetProperty("i", out var i)) continue;
                if (e.TryGetProperty("error", out var err))
                    errors.Add($"record {i.GetInt32()}: {err.GetString()}");
                else
                    acks.Add(new Ack(i.GetInt32(), e.GetProperty("partition").GetInt32(), e.GetProperty("offset").GetInt64()));
            }
            if (r.ExitCode != 0 || errors.Count > 0 || acks.Count != records.Count)
                throw new ExternalCommandException(
                    $"{Name} produce ({codec}) to {topic}: {acks.Count}/{records.Count} acknowledged; " +
                    $"{string.Join("; ", errors.Take(5))}\n{r.Describe()}");
            return new ProduceResult { Acks = acks.OrderBy(a => a.Index).ToList(), Diagnostics = r.Describe() };
        }
        finally
        {
            File.Delete(input);
        }
    }

    public async Task<RunningConsumer> StartConsumeAsync(string bootstrap, string topic, int count, StartAt start,
        int[]? partitions = null, TimeSpan? timeout = null)
    {
        var bound = timeout ?? TimeSpan.FromSeconds(30);
        var extra = new List<string>
        {
            "--topic", topic,
            "--partitions", partitions is null ? "all" : string.Join(',', partitions),
            "--start", start.Spec,
            "--count", count.ToString(),
            "--timeout", ((int)bound.TotalSeconds).ToString(),
        };
        var p = ChildProcess.Start(_exe, Args("consume", bootstrap, extra));
        try
        {
            await p.WaitForStdoutLineAsync(l => l.Contains("\"event\":\"ready\"") || l.Contains("\"event\": \"ready\""),
                TimeSpan.FromSeconds(40), $"{Name} consumer to be positioned on {topic} ({start})");
        }
        catch
        {
            await p.DisposeAsync();
            throw;
        }
        return new Running(p, bound + TimeSpan.FromSeconds(20), Name);
    }

    private sealed class Running(ChildProcess process, TimeSpan timeout, string name) : RunningConsumer(process, timeout)
    {
        public override async Task<ConsumeResult> FinishAsync()
        {
            var r = await Process.WaitForExitAsync(Timeout);
            if (r.ExitCode != 0)
                throw new ExternalCommandException($"{name} consumer failed. {r.Describe()}");
            var records = new List<KRecord>();
            var timedOut = false;
            foreach (var e in JsonLines.Parse(r.StdoutLines))
            {
                if (JsonLines.IsEvent(e, "timeout")) timedOut = true;
                if (e.TryGetProperty("offset", out _) && e.TryGetProperty("partition", out _))
                    records.Add(KRecord.FromJson(e));
            }
            return new ConsumeResult { Records = records, TimedOut = timedOut, Diagnostics = r.Describe() };
        }
    }
}
