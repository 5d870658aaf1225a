using System.Net;
using System.Net.Sockets;
using Cairn.Broker;
using Cairn.Broker.Admin;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Admin;

public class AdminOptionsTests
{
    private static BrokerOptions From(params (string Key, string Value)[] settings) =>
        BrokerOptions.FromSettings(settings.Select(s => new KeyValuePair<string, string>(s.Key, s.Value)));

    [Fact]
    public void By_default_the_admin_server_is_on_loopback_9644_and_refuses_remote_writes()
    {
        var o = From();
        Assert.True(o.Admin.Enabled);
        Assert.True(o.Admin.ListenIsDefault);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9644), o.Admin.EndPoint);
        Assert.False(o.Admin.AllowRemoteWrites);
        Assert.Equal(TimeSpan.FromSeconds(30), o.Admin.LagSampleInterval);
        Assert.Equal(TimeSpan.FromHours(1), o.Admin.LagHistory);
        Assert.Equal(10_000, o.Admin.MaxMetricSeries);
    }

    [Fact]
    public void Settings_configure_the_admin_server()
    {
        var o = From(("admin-listen", "0.0.0.0:19644"), ("admin.allow.remote.writes", "true"), ("admin.lag.sample.interval.ms", "5000"),
            ("admin.lag.history.minutes", "120"), ("metrics.max.series", "500"));
        Assert.Equal(new IPEndPoint(IPAddress.Any, 19644), o.Admin.EndPoint);
        Assert.False(o.Admin.ListenIsDefault);
        Assert.True(o.Admin.AllowRemoteWrites);
        Assert.Equal(TimeSpan.FromSeconds(5), o.Admin.LagSampleInterval);
        Assert.Equal(TimeSpan.FromHours(2), o.Admin.LagHistory);
        Assert.Equal(500, o.Admin.MaxMetricSeries);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 80), From(("admin.listen", "[::1]:80")).Admin.EndPoint);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 0), From(("admin.listen", "localhost:0")).Admin.EndPoint);
        var env = BrokerSettings.FromEnvironment(new System.Collections.Hashtable { ["CAIRN_ADMIN_LISTEN"] = "127.0.0.1:9700" });
        Assert.Equal(9700, BrokerOptions.FromSettings(env).Admin.EndPoint.Port);
    }

    [Theory]
    [InlineData("admin.listen", "none")]
    [InlineData("admin.listen", "off")]
    [InlineData("admin.enabled", "false")]
    public void The_admin_server_can_be_turned_off(string key, string value) => Assert.False(From((key, value)).Admin.Enabled);

    [Theory]
    [InlineData("admin.listen", "9644")]
    [InlineData("admin.listen", "example.com:9644")]
    [InlineData("admin.listen", "127.0.0.1:70000")]
    [InlineData("admin.allow.remote.writes", "yes")]
    [InlineData("admin.lag.sample.interval.ms", "10")]
    [InlineData("metrics.max.series", "0")]
    public void Bad_admin_settings_are_rejected(string key, string value) =>
        Assert.Throws<ArgumentException>(() => From((key, value)));

    [Fact]
    public async Task A_disabled_admin_server_has_no_endpoint()
    {
        await using var broker = await BrokerHarness.StartAsync(o => o with { Admin = o.Admin with { Enabled = false } });
        Assert.Null(broker.Broker.AdminEndPoint);
        Assert.Null(broker.Broker.LagSampler);
    }

    [Fact]
    public async Task An_explicit_address_that_is_taken_stops_start_up()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        int port = ((IPEndPoint)holder.LocalEndpoint).Port;
        await Assert.ThrowsAsync<IOException>(() => BrokerHarness.StartAsync(o => o with { Admin = o.Admin with { Listen = $"127.0.0.1:{port}" } }));
    }

    [Fact]
    public async Task The_default_address_is_best_effort_when_another_broker_holds_it()
    {
        TcpListener? holder = new(IPAddress.Loopback, 9644);
        try { holder.Start(); }
        catch (SocketException) { holder = null; } // someone else (another broker) holds it already: the same situation
        try
        {
            await using var broker = await BrokerHarness.StartAsync(o => o with { Admin = new AdminOptions() });
            // (When another broker held the port instead of us, it may have let go of it since.)
            if (holder is not null) Assert.Null(broker.Broker.AdminEndPoint);
            using var kafka = await broker.ConnectAsync(); // the broker itself runs
        }
        finally
        {
            holder?.Stop();
        }
    }
}
