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

    public static string RepoRoot { get; } = Cairn.Testing.RepoRoot.Find()
        ?? throw new InvalidOperationException($"cannot find the repository root (Cairn.slnx) above {AppContext.BaseDirectory}");

    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    /// <summary>The path of examples/<paramref name="project"/>'s built dll (building it first if needed).</summary>
    public static Task<string> GetDllAsync(string project) =>
        s_builds.GetOrAdd(project, p => new Lazy<Task<string>>(() => BuildAsync(p))).Value;

    private static async Task<string> BuildAsync(string project)
    {
        var dir = Path.Combine(RepoRoot, "examples", project);
        var csproj = Path.Combine(dir, project + ".csproj");
        if (!File.Exists(csproj)) throw new FileNotFoundException($"example project {csproj} is missing");
        var dll = Path.Combine(dir, "bin", Configuration, "net10.0", project + ".dll");
        if (File.Exists(dll) && File.GetLastWriteTimeUtc(dll) >= NewestInput(csproj)) return dll;

        var psi = new ProcessStartInfo(Cairn.Testing.DotnetHost.Path)
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
