namespace Cairn.Broker.Metrics;

/// <summary>Where the broker's metrics go besides /metrics. Settings: <c>metrics.otlp.endpoint</c>, <c>metrics.otlp.interval.ms</c>.</summary>
public sealed record MetricsOptions
{
    /// <summary>
    /// OTLP/HTTP (protobuf) endpoint the metrics are pushed to, e.g. http://collector:4318 (a URL without a path gets
    /// OTLP's metrics path, /v1/metrics, as the OpenTelemetry SDKs do with a collector's base address); null (the
    /// default) pushes nothing.
    /// </summary>
    public Uri? OtlpEndpoint { get; init; }

    /// <summary>How often the metrics are pushed to <see cref="OtlpEndpoint"/>.</summary>
    public TimeSpan OtlpExportInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>An http:// or https:// URL, with /v1/metrics added when it has no path.</summary>
    public static Uri ParseOtlpEndpoint(string value)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"metrics.otlp.endpoint must be an http:// or https:// URL, got '{value}'");
        return WithMetricsPath(uri);
    }

    /// <summary>Where the pushes go: <paramref name="endpoint"/>, or its /v1/metrics when it has no path.</summary>
    internal static Uri WithMetricsPath(Uri endpoint) => endpoint.AbsolutePath == "/" ? new Uri(endpoint, "v1/metrics") : endpoint;
}
