namespace Cairn.Interop.Tests.Infrastructure;

/// <summary>Locations of the repository, the broker build and the client drivers.</summary>
public static class Paths
{
    /// <summary>The directory holding Cairn.slnx, found by walking up from the test binaries.</summary>
    public static string RepoRoot => Cairn.Testing.RepoRoot.Find() ?? throw new InvalidOperationException(
        $"Could not find the repository root (a directory with Cairn.slnx) above {AppContext.BaseDirectory}.");

    /// <summary>The broker entry assembly (override with CAIRN_DLL).</summary>
    public static string CairnDll => BrokerProcess.DefaultCairnDll ?? Path.Combine(RepoRoot, "src", "Cairn.Cli", "bin", "Release", "net10.0", "cairn.dll");

    /// <summary>
    /// The client driver scripts (drivers/node, drivers/python). The source tree is preferred, because test.sh installs the node
    /// packages there; the copy next to the test assembly is the fallback.
    /// </summary>
    public static string DriversDir
    {
        get
        {
            var source = Path.Combine(RepoRoot, "tests", "Cairn.Interop.Tests", "drivers");
            return Directory.Exists(source) ? source : Path.Combine(AppContext.BaseDirectory, "drivers");
        }
    }

    /// <summary>Debian's python: python3-kafka and python3-confluent-kafka import only there.</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>The dotnet host running the tests, so the broker runs on the same runtime.</summary>
    public static string DotnetHost => Cairn.Testing.DotnetHost.Path;
}
