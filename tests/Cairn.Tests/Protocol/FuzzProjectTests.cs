using Cairn.Testing;

namespace Cairn.Tests.Protocol;

/// <summary>
/// fuzz/Cairn.Fuzz is not in Cairn.slnx (running it needs an instrumentation step, see fuzz/README.md), so this keeps it
/// honest: it must build warning-free against the current protocol code, and both targets must accept every input of
/// the committed seed corpus (uninstrumented, in-process replay).
/// </summary>
public sealed class FuzzProjectTests
{
    [Fact]
    public async Task Fuzz_targets_build_and_pass_their_seed_corpus()
    {
        var root = RepoRoot.Find() ?? throw new InvalidOperationException("not in a source tree");
        var output = Path.Combine(Path.GetTempPath(), "cairn-fuzz-build-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var build = await ChildProcess.RunAsync(DotnetHost.Path,
                ["build", Path.Combine(root, "fuzz", "Cairn.Fuzz"), "-c", "Release", "-nologo", "-clp:ErrorsOnly;Summary", "-o", output],
                TimeSpan.FromMinutes(8));
            build.EnsureSuccess();
            Assert.Contains(" 0 Warning(s)", build.Stdout, StringComparison.Ordinal);

            foreach (var target in new[] { "request", "records" })
            {
                var corpus = Path.Combine(root, "fuzz", "corpus", target);
                Assert.True(Directory.EnumerateFiles(corpus).Count() >= 20, $"{corpus} holds too few seeds");
                var replay = await ChildProcess.RunAsync(DotnetHost.Path, [Path.Combine(output, "Cairn.Fuzz.dll"), target, corpus], TimeSpan.FromMinutes(2));
                replay.EnsureSuccess();
                Assert.Contains("0 failing input(s)", replay.Stdout, StringComparison.Ordinal);
            }
        }
        finally
        {
            try { Directory.Delete(output, recursive: true); } catch (IOException) { }
        }
    }
}
