using System.Net;
using System.Net.Sockets;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>
/// `cairn serve` start-up failures as a user meets them: each is one line on stderr with the documented exit code
/// (2 for configuration errors, 1 for a broker that cannot start), never a .NET stack trace or type name. Every listener
/// binds exclusively: a second broker on a taken port exits at once instead of sharing it.
/// </summary>
public sealed class ServeStartupTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);

    private static async Task<ProcessResult> ServeAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-serve-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            return await ChildProcess.RunAsync(Paths.DotnetHost, [Paths.CairnDll, "serve", "--data-dir", dataDir, .. args], ExitTimeout, env: env);
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>The whole stderr is the one expected line; nothing anywhere looks like a stack trace or a .NET type.</summary>
    private static void AssertOneLineError(ProcessResult r, int exitCode, string expectedLine)
    {
        Assert.True(r.ExitCode == exitCode, $"expected exit code {exitCode}. {r.Describe()}");
        Assert.True(r.Stderr.Trim() == expectedLine, $"expected stderr to be exactly '{expectedLine}'. {r.Describe()}");
        AssertNoDotnetInternals(r);
    }

    private static void AssertNoDotnetInternals(ProcessResult r)
    {
        foreach (var text in new[] { r.Stdout, r.Stderr })
        {
            Assert.False(text.Contains("   at ", StringComparison.Ordinal), $"stack trace in the output. {r.Describe()}");
            Assert.False(text.Contains("Exception", StringComparison.Ordinal), $"exception name in the output. {r.Describe()}");
            Assert.False(text.Contains("System.", StringComparison.Ordinal), $".NET type name in the output. {r.Describe()}");
            Assert.False(text.Contains("fail:", StringComparison.Ordinal), $"a fail-level log line in the output. {r.Describe()}");
        }
    }

    /// <summary>Holds 127.0.0.1:port in LISTEN state, as another server would.</summary>
    private static Socket Listen(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
        socket.Listen(16);
        return socket;
    }

    [Fact]
    public async Task A_second_broker_on_a_taken_Kafka_port_exits_with_one_line()
    {
        await using var first = await BrokerProcess.StartAsync();
        await first.WithBrokerLogAsync(async () =>
        {
            var r = await ServeAsync(["--listen", first.Bootstrap, "--admin-listen", "none"]);
            AssertOneLineError(r, 1, $"cairn serve: cannot listen on {first.Bootstrap}: address already in use");
            Assert.True(r.Elapsed < TimeSpan.FromSeconds(30), $"the second broker took {r.Elapsed} to give up. {r.Describe()}");

            // The first broker still owns the port: every connection reaches it (none went to the second).
            for (int i = 0; i < 5; i++)
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, first.Port).WaitAsync(TimeSpan.FromSeconds(10));
            }
            Assert.True(first.IsRunning);
        });
    }

    [Fact]
    public async Task An_explicit_admin_address_that_is_taken_stops_start_up_with_one_line()
    {
        // Taken by another broker's admin server (Kestrel against Kestrel: neither may share the port).
        var adminPort = BrokerProcess.FreePort();
        await using var first = await BrokerProcess.StartAsync(new BrokerOptions
        {
            Settings = new Dictionary<string, string> { ["admin.listen"] = $"127.0.0.1:{adminPort}" },
        });
        await first.WithBrokerLogAsync(async () =>
        {
            await WaitForLogAsync(first, $"dashboard on http://127.0.0.1:{adminPort}/");
            var r = await ServeAsync(["--listen", $"127.0.0.1:{BrokerProcess.FreePort()}", "--admin-listen", $"127.0.0.1:{adminPort}"]);
            AssertOneLineError(r, 1, $"cairn serve: cannot listen on 127.0.0.1:{adminPort}: address already in use");
        });
    }

    private static async Task WaitForLogAsync(BrokerProcess broker, string text)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!broker.RecentOutput().Contains(text, StringComparison.Ordinal))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException($"no '{text}' in the broker log within 30 s");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task The_default_admin_address_is_best_effort_with_one_warning_line()
    {
        // 127.0.0.1:9644 taken: by this socket, or already by another broker on this machine (bind fails then).
        Socket? holder = null;
        try { holder = Listen(9644); } catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse) { }
        using var _ = holder;
        var kafkaPort = BrokerProcess.FreePort();
        var dataDir = Directory.CreateTempSubdirectory("cairn-serve-");
        await using var broker = ChildProcess.Start(Paths.DotnetHost,
            [Paths.CairnDll, "serve", "--listen", $"127.0.0.1:{kafkaPort}", "--data-dir", dataDir.FullName]);
        try
        {
            var warning = await broker.WaitForStdoutLineAsync(l => l.Contains("admin API not started"), TimeSpan.FromSeconds(60), "the admin warning");
            Assert.Contains("warn:", warning);
            Assert.Contains("cannot listen on 127.0.0.1:9644: address already in use", warning);
            using (var client = new TcpClient())
                await client.ConnectAsync(IPAddress.Loopback, kafkaPort).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.False(broker.HasExited, broker.Describe());
            var output = string.Join('\n', broker.StdoutLinesSnapshot().Concat(broker.StderrSnapshot()));
            Assert.Equal(1, broker.StdoutLinesSnapshot().Count(l => l.Contains("9644")));
            Assert.False(output.Contains("   at ", StringComparison.Ordinal) || output.Contains("fail:", StringComparison.Ordinal)
                || output.Contains("Exception", StringComparison.Ordinal), broker.Describe());
        }
        finally
        {
            broker.Kill();
            await broker.WaitForExitAsync(TimeSpan.FromSeconds(20));
            dataDir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("--config|missing.properties", "cairn serve: cannot read config file missing.properties: not found")]
    [InlineData("--set|log.retension.ms=1000", "cairn serve: unknown setting 'log.retension.ms' (did you mean log.retention.ms")]
    [InlineData("--set|no.such.setting=1", "cairn serve: unknown setting 'no.such.setting'")]
    [InlineData("--node-id|abc", "cairn serve: node.id must be an integer in [0, 2147483647], got 'abc'")]
    [InlineData("--default-partitions|0", "cairn serve: default.partitions must be an integer in [1, 100000], got '0'")]
    [InlineData("--set|log.segment.bytes=big", "cairn serve: log.segment.bytes: Invalid value big for configuration segment.bytes")]
    [InlineData("--listen|nohost", "cairn serve: listen must be HOST:PORT, got 'nohost'")]
    [InlineData("--log-level|loud", "cairn serve: --log-level must be trace, debug, information, warning, error, critical or none, got 'loud'")]
    public async Task Configuration_errors_are_one_line_and_exit_code_2(string args, string expectedStart)
    {
        var r = await ServeAsync([.. args.Split('|'), "--admin-listen", "none"]);
        Assert.True(r.ExitCode == 2, $"expected exit code 2. {r.Describe()}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith(expectedStart, StringComparison.Ordinal), $"expected one line starting '{expectedStart}'. {r.Describe()}");
        AssertNoDotnetInternals(r);
    }

    [Fact]
    public async Task A_data_directory_that_cannot_be_created_is_one_line_and_exit_code_1()
    {
        var file = Path.GetTempFileName(); // a file where a directory is needed: fails even as root
        try
        {
            var dataDir = Path.Combine(file, "data");
            var r = await ChildProcess.RunAsync(Paths.DotnetHost,
                [Paths.CairnDll, "serve", "--data-dir", dataDir, "--listen", $"127.0.0.1:{BrokerProcess.FreePort()}", "--admin-listen", "none"], ExitTimeout);
            Assert.True(r.ExitCode == 1, $"expected exit code 1. {r.Describe()}");
            Assert.True(r.Stderr.Trim().StartsWith($"cairn serve: cannot create data directory {dataDir}: ", StringComparison.Ordinal)
                && !r.Stderr.Trim().Contains('\n'), r.Describe());
            AssertNoDotnetInternals(r);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task CLI_environment_variables_do_not_stop_serve()
    {
        // The README tells CLI users to export CAIRN_BOOTSTRAP_SERVER; serve must start anyway, without complaint.
        var kafkaPort = BrokerProcess.FreePort();
        var dataDir = Directory.CreateTempSubdirectory("cairn-serve-");
        await using var broker = ChildProcess.Start(Paths.DotnetHost,
            [Paths.CairnDll, "serve", "--listen", $"127.0.0.1:{kafkaPort}", "--data-dir", dataDir.FullName, "--admin-listen", "none"],
            env: new Dictionary<string, string> { ["CAIRN_BOOTSTRAP_SERVER"] = "127.0.0.1:1", ["CAIRN_NOT_A_SETTING"] = "x" });
        try
        {
            var listening = await broker.WaitForStdoutLineAsync(l => l.Contains(" listening on "), TimeSpan.FromSeconds(60), "the listening line");
            Assert.Contains($"listening on 127.0.0.1:{kafkaPort}", listening);
            Assert.Equal(["cairn serve: warning: ignoring CAIRN_NOT_A_SETTING (not a broker setting)"], broker.StderrSnapshot());
        }
        finally
        {
            broker.Kill();
            await broker.WaitForExitAsync(TimeSpan.FromSeconds(20));
            dataDir.Delete(recursive: true);
        }
    }
}
