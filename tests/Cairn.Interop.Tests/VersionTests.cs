using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>`cairn --version`, the broker's start-up line and the admin API (the dashboard shows it) name one version.</summary>
public sealed class VersionTests
{
    [Fact]
    public async Task The_CLI_the_start_up_log_and_the_admin_API_agree_on_the_version()
    {
        var cli = (await ChildProcess.RunCheckedAsync(Paths.DotnetHost, [Paths.CairnDll, "--version"])).Stdout.Trim();
        Assert.Matches(@"^\d+\.\d+\.\d+\S*$", cli);

        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions
        {
            Settings = new Dictionary<string, string> { ["admin.listen"] = "127.0.0.1:0" },
        });
        await broker.WithBrokerLogAsync(async () =>
        {
            Match listening = Match.Empty, admin = Match.Empty;
            var clock = Stopwatch.StartNew();
            while ((!listening.Success || !admin.Success) && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                var log = broker.RecentOutput();
                listening = Regex.Match(log, @"Cairn (\S+) listening on 127\.0\.0\.1:" + broker.Port);
                admin = Regex.Match(log, @"dashboard on http://127\.0\.0\.1:(\d+)/");
                if (!listening.Success || !admin.Success) await Task.Delay(100);
            }
            Assert.True(listening.Success && admin.Success, "no start-up and admin lines in the broker log");
            Assert.Equal(cli, listening.Groups[1].Value);

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var json = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{admin.Groups[1].Value}/api/v1/broker"));
            Assert.Equal(cli, json.RootElement.GetProperty("version").GetString());
        });
    }
}
