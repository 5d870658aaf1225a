using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Cairn.Broker.Admin;

/// <summary>
/// Who may change state through the admin API. Reads (GET) are open to whoever can reach the listener (loopback by
/// default). Writes (POST) are accepted only from loopback addresses unless <c>admin.allow.remote.writes=true</c>,
/// and a browser request (one with an Origin header) must come from a page of the admin server itself, so a web
/// page elsewhere cannot make the user's browser post to a loopback admin server (cross-site requests, DNS rebinding).
/// Every request, reads included, must name the server by a loopback name or one the operator configured in its Host
/// header (<see cref="CheckHost"/>): a DNS-rebinding page reaches a loopback listener under its own name, so without
/// this check it could read topics, groups and metrics. With <c>admin.auth.token</c> set, every request must also
/// present the token (<see cref="TokenMatches"/>).
/// </summary>
internal static class AdminAccess
{
    /// <summary>127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6 (::ffff:127.0.0.1).</summary>
    public static bool IsLoopback(IPAddress? address) =>
        address is not null && IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);

    /// <summary>Null when a state-changing request may proceed; otherwise why it is refused (answered with 403).</summary>
    /// <param name="remote">the peer's address</param>
    /// <param name="allowRemoteWrites">admin.allow.remote.writes</param>
    /// <param name="origin">the request's Origin header, if any</param>
    /// <param name="host">the request's Host header, if any</param>
    public static string? CheckWrite(IPAddress? remote, bool allowRemoteWrites, string? origin, string? host)
    {
        if (!allowRemoteWrites && !IsLoopback(remote))
            return $"state-changing admin requests are accepted only from loopback (this one came from {remote?.ToString() ?? "an unknown address"}); " +
                   "set admin.allow.remote.writes=true to accept them from other addresses";
        if (string.IsNullOrEmpty(origin)) return null; // not a browser: curl, scripts, the CLI
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var o) || o.Scheme is not ("http" or "https"))
            return $"cross-origin request refused (Origin '{origin}')";
        if (string.IsNullOrEmpty(host) || !string.Equals(o.Authority, host, StringComparison.OrdinalIgnoreCase))
            return $"cross-origin request refused (Origin '{origin}' is not this admin server '{host}')";
        if (!allowRemoteWrites && !IsLoopbackName(o.Host))
            return $"request refused: a browser page served as '{o.Host}' may not change state; open the admin server as localhost or 127.0.0.1";
        return null;
    }

    /// <summary>localhost, a loopback IP literal (IPv6 with or without brackets).</summary>
    public static bool IsLoopbackName(string host)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IsLoopback(ip);
    }

    /// <summary>Null when the request's Host header names this server; otherwise why it is refused (answered with 403).</summary>
    /// <param name="host">the Host header's host part, without the port (IPv6 in brackets or not)</param>
    /// <param name="configuredNames">the advertised host and the admin listen host: names the operator chose for this server</param>
    public static string? CheckHost(string? host, IReadOnlyCollection<string> configuredNames)
    {
        if (string.IsNullOrEmpty(host)) return "request refused: no Host header";
        if (IsLoopbackName(host)) return null;
        var bare = host.Trim('[', ']');
        // DNS rebinding needs a DNS name (the attacker's, re-pointed at this machine): a browser visiting an IP literal
        // is same-origin with that IP only, so any IP literal is safe to accept, and Prometheus scraping by IP keeps working.
        if (IPAddress.TryParse(bare, out _)) return null;
        foreach (var name in configuredNames)
            if (string.Equals(bare, name.Trim('[', ']'), StringComparison.OrdinalIgnoreCase)) return null;
        return $"request refused: Host '{host}' is not a name of this admin server (loopback names, IP addresses, or the advertised.host or admin.listen host)";
    }

    /// <summary>
    /// Whether <paramref name="presented"/> is the configured token, in time independent of where they differ (both are
    /// hashed first, so neither the content nor the length of the token shows in the timing).
    /// </summary>
    public static bool TokenMatches(string expected, string? presented)
    {
        if (presented is null) return false;
        Span<byte> a = stackalloc byte[SHA256.HashSizeInBytes];
        Span<byte> b = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(expected), a);
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), b);
        return CryptographicOperations.FixedTimeEquals(a, b);
    }

    /// <summary>The token of an <c>Authorization: Bearer TOKEN</c> header (scheme matched case-insensitively), else null.</summary>
    public static string? BearerToken(string? authorization)
    {
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return null;
        return authorization[scheme.Length..].Trim();
    }
}
