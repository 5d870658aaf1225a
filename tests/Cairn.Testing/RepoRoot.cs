namespace Cairn.Testing;

/// <summary>The source tree the tests or the bench run from.</summary>
public static class RepoRoot
{
    private static readonly Lazy<string?> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return dir.FullName;
        }
        return null;
    });

    /// <summary>The directory holding Cairn.slnx above the running assembly, or null (e.g. an installed bench).</summary>
    public static string? Find() => s_root.Value;
}

/// <summary>The dotnet host to run a .dll with.</summary>
public static class DotnetHost
{
    /// <summary>The host running this process when the SDK says so (DOTNET_HOST_PATH), so children run on the same runtime; else `dotnet`.</summary>
    public static string Path =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}
