namespace Cairn.Tests.Admin;

/// <summary>
/// The dashboard in headless Chromium: after a scripted produce and commit the page shows the group's lag, its chart
/// and the topics; a screenshot is saved to TestResults/artifacts/dashboard.png (or $CAIRN_TEST_ARTIFACTS).
/// </summary>
public sealed class DashboardBrowserTests
{
    public static string ArtifactsDirectory()
    {
        var configured = Environment.GetEnvironmentVariable("CAIRN_TEST_ARTIFACTS");
        if (!string.IsNullOrEmpty(configured)) return configured;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Cairn.slnx"))) return Path.Combine(dir.FullName, "TestResults", "artifacts");
        return Path.Combine(Directory.GetCurrentDirectory(), "TestResults", "artifacts");
    }

    [Fact]
    public async Task The_dashboard_shows_a_groups_lag_after_produce_and_commit()
    {
        await using var b = await AdminBroker.StartAsync(o => o with { Admin = o.Admin with { LagSampleInterval = TimeSpan.FromMilliseconds(500) } });
        long tenMinutesAgo = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeMilliseconds();

        // Scripted traffic: 40 + 20 orders, a caught-up "audit" group, and "billing" catching up in steps.
        await b.ProduceAsync("orders", 0, 40, tenMinutesAgo);
        await b.ProduceAsync("orders", 1, 20, tenMinutesAgo);
        await b.ProduceAsync("payments", 0, 12, tenMinutesAgo);
        Assert.Equal(0, await b.CommitAsync("audit", "orders", 0, 40));
        Assert.Equal(0, await b.CommitAsync("audit", "orders", 1, 20));
        foreach (var (p0, p1) in new[] { (0L, 0L), (15L, 0L), (15L, 5L), (25L, 10L) })
        {
            Assert.Equal(0, await b.CommitAsync("billing", "orders", 0, p0));
            Assert.Equal(0, await b.CommitAsync("billing", "orders", 1, p1));
            await Task.Delay(1100); // two samples at each step
        }
        const long expectedLag = (40 - 25) + (20 - 10);

        await using var browser = await HeadlessChromium.LaunchAsync(1280, 900);
        await browser.NavigateAsync($"http://127.0.0.1:{b.BaseAddress.Port}/?refresh=1000");
        var lag = await browser.WaitForAsync(
            $"(() => {{ const e = document.querySelector('[data-group=\"billing\"] .lag'); return e && e.dataset.lag === '{expectedLag}' ? e.textContent : ''; }})()",
            TimeSpan.FromSeconds(30));
        Assert.Equal(expectedLag.ToString(), lag);
        Assert.Equal("0", await browser.WaitForAsync("document.querySelector('[data-group=\"audit\"] .lag')?.textContent ?? ''", TimeSpan.FromSeconds(10)));
        // The chart has a line through the sampled history, and the topics table lists the partitions.
        await browser.WaitForAsync("document.querySelector('[data-group=\"billing\"] svg polyline') ? 'drawn' : ''", TimeSpan.FromSeconds(10));
        var points = (await browser.EvaluateAsync("document.querySelector('[data-group=\"billing\"] svg polyline').getAttribute('points').split(' ').length")).GetInt32();
        Assert.True(points >= 4, $"expected the chart to have at least 4 samples, it has {points}");
        Assert.Equal("4", (await browser.EvaluateAsync("String(document.querySelectorAll('#topics tr[data-topic]').length)")).GetString()); // orders 0-1, payments 0-1
        var lagTime = (await browser.EvaluateAsync("document.querySelector('[data-group=\"billing\"] .lag-seconds').textContent")).GetString();
        Assert.EndsWith("min", lagTime);

        var path = Path.Combine(ArtifactsDirectory(), "dashboard.png");
        await browser.ScreenshotAsync(path);
        var png = await File.ReadAllBytesAsync(path);
        Assert.True(png.Length > 10_000, $"screenshot is only {png.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }
}
