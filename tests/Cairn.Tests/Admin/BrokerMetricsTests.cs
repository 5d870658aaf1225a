using System.Diagnostics;
using Cairn.Broker.Metrics;
using Cairn.Protocol;

namespace Cairn.Tests.Admin;

public class BrokerMetricsTests
{
    [Fact]
    public void Recording_a_request_allocates_nothing_once_its_series_exists()
    {
        // Only the request instruments are used here: the observable ones (logs, groups) are not collected.
        using var metrics = new BrokerMetrics(null!, null!, () => 0, 100);
        using var exporter = new PrometheusExporter(metrics.Meter, 100);
        void Request()
        {
            long started = Stopwatch.GetTimestamp();
            metrics.BytesReceived(100);
            metrics.RequestCompleted(ApiKey.Produce, started);
            metrics.BytesSent(60);
        }
        for (int i = 0; i < 1_000; i++) Request(); // creates the series; one-off lazy initialisation
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++) Request();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1_000, $"10,000 recorded requests allocated {allocated} bytes"); // i.e. nothing per request
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
