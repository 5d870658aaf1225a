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
        using var export = MetricsExport.Start(metrics, prometheus: true, new MetricsOptions(), "test");
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
    public void Api_names_come_from_the_api_key_enum()
    {
        Assert.Equal("Produce", BrokerMetrics.ApiName(ApiKey.Produce));
        Assert.Equal("OffsetCommit", BrokerMetrics.ApiName(ApiKey.OffsetCommit));
        Assert.Equal("Unknown", BrokerMetrics.ApiName((ApiKey)30_000));
        Assert.Equal("Unknown", BrokerMetrics.ApiName((ApiKey)(-1)));
    }
}
