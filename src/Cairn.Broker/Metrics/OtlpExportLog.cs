using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Metrics;

/// <summary>
/// OpenTelemetry reports a failed OTLP push only on its own EventSource; this passes those warnings and errors on to the
/// broker's log, so a wrong or unreachable <c>metrics.otlp.endpoint</c> shows. The event source is process-wide: with
/// several brokers pushing from one process, each logs every broker's failures.
/// </summary>
internal sealed class OtlpExportLog : EventListener
{
    private const string SourceName = "OpenTelemetry-Exporter-OpenTelemetryProtocol";
    private readonly ILogger? _logger;

    public OtlpExportLog(ILogger logger)
    {
        _logger = logger;
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        // Called from the base constructor too, before _logger is set: it only subscribes.
        if (eventSource.Name == SourceName) EnableEvents(eventSource, EventLevel.Warning);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (_logger is null || e.EventSource.Name != SourceName) return;
        string text;
        try
        {
            text = e.Message is null ? e.EventName ?? "event " + e.EventId
                : string.Format(CultureInfo.InvariantCulture, e.Message, e.Payload?.ToArray() ?? []);
        }
        catch (FormatException)
        {
            text = $"{e.EventName}: {e.Message}";
        }
        int newline = text.IndexOf('\n');
        if (newline >= 0) text = text[..newline].TrimEnd(); // the exception's first line, not its stack trace
        _logger.Log(e.Level == EventLevel.Warning ? LogLevel.Warning : LogLevel.Error, "metrics push over OTLP: {Problem}", text);
    }
}
