using Cairn.Interop.Tests.Clients;

namespace Cairn.Interop.Tests.PowerLoss;

/// <summary>
/// A simulated power loss for a broker process: powerloss_shim.c, preloaded into the broker, keeps a shadow of what each
/// data file's last fsync made durable; after a SIGKILL <see cref="ApplyAsync"/> rolls every changed file back to that
/// shadow, so whatever was only in the page cache is gone. Names (create, rename, unlink) count as durable at once.
/// Built with the system C compiler on first use.
/// </summary>
internal sealed class PowerLossSimulation : IDisposable
{
    private readonly string _work;
    private readonly string _shim;
    private readonly string _restore;

    public string ShadowDir { get; }

    private PowerLossSimulation(string work)
    {
        _work = work;
        _shim = Path.Combine(work, "powerloss_shim.so");
        _restore = Path.Combine(work, "powerloss_restore");
        ShadowDir = Path.Combine(work, "shadow");
        Directory.CreateDirectory(ShadowDir);
    }

    public static async Task<PowerLossSimulation> BuildAsync()
    {
        var source = Path.Combine(AppContext.BaseDirectory, "PowerLoss", "powerloss_shim.c");
        var sim = new PowerLossSimulation(Path.Combine(Path.GetTempPath(), "cairn-powerloss-" + Guid.NewGuid().ToString("N")[..12]));
        try
        {
            await ChildProcess.RunCheckedAsync("cc", ["-O2", "-shared", "-fPIC", "-o", sim._shim, source, "-ldl", "-lpthread"], TimeSpan.FromSeconds(60));
            await ChildProcess.RunCheckedAsync("cc", ["-O2", "-DPOWERLOSS_RESTORE", "-o", sim._restore, source], TimeSpan.FromSeconds(60));
        }
        catch
        {
            sim.Dispose();
            throw;
        }
        return sim;
    }

    /// <summary>The broker's environment: the shim tracks files under its working directory, which is its data directory.</summary>
    public IReadOnlyDictionary<string, string> BrokerEnvironment => new Dictionary<string, string>
    {
        ["LD_PRELOAD"] = _shim,
        ["POWERLOSS_ROOT"] = ".",
        ["POWERLOSS_SHADOW"] = ShadowDir,
    };

    /// <summary>Files the shim saw change so far (a check that it is loaded and intercepting).</summary>
    public int TrackedFiles => Directory.GetFiles(ShadowDir, "*.touched").Length;

    /// <summary>Rolls the (stopped) broker's data directory back to what was fsynced; returns files rolled back and bytes lost.</summary>
    public async Task<(long Files, long BytesLost)> ApplyAsync(string dataDir)
    {
        var r = await ChildProcess.RunCheckedAsync(_restore, [dataDir, ShadowDir], TimeSpan.FromSeconds(60));
        var e = JsonLines.Parse(r.StdoutLines).Last();
        return (e.GetProperty("files").GetInt64(), e.GetProperty("bytesLost").GetInt64());
    }

    public void Dispose()
    {
        try { Directory.Delete(_work, recursive: true); }
        catch (IOException) { }
    }
}
