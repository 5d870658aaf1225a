using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Cairn.Broker.Metrics;

/// <summary>
/// Exports one broker's meter through OpenTelemetry: in the Prometheus text format on the admin server's /metrics and,
/// when <see cref="MetricsOptions.OtlpEndpoint"/> is set, pushed over OTLP/HTTP. Only this broker's instruments are
/// exported (other brokers in the process have meters of the same name), under their own names and labels: no scope
/// labels, no target_info, every series of an instrument kept up to what <see cref="BrokerMetrics"/> bounds it to.
/// </summary>
internal sealed class MetricsExport : IDisposable
{
    private readonly MeterProvider _provider;
    private readonly bool _prometheus;
    private readonly OtlpExportLog? _otlpLog;

    private MetricsExport(MeterProvider provider, bool prometheus, OtlpExportLog? otlpLog)
    {
        _provider = provider;
        _prometheus = prometheus;
        _otlpLog = otlpLog;
    }

    /// <summary>Null when there is nothing to export to (no admin server and no OTLP endpoint).</summary>
    internal static MetricsExport? Start(BrokerMetrics metrics, bool prometheus, MetricsOptions options, string serviceInstanceId, ILogger logger)
    {
        if (!prometheus && options.OtlpEndpoint is null) return null;
        var meter = metrics.Meter;
        var builder = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.Clear().AddService("cairn", serviceVersion: Protocol.CairnVersion.Value, serviceInstanceId: serviceInstanceId))
            .AddMeter(BrokerMetrics.MeterName)
            .AddView(instrument => ReferenceEquals(instrument.Meter, meter)
                ? new MetricStreamConfiguration { CardinalityLimit = metrics.SeriesLimit(instrument) }
                : MetricStreamConfiguration.Drop);
        if (prometheus)
        {
            builder.AddPrometheusExporter(o =>
            {
                o.ScopeInfoEnabled = false;
                o.TargetInfoEnabled = false;
                o.ScrapeResponseCacheDurationMilliseconds = 0; // every scrape observes the gauges afresh
            });
        }
        if (options.OtlpEndpoint is { } endpoint)
        {
            builder.AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = MetricsOptions.WithMetricsPath(endpoint);
                exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)Math.Min(int.MaxValue, options.OtlpExportInterval.TotalMilliseconds);
                reader.TemporalityPreference = MetricReaderTemporalityPreference.Cumulative;
            });
        }
        var otlpLog = options.OtlpEndpoint is null ? null : new OtlpExportLog(logger);
        return new MetricsExport(builder.Build(), prometheus, otlpLog);
    }

    /// <summary>
    /// Serves the Prometheus scrape for the requests <paramref name="predicate"/> picks. The answer is always the text
    /// format 0.0.4 (what /metrics has always served and promtool checks): a scraper's Accept header asking for
    /// OpenMetrics is not passed on.
    /// </summary>
    public void UsePrometheusEndpoint(IApplicationBuilder app, Func<HttpContext, bool> predicate)
    {
        if (!_prometheus) throw new InvalidOperationException("the metrics export was started without the Prometheus exporter");
        app.UseOpenTelemetryPrometheusScrapingEndpoint(_provider, predicate, path: null,
            configureBranchedPipeline: branch => branch.Use((http, next) =>
            {
                http.Request.Headers.Accept = StringValues.Empty;
                return next(http);
            }),
            optionsName: null);
    }

    /// <summary>Pushes a last OTLP export (waiting at most five seconds), then stops.</summary>
    public void Dispose()
    {
        _provider.Shutdown(5_000);
        _provider.Dispose();
        _otlpLog?.Dispose();
    }
}
