using System.Diagnostics;
using Cairn.Broker.Metrics;
using Cairn.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Admin;

public class BrokerMetricsTests
{
    [Fact]
    public void Recording_a_request_allocates_nothing_once_its_series_exists()
    {
        // Only the request instruments are used here: the observable ones (logs, groups) are not collected.
        using var metrics = new BrokerMetrics(null!, null!, () => 0, 100);
        using var export = MetricsExport.Start(metrics, prometheus: true, new MetricsOptions(), "test", NullLogger.Instance);
        void Request()
        {
            long started = Stopwatch.GetTimestamp();
            metrics.BytesReceived(100);
            metrics.RequestCompleted(ApiKey.Produce, started);
            metrics.BytesSent(60);
        }
        // Creates the series and gets one-off work out of the way: the exporter library allocates about 4 KB once within
        // the first ten thousand measurements (tiering, lazy state), never again after that.
        for (int i = 0; i < 20_000; i++) Request();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++) Request();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1_000, $"10,000 recorded requests allocated {allocated} bytes"); // i.e. nothing per request
    }

    [Fact]
    public async Task A_failing_otlp_push_is_logged()
    {
        int port; // a loopback port nobody listens on: the push is refused
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        var logger = new CollectingLogger();
        using var metrics = new BrokerMetrics(null!, null!, () => 0, 100);
        metrics.BytesReceived(1);
        var options = new MetricsOptions { OtlpEndpoint = new Uri($"http://127.0.0.1:{port}"), OtlpExportInterval = TimeSpan.FromMilliseconds(100) };
        using (MetricsExport.Start(metrics, prometheus: false, options, "test", logger))
        {
            for (int i = 0; i < 300 && logger.Lines.IsEmpty; i++) await Task.Delay(100); // at most 30 s
        }
        var line = Assert.Single(logger.Lines.Take(1));
        Assert.StartsWith("metrics push over OTLP: ", line);
        Assert.Contains($"127.0.0.1:{port}/v1/metrics", line);
        Assert.DoesNotContain('\n', line); // one line, without the exception's stack trace
    }

    private sealed class CollectingLogger : ILogger
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning) Lines.Enqueue(formatter(state, exception));
        }
    }

    [Fact]
    public void Api_names_come_from_the_api_key_enum()
    {
        Assert.Equal("Produce", BrokerMetrics.ApiName(ApiKey.Produce));
        Assert.Equal("OffsetCommit", BrokerMetrics.ApiName(ApiKey.OffsetCommit));
        Assert.Equal("Unknown", BrokerMetrics.ApiName((ApiKey)30_000));
        Assert.Equal("Unknown", BrokerMetrics.ApiName((ApiKey)(-1)));
    }
}
