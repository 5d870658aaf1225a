using System.Net;
using Cairn.Broker.Admin;

namespace Cairn.Tests.Admin;

public class AdminAccessTests
{
    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.10.20.30", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("10.0.0.5", false)]
    [InlineData("192.168.1.20", false)]
    [InlineData("::ffff:10.0.0.5", false)]
    [InlineData("fe80::1", false)]
    [InlineData("0.0.0.0", false)]
    public void Loopback_is_127_slash_8_and_ipv6_loopback_including_mapped(string address, bool loopback) =>
        Assert.Equal(loopback, AdminAccess.IsLoopback(IPAddress.Parse(address)));

    [Fact]
    public void Writes_from_loopback_are_allowed()
    {
        Assert.Null(AdminAccess.CheckWrite(IPAddress.Loopback, false, null, "127.0.0.1:9644"));
        Assert.Null(AdminAccess.CheckWrite(IPAddress.IPv6Loopback, false, null, "[::1]:9644"));
        Assert.Null(AdminAccess.CheckWrite(IPAddress.Parse("::ffff:127.0.0.1"), false, null, null));
    }

    [Fact]
    public void Writes_from_other_addresses_are_refused_unless_configured()
    {
        var refusal = AdminAccess.CheckWrite(IPAddress.Parse("10.1.2.3"), false, null, "broker:9644");
        Assert.NotNull(refusal);
        Assert.Contains("10.1.2.3", refusal);
        Assert.Contains("admin.allow.remote.writes", refusal);
        Assert.NotNull(AdminAccess.CheckWrite(null, false, null, null));
        Assert.Null(AdminAccess.CheckWrite(IPAddress.Parse("10.1.2.3"), true, null, "broker:9644"));
    }

    [Fact]
    public void Browser_writes_must_come_from_the_admin_page_itself()
    {
        // A page elsewhere making the user's browser post to the loopback admin server.
        Assert.NotNull(AdminAccess.CheckWrite(IPAddress.Loopback, false, "https://evil.example", "127.0.0.1:9644"));
        Assert.NotNull(AdminAccess.CheckWrite(IPAddress.Loopback, false, "null", "127.0.0.1:9644"));
        // DNS rebinding: same origin as far as the browser knows, but not a loopback name.
        Assert.NotNull(AdminAccess.CheckWrite(IPAddress.Loopback, false, "http://rebind.example:9644", "rebind.example:9644"));
        // The dashboard's own origin.
        Assert.Null(AdminAccess.CheckWrite(IPAddress.Loopback, false, "http://127.0.0.1:9644", "127.0.0.1:9644"));
        Assert.Null(AdminAccess.CheckWrite(IPAddress.Loopback, false, "http://localhost:9644", "localhost:9644"));
        // With remote writes allowed, a browser on the admin host's real name may post.
        Assert.Null(AdminAccess.CheckWrite(IPAddress.Parse("10.1.2.3"), true, "http://broker:9644", "broker:9644"));
        Assert.NotNull(AdminAccess.CheckWrite(IPAddress.Parse("10.1.2.3"), true, "http://evil.example", "broker:9644"));
    }
}
