using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Cairn.Interop.Tests.Infrastructure;

/// <summary>How to start a broker.</summary>
public sealed record BrokerOptions
{
    public int DefaultPartitions { get; init; } = 1;
    public bool AutoCreateTopics { get; init; } = true;

    /// <summary>Adds --set log.flush.on.ack=true: acks=-1 produce is fsynced before it is acknowledged.</summary>
    public bool FlushOnAck { get; init; }

    /// <summary>Extra --set key=value pairs.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A Cairn broker running as `dotnet cairn.dll serve` on a free loopback port with a fresh data
/// directory. Supports SIGKILL, graceful SIGTERM, and restart on the same port and directory.
/// Keeps the last few hundred lines of its output for failure messages.
/// </summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    public const int NodeId = 1;
    private const int KeptLogLines = 400;

    private readonly LinkedList<string> _log = new();
    private readonly object _logGate = new();
    private Process? _process;
    private int _starts;
    private bool _ownsDataDir;

    public BrokerOptions Options { get; }
    public int Port { get; }
    public string DataDir { get; }
    public string Bootstrap => $"127.0.0.1:{Port}";
    public bool IsRunning => IsExternal || _process is { HasExited: false };
    public int? Pid => _process?.Id;

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
        var dll = Paths.CairnDll;
        if (!File.Exists(dll))
            throw new FileNotFoundException(
                $"Broker build not found at {dll}. Build it first: `dotnet build src/Cairn.Cli -c Release` " +
                "(test.sh does this), or point CAIRN_DLL at a cairn.dll.", dll);

        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-interop-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dataDir);
        var broker = new BrokerProcess(options ?? new BrokerOptions(), FreePort(), dataDir) { _ownsDataDir = true };
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

    public IReadOnlyList<string> Arguments()
    {
        var args = new List<string>
        {
            Paths.CairnDll, "serve",
            "--listen", $"127.0.0.1:{Port}",
            "--advertised-host", "127.0.0.1",
            "--data-dir", DataDir,
            "--node-id", NodeId.ToString(),
            "--default-partitions", Options.DefaultPartitions.ToString(),
            "--auto-create-topics", Options.AutoCreateTopics ? "true" : "false",
        };
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
        var psi = new ProcessStartInfo(Paths.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = DataDir,
        };
        foreach (var a in Arguments()) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";

        var startNo = ++_starts;
        AppendLog($"===== start #{startNo}: {Paths.DotnetHost} {string.Join(' ', psi.ArgumentList)}");
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) AppendLog(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) AppendLog("[stderr] " + e.Data); };
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
            await Task.Delay(100);
        }
    }

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

    public async ValueTask DisposeAsync()
    {
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
        }
    }
}
