using System.Net;
using System.Net.Http.Headers;
using Cairn.Broker;
using Cairn.Broker.Admin;
using Cairn.Cli;

namespace Cairn.Tests.Admin;

/// <summary>
/// Every admin request must name the server in its Host header (DNS rebinding), and with admin.auth.token set must carry
/// the token; the settings; and serve's warning for a Kafka listener off loopback.
/// </summary>
public class AdminHostAndTokenTests
{
    private static readonly string[] Paths = ["", "api/v1/topics", "metrics", "healthz"];

    private static async Task<HttpResponseMessage> SendAsync(AdminBroker b, string path, string? host = null, string? bearer = null,
        string? cookie = null, HttpMethod? method = null, HttpClient? client = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, new Uri(b.BaseAddress, path));
        if (host is not null) request.Headers.Host = host;
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        if (cookie is not null) request.Headers.Add("Cookie", cookie);
        return await (client ?? b.Http).SendAsync(request);
    }

    [Fact]
    public async Task A_foreign_Host_is_refused_on_every_path_and_method_and_loopback_names_are_served()
    {
        await using var b = await AdminBroker.StartAsync(o => o with { AdvertisedHost = "broker.internal" });
        int port = b.BaseAddress.Port;
        foreach (var path in Paths)
        {
            foreach (var host in new[] { "evil.example", $"evil.example:{port}", $"127.0.0.1.evil.example:{port}" })
            {
                using var refused = await SendAsync(b, path, host);
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
                Assert.Equal("text/plain", refused.Content.Headers.ContentType?.MediaType);
                Assert.Contains("Host", await refused.Content.ReadAsStringAsync());
            }
            foreach (var host in new[] { $"localhost:{port}", $"127.0.0.1:{port}", $"[::1]:{port}", "localhost", "127.0.0.1", $"broker.internal:{port}", "BROKER.internal" })
            {
                using var served = await SendAsync(b, path, host);
                Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            }
        }
        using var head = await SendAsync(b, "metrics", "evil.example", method: HttpMethod.Head);
        Assert.Equal(HttpStatusCode.Forbidden, head.StatusCode);
        using var post = await SendAsync(b, "api/v1/groups/g/reset", "evil.example", method: HttpMethod.Post);
        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        Assert.Equal("text/plain", post.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task With_a_token_every_endpoint_requires_it()
    {
        await using var b = await AdminBroker.StartAsync(o => o with { Admin = o.Admin with { AuthToken = "s3cret-token" } });
        foreach (var path in Paths)
        {
            foreach (var bearer in new[] { null, "wrong", "s3cret-token2", "" })
            {
                using var refused = await SendAsync(b, path, bearer: bearer);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);
            }
            using var served = await SendAsync(b, path, bearer: "s3cret-token");
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }
        // The Host check comes first, token or not.
        using var rebound = await SendAsync(b, "api/v1/topics", "evil.example", bearer: "s3cret-token");
        Assert.Equal(HttpStatusCode.Forbidden, rebound.StatusCode);
        // A POST without the token never reaches the reset.
        using var post = await SendAsync(b, "api/v1/groups/g/reset", method: HttpMethod.Post);
        Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);
    }

    [Fact]
    public async Task A_browser_gets_the_token_as_a_cookie_by_visiting_the_dashboard_with_it()
    {
        await using var b = await AdminBroker.StartAsync(o => o with { Admin = o.Admin with { AuthToken = "s3cret token/+=" } });
        using var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { Timeout = TimeSpan.FromSeconds(30) };

        using var wrong = await SendAsync(b, "?token=nope", client: client);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.False(wrong.Headers.Contains("Set-Cookie"));
        // Only the dashboard's address takes a token in the query: elsewhere it would end up in logs and histories.
        using var elsewhere = await SendAsync(b, "api/v1/topics?token=" + Uri.EscapeDataString("s3cret token/+="), client: client);
        Assert.Equal(HttpStatusCode.Unauthorized, elsewhere.StatusCode);

        using var visit = await SendAsync(b, "?token=" + Uri.EscapeDataString("s3cret token/+="), client: client);
        Assert.Equal(HttpStatusCode.SeeOther, visit.StatusCode);
        Assert.Equal("/", visit.Headers.Location?.OriginalString);
        var setCookie = Assert.Single(visit.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", setCookie, StringComparison.OrdinalIgnoreCase);
        var cookie = setCookie.Split(';')[0];

        foreach (var path in Paths)
        {
            using var served = await SendAsync(b, path, cookie: cookie, client: client);
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }
        using var forged = await SendAsync(b, "api/v1/topics", cookie: AdminServer.TokenCookie + "=nope", client: client);
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
    }

    [Fact]
    public void Host_names_and_tokens_are_checked()
    {
        string[] configured = ["broker.internal", "10.0.0.7"];
        // Any IP literal is accepted: DNS rebinding always arrives with a DNS name, and scrapers often use the IP.
        foreach (var host in new[] { "localhost", "LOCALHOST", "app.localhost", "127.0.0.1", "127.1.2.3", "[::1]", "::1", "broker.internal", "10.0.0.7", "10.0.0.8", "[::2]" })
            Assert.Null(AdminAccess.CheckHost(host, configured));
        foreach (var host in new[] { "evil.example", "localhost.evil.example", "10.0.0.8.evil.example", "", null })
            Assert.NotNull(AdminAccess.CheckHost(host, configured));

        Assert.True(AdminAccess.TokenMatches("abc", "abc"));
        Assert.False(AdminAccess.TokenMatches("abc", "abd"));
        Assert.False(AdminAccess.TokenMatches("abc", "abcd"));
        Assert.False(AdminAccess.TokenMatches("abc", null));
        Assert.Equal("abc", AdminAccess.BearerToken("Bearer abc"));
        Assert.Equal("abc", AdminAccess.BearerToken("bearer abc"));
        Assert.Null(AdminAccess.BearerToken("Basic YWJj"));
        Assert.Null(AdminAccess.BearerToken(null));
    }

    [Fact]
    public void The_token_setting_is_off_by_default_and_comes_from_settings_or_the_environment()
    {
        Assert.Null(BrokerOptions.FromSettings([]).Admin.AuthToken);
        Assert.Equal("t0k", BrokerOptions.FromSettings([new("admin.auth.token", "t0k")]).Admin.AuthToken);
        Assert.Null(BrokerOptions.FromSettings([new("admin.auth.token", "")]).Admin.AuthToken);
        var env = BrokerSettings.FromEnvironment(new System.Collections.Hashtable { ["CAIRN_ADMIN_AUTH_TOKEN"] = "from-env" });
        Assert.Equal("from-env", BrokerOptions.FromSettings(env).Admin.AuthToken);
        Assert.Contains("admin.auth.token", BrokerOptions.UnknownSettingMessage("admin.auth.tokn"));
    }

    [Fact]
    public void Printing_the_options_does_not_show_the_token()
    {
        var text = new AdminOptions { AuthToken = "s3cret-token" }.ToString();
        Assert.DoesNotContain("s3cret-token", text);
        Assert.Contains("AuthToken = (set)", text);
        Assert.DoesNotContain("s3cret-token", new BrokerOptions { Admin = new AdminOptions { AuthToken = "s3cret-token" } }.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("localhost", false)]
    [InlineData("::1", false)]
    [InlineData("0.0.0.0", true)]
    [InlineData("10.0.0.5", true)]
    [InlineData("::", true)]
    public void Serve_warns_when_the_kafka_listener_is_not_on_loopback(string host, bool warns)
    {
        var warning = ServeCommand.ExposureWarning(new BrokerOptions { ListenHost = host });
        Assert.Equal(warns, warning is not null);
        if (warns) Assert.Contains("no client authentication", warning);
    }
}
