using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Cairn.Testing;

/// <summary>How to start a broker.</summary>
public sealed record BrokerOptions
{
    /// <summary>
    /// What runs `serve`: a cairn.dll (run by <see cref="DotnetHost.Path"/>) or a `cairn` executable (apphost, .NET tool, single file).
    /// Null: <see cref="BrokerProcess.DefaultCairnDll"/>.
    /// </summary>
    public string? Cairn { get; init; }

    /// <summary>--default-partitions; null leaves the broker's default.</summary>
    public int? DefaultPartitions { get; init; } = 1;

    /// <summary>--auto-create-topics; null leaves the broker's default.</summary>
    public bool? AutoCreateTopics { get; init; } = true;

    /// <summary>--admin-listen (e.g. "none", so that no admin port collides with another broker); null leaves the broker's default.</summary>
    public string? AdminListen { get; init; }

    /// <summary>Prefix of the temporary data directory's name.</summary>
    public string DataDirPrefix { get; init; } = "cairn-broker-";

    /// <summary>Dispose stops the broker with SIGTERM (bounded, then SIGKILL) instead of SIGKILL.</summary>
    public bool StopGracefullyOnDispose { get; init; }

    /// <summary>Told when the broker starts and stops (e.g. a bench's progress on stderr); null: silent.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Told every line the broker prints (stderr lines prefixed "[stderr] "), e.g. to count error-level lines beyond the kept ones.</summary>
    public Action<string>? Output { get; init; }

    /// <summary>Adds --set log.flush.on.ack=true: acks=-1 produce is fsynced before it is acknowledged.</summary>
    public bool FlushOnAck { get; init; }

    /// <summary>Extra --set key=value pairs.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>Extra environment variables of the broker process (e.g. LD_PRELOAD for a fault-injection shim).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a start checks whether the port accepts connections (a start-up time benchmark wants it short).</summary>
    public TimeSpan StartPollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Starts the broker under `prlimit --nofile=N:N` (soft and hard open file limit N, Linux), as `ulimit -n N` would;
    /// null: the limits of this process.
    /// </summary>
    public int? OpenFileLimit { get; init; }
}

/// <summary>
/// A Cairn broker running as `dotnet cairn.dll serve` (or a `cairn` executable) on a free loopback port with a fresh data
/// directory. Supports SIGKILL, graceful SIGTERM, and restart on the same port and directory.
/// Keeps the last few hundred lines of its output for failure messages, and every warning/error line for reports.
/// </summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    public const int NodeId = 1;
    private const int KeptLogLines = 400;
    private const int KeptProblemLines = 200;

    private readonly LinkedList<string> _log = new();
    private readonly List<string> _problems = [];
    private readonly object _logGate = new();
    private Process? _process;
    private int _starts;
    private bool _ownsDataDir;

    public BrokerOptions Options { get; }
    public int Port { get; }
    public string DataDir { get; }
    public string Bootstrap => $"127.0.0.1:{Port}";
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);
    public bool IsRunning => IsExternal || _process is { HasExited: false };
    public int? Pid => _process?.Id;

    /// <summary>The exit code once the (last started) broker process has exited; null while it runs.</summary>
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>
    /// The broker built in this source tree, src/Cairn.Cli/bin/Release/net10.0/cairn.dll (CAIRN_DLL overrides it);
    /// null outside a source tree.
    /// </summary>
    public static string? DefaultCairnDll =>
        Environment.GetEnvironmentVariable("CAIRN_DLL") is { Length: > 0 } overridden ? overridden
        : RepoRoot.Find() is { } root ? Path.Combine(root, "src", "Cairn.Cli", "bin", "Release", "net10.0", "cairn.dll")
        : null;

    private string Cairn => Options.Cairn ?? DefaultCairnDll ?? throw new InvalidOperationException("no cairn.dll: not in a source tree and no BrokerOptions.Cairn");

    private BrokerProcess(BrokerOptions options, int port, string dataDir)
    {
        Options = options;
        Port = port;
        DataDir = dataDir;
    }

    /// <summary>
    /// Set CAIRN_INTEROP_EXTERNAL_PORT to run the shared-broker tests against a broker that is
    /// already listening on 127.0.0.1:PORT (e.g. to check the tests themselves against another
    /// Kafka implementation). Tests that need to kill or restart a broker still start their own.
    /// </summary>
    public static int? ExternalPort =>
        int.TryParse(Environment.GetEnvironmentVariable("CAIRN_INTEROP_EXTERNAL_PORT"), out var p) ? p : null;

    public bool IsExternal { get; private init; }

    public static BrokerProcess AttachExternal(int port) =>
        new(new BrokerOptions(), port, "(external)") { IsExternal = true };

    /// <summary>Starts a broker and waits (bounded) until its port accepts connections.</summary>
    public static async Task<BrokerProcess> StartAsync(BrokerOptions? options = null)
    {
        options ??= new BrokerOptions();
        var cairn = options.Cairn ?? DefaultCairnDll;
        if (cairn is null || !File.Exists(cairn))
            throw new FileNotFoundException(
                $"Broker build not found at {cairn ?? "src/Cairn.Cli/bin/Release/net10.0/cairn.dll"}. Build it first: `dotnet build src/Cairn.Cli -c Release` " +
                "(test.sh does this), or point CAIRN_DLL at a cairn.dll.", cairn);

        var dataDir = Path.Combine(Path.GetTempPath(), options.DataDirPrefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dataDir);
        var broker = new BrokerProcess(options, FreePort(), dataDir) { _ownsDataDir = true };
        try
        {
            await broker.LaunchAsync();
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
        return broker;
    }

    /// <summary>Picks a free loopback port: bind port 0, read it, close.</summary>
    public static int FreePort()
    {
        using var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        l.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)l.LocalEndPoint!).Port;
    }

    /// <summary>The command line after the executable: for a cairn.dll it starts with the dll (run by the dotnet host).</summary>
    public IReadOnlyList<string> Arguments()
    {
        var args = new List<string>();
        if (IsDll) args.Add(Cairn);
        args.AddRange(
        [
            "serve",
            "--listen", $"127.0.0.1:{Port}",
            "--advertised-host", "127.0.0.1",
            "--data-dir", DataDir,
            "--node-id", NodeId.ToString(),
        ]);
        if (Options.DefaultPartitions is { } partitions) args.AddRange(["--default-partitions", partitions.ToString()]);
        if (Options.AutoCreateTopics is { } autoCreate) args.AddRange(["--auto-create-topics", autoCreate ? "true" : "false"]);
        if (Options.AdminListen is { } adminListen) args.AddRange(["--admin-listen", adminListen]);
        var settings = new Dictionary<string, string>(Options.Settings);
        if (Options.FlushOnAck) settings["log.flush.on.ack"] = "true";
        foreach (var (k, v) in settings)
        {
            args.Add("--set");
            args.Add($"{k}={v}");
        }
        return args;
    }

    private async Task LaunchAsync()
    {
        if (IsRunning) throw new InvalidOperationException("Broker is already running.");
        var executable = IsDll ? DotnetHost.Path : Cairn;
        var arguments = Arguments().ToList();
        if (Options.OpenFileLimit is { } nofile)
        {
            // prlimit execs the command: the process id stays the broker's.
            arguments.InsertRange(0, [$"--nofile={nofile}:{nofile}", "--", executable]);
            executable = "prlimit";
        }
        var psi = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = DataDir,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (k, v) in Options.Environment) psi.Environment[k] = v;

        var startNo = ++_starts;
        var commandLine = $"{executable} {string.Join(' ', psi.ArgumentList)}";
        AppendLog($"===== start #{startNo}: {commandLine}");
        Options.Log?.Invoke($"starting broker: {commandLine}");
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) OnOutput(e.Data, e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) OnOutput(e.Data, "[stderr] " + e.Data); };
        process.Exited += (_, _) => AppendLog($"===== start #{startNo} exited");
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        _process = process;

        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException(
                    $"Broker exited with code {process.ExitCode} before accepting connections on {Bootstrap}.\n{RecentOutput()}");
            if (await CanConnectAsync(TimeSpan.FromSeconds(1)))
                return;
            if (clock.Elapsed > Options.StartTimeout)
            {
                var output = RecentOutput();
                Kill();
                throw new TimeoutException(
                    $"Broker did not accept connections on {Bootstrap} within {Options.StartTimeout.TotalSeconds:F0}s.\n{output}");
            }
            await Task.Delay(Options.StartPollInterval);
        }
    }

    private bool IsDll => Cairn.EndsWith(".dll", StringComparison.OrdinalIgnoreCase);

    private async Task<bool> CanConnectAsync(TimeSpan timeout)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), cts.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>SIGKILL (the whole process tree) and wait for it to be gone.</summary>
    public void Kill()
    {
        var p = _process;
        if (p is null) return;
        try
        {
            if (!p.HasExited)
            {
                AppendLog("===== test harness: SIGKILL");
                p.Kill(entireProcessTree: true);
            }
            p.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int SysKill(int pid, int sig);

    private const int SIGTERM = 15;

    /// <summary>
    /// Graceful stop: SIGTERM, then wait (bounded). Returns the exit code. If the broker does not
    /// exit in time it is killed and a TimeoutException is thrown.
    /// </summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        var p = _process ?? throw new InvalidOperationException("Broker was never started.");
        if (p.HasExited) return p.ExitCode;
        AppendLog("===== test harness: SIGTERM");
        Options.Log?.Invoke($"stopping broker (kill -TERM {p.Id})");
        if (SysKill(p.Id, SIGTERM) != 0)
            throw new InvalidOperationException($"kill(SIGTERM) failed with errno {Marshal.GetLastPInvokeError()}");
        var wait = timeout ?? TimeSpan.FromSeconds(20);
        using var cts = new CancellationTokenSource(wait);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            var output = RecentOutput();
            Kill();
            throw new TimeoutException($"Broker did not exit within {wait.TotalSeconds:F0}s of SIGTERM.\n{output}");
        }
        p.WaitForExit(); // drain the output events
        Options.Log?.Invoke($"broker exited with code {p.ExitCode}");
        return p.ExitCode;
    }

    /// <summary>Starts the broker again on the same port and data directory.</summary>
    public async Task RestartAsync(bool graceful = true)
    {
        if (IsRunning)
        {
            if (graceful) await StopAsync();
            else Kill();
        }
        await LaunchAsync();
    }

    private void OnOutput(string line, string logged)
    {
        AppendLog(logged);
        Options.Output?.Invoke(logged);
        if (!IsProblem(line)) return;
        lock (_logGate)
        {
            if (_problems.Count < KeptProblemLines) _problems.Add(line);
        }
    }

    private static bool IsProblem(string line) =>
        line.Contains("warn", StringComparison.OrdinalIgnoreCase) || line.Contains("fail", StringComparison.OrdinalIgnoreCase) ||
        line.Contains("crit", StringComparison.OrdinalIgnoreCase) || line.Contains("error", StringComparison.OrdinalIgnoreCase) ||
        line.Contains("exception", StringComparison.OrdinalIgnoreCase) || line.StartsWith("   at ", StringComparison.Ordinal);

    /// <summary>Every warning, error or stack trace line the broker printed (up to 200), for reports.</summary>
    public IReadOnlyList<string> ProblemLines()
    {
        lock (_logGate) return _problems.ToList();
    }

    /// <summary>The last <paramref name="lines"/> lines of output, without a header.</summary>
    public string Tail(int lines)
    {
        lock (_logGate) return string.Join('\n', _log.Skip(Math.Max(0, _log.Count - lines)));
    }

    public void AppendLog(string line)
    {
        lock (_logGate)
        {
            _log.AddLast(line);
            while (_log.Count > KeptLogLines) _log.RemoveFirst();
        }
    }

    /// <summary>The last lines the broker printed (all starts), for failure messages.</summary>
    public string RecentOutput(int lines = 300)
    {
        lock (_logGate)
        {
            var tail = _log.Skip(Math.Max(0, _log.Count - lines));
            return $"--- broker {Bootstrap} data {DataDir}, last output ---\n{string.Join('\n', tail)}\n--- end of broker output ---";
        }
    }

    /// <summary>SIGKILL, or with <see cref="BrokerOptions.StopGracefullyOnDispose"/> SIGTERM first; deletes the data directory it made.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Options.StopGracefullyOnDispose && _process is { HasExited: false })
        {
            try { await StopAsync(); }
            catch (TimeoutException) { Options.Log?.Invoke("broker did not exit within 20 s of SIGTERM; killed it"); }
        }
        Kill();
        _process?.Dispose();
        _process = null;
        if (_ownsDataDir)
        {
            for (var attempt = 0; attempt < 5 && Directory.Exists(DataDir); attempt++)
            {
                try
                {
                    Directory.Delete(DataDir, recursive: true);
                }
                catch (IOException)
                {
                    await Task.Delay(200);
                }
                catch (UnauthorizedAccessException)
                {
                    await Task.Delay(200);
                }
            }
            if (Directory.Exists(DataDir)) Options.Log?.Invoke($"could not delete {DataDir}");
        }
    }
}
