using System.Diagnostics;
using System.Net.Http;
using Cairn.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Cairn.Interop.Tests.Readme;

/// <summary>
/// README.md's shell examples run as written, top to bottom, against a fresh broker process (item 8 of issue 8): every
/// ```sh block not marked <c>&lt;!-- not run: … --&gt;</c> runs under bash with <c>set -euo pipefail</c>, in one shared
/// working directory (so a file one block writes is there for the next), with the README's 127.0.0.1:9092 /
/// localhost:9092 and :9644 replaced by the test broker's Kafka and admin ports, the built `cairn` executable first on
/// PATH and CAIRN_BOOTSTRAP_SERVER set. Each command must exit 0, and its stdout must contain the text after "→" in its
/// comment. A failure names the block, the README line and command, and shows what the command printed.
/// </summary>
public sealed class ReadmeExamplesTests(ITestOutputHelper output)
{
    private static readonly TimeSpan BlockTimeout = TimeSpan.FromSeconds(120);

    // Lower bounds, so that marking blocks "not run" or losing the annotations cannot make this test pass vacuously.
    private const int MinimumBlocksRun = 3;
    private const int MinimumCommandsRun = 18;
    private const int MinimumOutputChecks = 8;

    private static string ReadmePath => Path.Combine(Paths.RepoRoot, "README.md");

    [Fact]
    public void The_README_blocks_parse_and_enough_of_them_run()
    {
        var blocks = ReadmeScript.Blocks(File.ReadAllText(ReadmePath));
        var run = blocks.Where(b => b.Runs).ToList();
        var commands = run.SelectMany(ReadmeScript.Commands).ToList();
        Assert.True(run.Count >= MinimumBlocksRun, $"only {run.Count} README sh blocks run (at least {MinimumBlocksRun} expected)");
        Assert.True(commands.Count >= MinimumCommandsRun, $"only {commands.Count} README commands run (at least {MinimumCommandsRun} expected)");
        Assert.True(commands.Count(c => c.Expected is not null) >= MinimumOutputChecks,
            $"only {commands.Count(c => c.Expected is not null)} README commands have an expected output (at least {MinimumOutputChecks} expected)");
        // The blocks that do not run are the ones that cannot in a test, each with its reason.
        foreach (var b in blocks.Where(b => !b.Runs))
            output.WriteLine($"not run: {b}: {b.NotRunReason}");
    }

    /// <summary>The harness itself: a wrong expectation, a failing command and a failing pipeline stage each fail the block.</summary>
    [Theory]
    [InlineData("echo hello   # → hello", 0, null)]
    [InlineData("echo hello >&2   # → hello", 0, null)]
    [InlineData("echo hello   # → goodbye", 3, "output lacks the expected text: goodbye")]
    [InlineData("echo one\nfalse\necho three", 1, "### README line 9: false")]
    [InlineData("false | cat   # → anything", 1, "### README line 8: false | cat")]
    [InlineData("echo a \\\n  b   # → a b", 0, null)]
    public async Task The_harness_fails_a_block_on_a_failing_command_or_a_missing_output(string body, int exitCode, string? stderr)
    {
        var markdown = "text\n\n<!-- not run: an example -->\n```sh\nexit 9\n```\n```sh\n" + body + "\n```\n";
        var blocks = ReadmeScript.Blocks(markdown);
        Assert.Equal(2, blocks.Count);
        Assert.Equal("an example", blocks[0].NotRunReason);
        var r = await ChildProcess.RunAsync("bash", ["-c", ReadmeScript.Script(blocks[1])], TimeSpan.FromSeconds(20));
        Assert.True(r.ExitCode == exitCode, r.Describe());
        if (stderr is not null) Assert.Contains(stderr, r.Stderr);
    }

    [Fact]
    public async Task The_README_examples_run_as_written()
    {
        var blocks = ReadmeScript.Blocks(File.ReadAllText(ReadmePath));
        var cairnDir = Path.GetDirectoryName(Paths.CairnDll)!;
        var cairn = Path.Combine(cairnDir, "cairn");
        Assert.True(File.Exists(cairn), $"no built cairn executable at {cairn}: build first (`dotnet build Cairn.slnx -c Release`)");

        var adminPort = BrokerProcess.FreePort();
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions
        {
            DefaultPartitions = 1,
            AutoCreateTopics = true,
            Settings = new Dictionary<string, string> { ["admin.listen"] = $"127.0.0.1:{adminPort}" },
        });
        await WaitForAdminAsync(adminPort, broker);

        var work = Directory.CreateTempSubdirectory("cairn-readme-").FullName;
        var env = new Dictionary<string, string>
        {
            ["PATH"] = cairnDir + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH"),
            ["CAIRN_BOOTSTRAP_SERVER"] = broker.Bootstrap,
        };
        try
        {
            var ran = 0;
            foreach (var original in blocks)
            {
                if (!original.Runs)
                {
                    output.WriteLine($"not run: {original}: {original.NotRunReason}");
                    continue;
                }
                var block = original with { Text = Substitute(original.Text, broker.Port, adminPort) };
                Assert.False(block.Text.Contains("9092") || block.Text.Contains("9644"),
                    $"{block} names port 9092 or 9644 in a form the test does not replace; write 127.0.0.1:9092 or localhost:9092 (9644 alike)\n{block.Text}");
                await RequireToolsAsync(block, env);
                await RunBlockAsync(block, work, env, broker);
                ran++;
            }
            Assert.True(ran >= MinimumBlocksRun, $"ran {ran} README blocks, at least {MinimumBlocksRun} expected");
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static string Substitute(string text, int kafkaPort, int adminPort) => text
        .Replace("127.0.0.1:9092", $"127.0.0.1:{kafkaPort}").Replace("localhost:9092", $"127.0.0.1:{kafkaPort}")
        .Replace("127.0.0.1:9644", $"127.0.0.1:{adminPort}").Replace("localhost:9644", $"127.0.0.1:{adminPort}");

    private async Task RunBlockAsync(ReadmeBlock block, string work, Dictionary<string, string> env, BrokerProcess broker)
    {
        var script = ReadmeScript.Script(block);
        await using var bash = ChildProcess.Start("bash", ["-c", script], env: env, workingDirectory: work);
        ProcessResult r;
        try
        {
            r = await bash.WaitForExitAsync(BlockTimeout);
        }
        catch (TimeoutException e)
        {
            throw new InteropFailureException($"{block} did not finish within {BlockTimeout.TotalSeconds:F0}s; last command started: " +
                $"{LastMarker(string.Join('\n', bash.StderrSnapshot()))}\n{e.Message}\n\n{broker.RecentOutput(60)}");
        }
        output.WriteLine($"ran {block}: {ReadmeScript.Commands(block).Count} commands in {r.Elapsed.TotalSeconds:F1}s");
        if (r.ExitCode != 0)
        {
            var marker = LastMarker(r.Stderr);
            var since = marker is null ? r.Stderr : r.Stderr[(r.Stderr.LastIndexOf(marker, StringComparison.Ordinal) + marker.Length)..].Trim();
            throw new InteropFailureException(
                $"{block} failed with exit code {r.ExitCode} at {marker?[ReadmeScript.MarkerPrefix.Length..] ?? "(before its first command)"}\n" +
                $"--- that command's stderr ---\n{since}\n--- block stdout ---\n{r.Stdout}\n--- block as run ---\n{block.Text}\n\n{broker.RecentOutput(60)}");
        }
    }

    private static string? LastMarker(string stderr) =>
        stderr.Split('\n').LastOrDefault(l => l.StartsWith(ReadmeScript.MarkerPrefix, StringComparison.Ordinal));

    /// <summary>The README's examples use these tools; a missing one is named (test.sh installs them), not a bare exit 127.</summary>
    private static async Task RequireToolsAsync(ReadmeBlock block, Dictionary<string, string> env)
    {
        foreach (var tool in new[] { "cairn", "kcat", "curl" })
        {
            if (!ReadmeScript.Commands(block).Any(c => c.Text.Split([' ', '|'], StringSplitOptions.RemoveEmptyEntries).Contains(tool))) continue;
            var r = await ChildProcess.RunAsync("bash", ["-c", $"command -v {tool}"], TimeSpan.FromSeconds(10), env: env);
            if (r.ExitCode != 0)
                throw new InteropFailureException($"{block} uses `{tool}`, which is not installed (test.sh installs it)");
        }
    }

    private static async Task WaitForAdminAsync(int port, BrokerProcess broker)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{port}/healthz")).IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
                throw new InteropFailureException($"the broker's admin API did not answer on 127.0.0.1:{port} within 30s\n{broker.RecentOutput(60)}");
            await Task.Delay(100);
        }
    }
}
