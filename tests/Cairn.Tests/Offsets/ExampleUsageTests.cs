using Cairn.Testing;

namespace Cairn.Tests.Offsets;

/// <summary>
/// The example programs answer a usage error like the `cairn` CLI: exit code 2, one line naming the problem and the
/// usage line on stderr, no .NET exception (before this, a missing flag was an unhandled exception: exit 134).
/// </summary>
public sealed class ExampleUsageTests
{
    [Theory]
    [InlineData("ResumablePipeline", new[] { "--bootstrap", "127.0.0.1:9092", "--db", "results.db" }, "--topic is required")]
    [InlineData("ResumablePipeline", new[] { "--bootstrap", "127.0.0.1:9092", "--topic" }, "--topic needs a value")]
    [InlineData("ResumablePipeline", new[] { "--bootstrap", "127.0.0.1:9092", "--topic", "t", "--db", "r.db", "--batch", "ten" }, "--batch must be a whole number")]
    [InlineData("ResumablePipeline", new[] { "--bootstrap", "127.0.0.1:9092", "--topic", "t", "--db", "r.db", "--bacth", "10" }, "unknown argument '--bacth'")]
    [InlineData("OffsetsProbe", new string[0], "no command given")]
    [InlineData("OffsetsProbe", new[] { "lock-increment", "/tmp/root" }, "lock-increment takes 4 arguments, got 1")]
    [InlineData("OffsetsProbe", new[] { "lock-commit", "/tmp/root", "c", "p", "many" }, "COUNT must be a whole number")]
    [InlineData("OffsetsProbe", new[] { "unlock" }, "unknown command 'unlock'")]
    public async Task A_usage_error_exits_2_with_one_line_and_the_usage(string example, string[] args, string expected)
    {
        var dll = await ExampleApps.GetDllAsync(example);
        await using var run = ChildProcess.StartDll(dll, args);
        await run.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(run.ExitCode == 2, $"exit code {run.ExitCode}, expected 2\n{run.Describe()}");
        var lines = string.Join('\n', run.StderrSnapshot()).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 2, $"expected the error and the usage line on stderr\n{run.Describe()}");
        Assert.Equal($"{example}: ", lines[0][..(example.Length + 2)]);
        Assert.Contains(expected, lines[0]);
        Assert.StartsWith($"usage: {example} ", lines[1]);
        Assert.Empty(run.StdoutLinesSnapshot());
    }

    [Fact]
    public async Task An_unreachable_broker_is_one_line_and_exit_1()
    {
        using var dir = new TempDirectory();
        var dll = await ExampleApps.GetDllAsync("ResumablePipeline");
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        await using var run = ChildProcess.StartDll(dll, ["--bootstrap", "127.0.0.1:1", "--topic", "t", "--db", dir.File("results.db")]);
        await run.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(run.ExitCode == 1, $"exit code {run.ExitCode}, expected 1\n{run.Describe()}");
        var error = Assert.Single(string.Join('\n', run.StderrSnapshot()).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("ResumablePipeline: ", error);
        Assert.Contains("127.0.0.1:1", error);
    }
}
