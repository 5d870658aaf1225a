using System.Globalization;

namespace Cairn.Client.Internal;

internal static class BootstrapParser
{
    /// <summary>Parses "host:port[,host:port]"; IPv6 literals go in brackets ("[::1]:9092"). A missing port means 9092.</summary>
    public static IReadOnlyList<(string Host, int Port)> Parse(string servers)
    {
        var result = new List<(string, int)>();
        foreach (var raw in servers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string host;
            string? portText = null;
            if (raw.StartsWith('['))
            {
                int close = raw.IndexOf(']');
                if (close < 0) throw new ArgumentException($"bootstrap server '{raw}' has an unclosed '['");
                host = raw[1..close];
                if (close + 1 < raw.Length)
                {
                    if (raw[close + 1] != ':') throw new ArgumentException($"bootstrap server '{raw}' is not [host]:port");
                    portText = raw[(close + 2)..];
                }
            }
            else
            {
                int colon = raw.LastIndexOf(':');
                if (colon >= 0 && raw.IndexOf(':') != colon) throw new ArgumentException($"bootstrap server '{raw}': put IPv6 addresses in brackets, [addr]:port");
                host = colon >= 0 ? raw[..colon] : raw;
                portText = colon >= 0 ? raw[(colon + 1)..] : null;
            }
            int port = 9092;
            if (portText is not null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
                throw new ArgumentException($"bootstrap server '{raw}' has an invalid port");
            if (host.Length == 0) throw new ArgumentException($"bootstrap server '{raw}' has no host");
            result.Add((host, port));
        }
        if (result.Count == 0) throw new ArgumentException("no bootstrap servers given");
        return result;
    }
}
