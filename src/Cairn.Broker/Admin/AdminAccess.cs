using System.Net;

namespace Cairn.Broker.Admin;

/// <summary>
/// Who may change state through the admin API. Reads (GET) are open to whoever can reach the listener (loopback by
/// default). Writes (POST) are accepted only from loopback addresses unless <c>admin.allow.remote.writes=true</c>,
/// and a browser request (one with an Origin header) must come from a page of the admin server itself, so a web
/// page elsewhere cannot make the user's browser post to a loopback admin server (cross-site requests, DNS rebinding).
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
}
