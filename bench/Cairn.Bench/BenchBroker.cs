using System.Diagnostics;
using Cairn.Testing;

namespace Cairn.Bench;

/// <summary>
/// The bench's broker: a `cairn serve` child process (the installed or built executable, no `dotnet run`) on 127.0.0.1 with a
/// temporary data directory, started through Cairn.Testing's <see cref="BrokerProcess"/>, which keeps its output (the last
/// lines, and every warning/error line) for the report. Stopped with SIGTERM.
/// </summary>
public static class BenchBroker
{
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
    public static Task<BrokerProcess> StartAsync(string cairn, bool flushOnAck, TimeSpan startTimeout, IEnumerable<string>? settings = null) =>
        BrokerProcess.StartAsync(new BrokerOptions
        {
            Cairn = cairn,
            DefaultPartitions = null,
            AutoCreateTopics = null,
            AdminListen = "none",
            FlushOnAck = flushOnAck,
            Settings = (settings ?? []).Select(s => s.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : ""),
            StartTimeout = startTimeout,
            DataDirPrefix = $"cairn-bench-{Environment.ProcessId}-",
            StopGracefullyOnDispose = true,
            Log = message => Console.Error.WriteLine($"[bench] {message}"),
        });
}
