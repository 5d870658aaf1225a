using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Cairn.Bench;

/// <summary>
/// A `cairn serve` child process on 127.0.0.1 with a temporary data directory. Its output is kept
/// (the last lines, and every warning/error line) for the report. Stopped with SIGTERM.
/// </summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly object _gate = new();
    private readonly Queue<string> _tail = new();
    private readonly List<string> _problems = [];

    public IPEndPoint EndPoint { get; }
    public string DataDir { get; }
    public bool FlushOnAck { get; }
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    private BrokerProcess(Process process, IPEndPoint endPoint, string dataDir, bool flushOnAck)
    {
        _process = process;
        EndPoint = endPoint;
        DataDir = dataDir;
        FlushOnAck = flushOnAck;
    }

    /// <summary>Runs `dotnet build src/Cairn.Cli -c Release`; returns the build output when it fails.</summary>
    public static async Task<string?> BuildAsync(string repoRoot, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("dotnet", ["build", Path.Combine(repoRoot, "src", "Cairn.Cli"), "-c", "Release", "-nologo", "-v", "q"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = repoRoot,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            return "build timed out";
        }
        return p.ExitCode == 0 ? null : (await stdout) + (await stderr);
    }

    /// <summary>Whether `cairn serve --help` of <paramref name="brokerDll"/> lists <paramref name="option"/> (e.g. --admin-listen, which older builds lack).</summary>
    public static async Task<bool> ServeSupportsAsync(string brokerDll, string option)
    {
        try
        {
            var psi = new ProcessStartInfo("dotnet", [brokerDll, "serve", "--help"]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await p.WaitForExitAsync(cts.Token);
            return (await stdout + await stderr).Contains(option, StringComparison.Ordinal);
        }
        catch (Exception)
        {
            return false;
        }
    }

    /// <param name="settings">More `--set KEY=VALUE` settings (e.g. offset.store=sqlite).</param>
    public static async Task<BrokerProcess> StartAsync(string brokerDll, bool flushOnAck, TimeSpan startTimeout, IEnumerable<string>? settings = null)
    {
        if (!File.Exists(brokerDll)) throw new FileNotFoundException($"broker not built: {brokerDll}");
        int port = FreeLoopbackPort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var dataDir = Path.Combine(Path.GetTempPath(), $"cairn-bench-{Environment.ProcessId}-{port}");
        Directory.CreateDirectory(dataDir);
        var args = new List<string> { brokerDll, "serve", "--listen", $"127.0.0.1:{port}", "--data-dir", dataDir };
        if (flushOnAck) { args.Add("--set"); args.Add("log.flush.on.ack=true"); }
        foreach (var setting in settings ?? []) { args.Add("--set"); args.Add(setting); }
        var psi = new ProcessStartInfo("dotnet", args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var broker = new BrokerProcess(process, endPoint, dataDir, flushOnAck);
        process.OutputDataReceived += (_, e) => broker.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => broker.OnLine(e.Data);
        Console.Error.WriteLine($"[bench] starting broker: dotnet {string.Join(' ', args)}");
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await Task.Delay(200); // let the output drain
                var tail = broker.Tail(40);
                broker.DeleteData();
                throw new InvalidOperationException($"broker exited with code {process.ExitCode} before accepting connections:\n{tail}");
            }
            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await probe.ConnectAsync(endPoint, cts.Token);
                return broker;
            }
            catch (Exception) when (deadline.Elapsed < startTimeout)
            {
                await Task.Delay(100);
            }
            catch (Exception e)
            {
                await broker.DisposeAsync();
                throw new TimeoutException($"broker did not accept connections on {endPoint} within {startTimeout.TotalSeconds:0}s ({e.Message}):\n{broker.Tail(40)}");
            }
        }
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_gate)
        {
            _tail.Enqueue(line);
            while (_tail.Count > 200) _tail.Dequeue();
            if ((line.Contains("warn", StringComparison.OrdinalIgnoreCase) || line.Contains("fail", StringComparison.OrdinalIgnoreCase) ||
                 line.Contains("crit", StringComparison.OrdinalIgnoreCase) || line.Contains("error", StringComparison.OrdinalIgnoreCase) ||
                 line.Contains("exception", StringComparison.OrdinalIgnoreCase) || line.StartsWith("   at ", StringComparison.Ordinal))
                && _problems.Count < 200)
                _problems.Add(line);
        }
    }

    public string Tail(int lines)
    {
        lock (_gate) return string.Join('\n', _tail.Skip(Math.Max(0, _tail.Count - lines)));
    }

    public IReadOnlyList<string> ProblemLines()
    {
        lock (_gate) return _problems.ToList();
    }

    private static int FreeLoopbackPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private void DeleteData()
    {
        try { if (Directory.Exists(DataDir)) Directory.Delete(DataDir, recursive: true); }
        catch (Exception e) { Console.Error.WriteLine($"[bench] could not delete {DataDir}: {e.Message}"); }
    }

    /// <summary>SIGTERM (`kill -TERM pid`), up to 20 s to exit, then SIGKILL; deletes the data directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Console.Error.WriteLine($"[bench] stopping broker (kill -TERM {_process.Id})");
            using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString()]) { UseShellExecute = false }))
                await kill!.WaitForExitAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("[bench] broker did not exit within 20 s of SIGTERM; killing it");
                _process.Kill();
                await _process.WaitForExitAsync();
            }
            Console.Error.WriteLine($"[bench] broker exited with code {_process.ExitCode}");
        }
        DeleteData();
        _process.Dispose();
    }
}
