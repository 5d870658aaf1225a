using System.Net;

namespace Cairn.Broker.Admin;

/// <summary>
/// The admin HTTP server (JSON API, Prometheus metrics, dashboard) and the broker's metrics.
/// Settings: <c>admin.listen</c>, <c>admin.enabled</c>, <c>admin.allow.remote.writes</c>, <c>admin.auth.token</c>,
/// <c>admin.lag.sample.interval.ms</c>, <c>admin.lag.history.minutes</c>, <c>metrics.max.series</c>.
/// </summary>
public sealed record AdminOptions
{
    public const string DefaultListen = "127.0.0.1:9644";

    public bool Enabled { get; init; } = true;

    /// <summary>
    /// HOST:PORT to serve on (port 0 picks a free port; see <see cref="KafkaBroker.AdminEndPoint"/>). Null means
    /// <see cref="DefaultListen"/>, which is best effort: when that port is taken (several brokers on one machine)
    /// the broker logs a warning and runs without the admin server. An address set explicitly that cannot be bound
    /// stops start-up.
    /// </summary>
    public string? Listen { get; init; }

    /// <summary>Whether state-changing requests (POST) are accepted from non-loopback addresses. Off by default.</summary>
    public bool AllowRemoteWrites { get; init; }

    /// <summary>
    /// When set, every admin request (API, /metrics, dashboard) must present it as <c>Authorization: Bearer TOKEN</c>, or, for
    /// a browser, as the cookie that visiting <c>/?token=TOKEN</c> sets. Null (the default) means no token is required.
    /// </summary>
    public string? AuthToken { get; init; }

    /// <summary>How often the lag sampler records each group's total lag for the dashboard chart.</summary>
    public TimeSpan LagSampleInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How much lag history is kept per group.</summary>
    public TimeSpan LagHistory { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Upper bound on the series of each per-partition or per-group metric (and on groups the lag sampler tracks):
    /// beyond it series are left out of /metrics (counted in cairn_metrics_series_dropped) so label sets stay bounded.
    /// The metrics export reserves memory for twice this many series per gauge up front (see BrokerMetrics).
    /// </summary>
    public int MaxMetricSeries { get; init; } = 10_000;

    /// <summary>Keeps the token out of anything that prints the options (a record prints every property by default).</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Enabled = {Enabled}, Listen = {Listen}, AllowRemoteWrites = {AllowRemoteWrites}, ");
        builder.Append($"AuthToken = {(AuthToken is null ? "none" : "(set)")}, LagSampleInterval = {LagSampleInterval}, ");
        builder.Append($"LagHistory = {LagHistory}, MaxMetricSeries = {MaxMetricSeries}");
        return true;
    }

    public bool ListenIsDefault => Listen is null;

    /// <summary>The endpoint to bind, parsed from <see cref="Listen"/> (or the default).</summary>
    public IPEndPoint EndPoint => ParseEndPoint(Listen ?? DefaultListen);

    /// <summary>Parses HOST:PORT where HOST is an IP address (IPv6 in brackets) or localhost.</summary>
    public static IPEndPoint ParseEndPoint(string value)
    {
        int colon = value.LastIndexOf(':');
        if (colon <= 0) throw new ArgumentException($"admin.listen must be HOST:PORT or none, got '{value}'");
        var host = value[..colon].Trim('[', ']');
        IPAddress address;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) address = IPAddress.Loopback;
        else if (!IPAddress.TryParse(host, out address!)) throw new ArgumentException($"admin.listen host must be an IP address or localhost, got '{host}'");
        if (!int.TryParse(value[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
            throw new ArgumentException($"admin.listen port must be in [0, 65535], got '{value[(colon + 1)..]}'");
        return new IPEndPoint(address, port);
    }
}
