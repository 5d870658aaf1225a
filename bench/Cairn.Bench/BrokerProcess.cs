using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Cairn.Bench;

/// <summary>
/// A `cairn serve` child process (the installed or built executable, no `dotnet run`) on 127.0.0.1 with a temporary data directory. Its output is kept
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

    /// <summary>
    /// The `cairn` executable that starts the broker: <paramref name="explicitPath"/> (--cairn), else `cairn` on PATH
    /// (a .NET tool or a single-file install), else the apphost built in the source tree, src/Cairn.Cli/bin/Release/net10.0/cairn
    /// (built first unless <paramref name="noBuild"/>). Throws a <see cref="BenchFailure"/> naming the ways to get one.
    /// </summary>
    public static async Task<string> LocateCairnAsync(string? explicitPath, bool noBuild)
    {
        if (explicitPath is not null)
            return IsExecutable(explicitPath) ? Path.GetFullPath(explicitPath) : throw new BenchFailure($"--cairn {explicitPath}: no such executable file");
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "cairn")).FirstOrDefault(IsExecutable);
        if (onPath is not null) return onPath;

        var root = Bench.FindRepoRoot();
        if (root is null)
            throw new BenchFailure("no `cairn` executable: pass --cairn PATH, or install cairn on PATH (README: Installing cairn)");
        var built = Path.Combine(root, "src", "Cairn.Cli", "bin", "Release", "net10.0", "cairn");
        if (!noBuild)
        {
            Console.Error.WriteLine("[bench] no `cairn` on PATH; dotnet build src/Cairn.Cli -c Release");
            var buildError = await BuildAsync(root, TimeSpan.FromMinutes(5));
            if (buildError is not null)
                throw new BenchFailure("broker build failed (dotnet build src/Cairn.Cli -c Release):\n" + Bench.Indent(Bench.Trim(buildError, 30)));
        }
        return IsExecutable(built) ? built
            : throw new BenchFailure($"no `cairn` executable: not on PATH and not built at {built}; pass --cairn PATH, install cairn " +
                                     "(README: Installing cairn) or build it (dotnet build src/Cairn.Cli -c Release)");
    }

    private static bool IsExecutable(string path) =>
        File.Exists(path) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0);

    /// <summary>Runs `dotnet build src/Cairn.Cli -c Release`; returns the build output when it fails.</summary>
    private static async Task<string?> BuildAsync(string repoRoot, TimeSpan timeout)
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

    /// <summary>
    /// Starts `<paramref name="cairn"/> serve` on a free 127.0.0.1 port without the admin HTTP server (`--admin-listen none`),
    /// so that neither port collides with a broker already running on this machine (README step 1 holds 9092 and 9644).
    /// </summary>
    /// <param name="settings">More `--set KEY=VALUE` settings (e.g. offset.store=sqlite).</param>
    public static async Task<BrokerProcess> StartAsync(string cairn, bool flushOnAck, TimeSpan startTimeout, IEnumerable<string>? settings = null)
    {
        int port = FreeLoopbackPort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var dataDir = Path.Combine(Path.GetTempPath(), $"cairn-bench-{Environment.ProcessId}-{port}");
        Directory.CreateDirectory(dataDir);
        var args = new List<string> { "serve", "--listen", $"127.0.0.1:{port}", "--admin-listen", "none", "--data-dir", dataDir };
        if (flushOnAck) { args.Add("--set"); args.Add("log.flush.on.ack=true"); }
        foreach (var setting in settings ?? []) { args.Add("--set"); args.Add(setting); }
        var psi = new ProcessStartInfo(cairn, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var broker = new BrokerProcess(process, endPoint, dataDir, flushOnAck);
        process.OutputDataReceived += (_, e) => broker.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => broker.OnLine(e.Data);
        Console.Error.WriteLine($"[bench] starting broker: {cairn} {string.Join(' ', args)}");
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
