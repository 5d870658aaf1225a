using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Cairn.Tests.Offsets;

/// <summary>
/// Finds, and builds when missing or out of date, the console projects under examples/ that tests run as child
/// processes. Builds happen at most once per test run and project, in the configuration the tests were built in.
/// </summary>
internal static partial class ExampleApps
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<string>>> s_builds = new(StringComparer.Ordinal);

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    /// <summary>The path of examples/<paramref name="project"/>'s built dll (building it first if needed).</summary>
    public static Task<string> GetDllAsync(string project) =>
        s_builds.GetOrAdd(project, p => new Lazy<Task<string>>(() => BuildAsync(p))).Value;

    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static async Task<string> BuildAsync(string project)
    {
        var dir = Path.Combine(RepoRoot, "examples", project);
        var csproj = Path.Combine(dir, project + ".csproj");
        if (!File.Exists(csproj)) throw new FileNotFoundException($"example project {csproj} is missing");
        var dll = Path.Combine(dir, "bin", Configuration, "net10.0", project + ".dll");
        if (File.Exists(dll) && File.GetLastWriteTimeUtc(dll) >= NewestInput(csproj)) return dll;

        var psi = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot,
        };
        foreach (var a in new[] { "build", csproj, "-c", Configuration, "-nologo", "-v:q", "-nr:false" }) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0 || !File.Exists(dll))
            throw new InvalidOperationException($"building {csproj} failed (exit {process.ExitCode}):\n{await stdout}\n{await stderr}");
        return dll;
    }

    /// <summary>The newest write time of the project's and its project references' sources.</summary>
    private static DateTime NewestInput(string csproj)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var newest = DateTime.MinValue;
        var queue = new Queue<string>([Path.GetFullPath(csproj)]);
        while (queue.TryDequeue(out var project))
        {
            if (!seen.Add(project) || !File.Exists(project)) continue;
            var dir = Path.GetDirectoryName(project)!;
            foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(dir, file);
                if (relative.StartsWith("bin" + Path.DirectorySeparatorChar) || relative.StartsWith("obj" + Path.DirectorySeparatorChar)) continue;
                if (!file.EndsWith(".cs", StringComparison.Ordinal) && !file.EndsWith(".csproj", StringComparison.Ordinal)) continue;
                var time = File.GetLastWriteTimeUtc(file);
                if (time > newest) newest = time;
            }
            foreach (Match m in ProjectReference().Matches(File.ReadAllText(project)))
                queue.Enqueue(Path.GetFullPath(Path.Combine(dir, m.Groups[1].Value.Replace('\\', Path.DirectorySeparatorChar))));
        }
        foreach (var props in new[] { "Directory.Build.props" })
        {
            var path = Path.Combine(RepoRoot, props);
            if (File.Exists(path) && File.GetLastWriteTimeUtc(path) > newest) newest = File.GetLastWriteTimeUtc(path);
        }
        return newest;
    }

    [GeneratedRegex("""<ProjectReference\s+Include="([^"]+)" """, RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex ProjectReference();

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException($"cannot find the repository root (Cairn.slnx) above {AppContext.BaseDirectory}");
    }
}

/// <summary>A child process whose stdout lines can be awaited; killed (whole tree) on dispose if still running.</summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly System.Text.StringBuilder _stderr = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process) => _process = process;

    public static ChildProcess StartDll(string dll, IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(ExampleApps.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (environment is not null) foreach (var (k, v) in environment) psi.Environment[k] = v;
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data, stderr: false);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data, stderr: true);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public StreamWriter StandardInput => _process.StandardInput;

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.ToArray(); }
    }

    public string StandardError
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    public string Describe() => $"stdout:\n{string.Join('\n', Lines.TakeLast(40))}\nstderr:\n{StandardError}";

    private void OnLine(string? line, bool stderr)
    {
        if (line is null)
        {
            (stderr ? _stderrClosed : _stdoutClosed).TrySetResult();
        }
        else if (stderr)
        {
            lock (_stderr) _stderr.AppendLine(line);
        }
        else
        {
            lock (_lines) _lines.Add(line);
        }
        TaskCompletionSource changed;
        lock (_lines)
        {
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    /// <summary>Waits for a stdout line matching <paramref name="match"/> (already printed or still to come).</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_lines)
            {
                var found = _lines.FirstOrDefault(match);
                if (found is not null) return found;
                changed = _changed.Task;
            }
            if (_stdoutClosed.Task.IsCompleted)
                throw new InvalidOperationException($"process {Id} ended its output without the expected line\n{Describe()}");
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"process {Id}: no expected line within {timeout}\n{Describe()}");
            }
        }
    }

    /// <summary>SIGKILL (no chance to clean up), then wait for it and its output.</summary>
    public async Task KillAsync()
    {
        try { _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        await WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"process {Id} did not exit within {timeout}\n{Describe()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            try { await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token); } catch (OperationCanceledException) { }
        }
        _process.Dispose();
    }
}

/// <summary>A temp directory deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "cairn-offsets-") => Path = Directory.CreateTempSubdirectory(prefix).FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
