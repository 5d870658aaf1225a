using System.Diagnostics.Metrics;
using Cairn.Broker.Metrics;

namespace Cairn.Tests.Admin;

public class PrometheusExporterTests
{
    [Fact]
    public void Counters_gauges_and_histograms_render_as_valid_exposition()
    {
        using var meter = new Meter("Cairn.Tests.Exporter");
        using var exporter = new PrometheusExporter(meter, 100);
        var counter = meter.CreateCounter<long>("t_requests", description: "Requests\nwith a \\ in help");
        var updown = meter.CreateUpDownCounter<int>("t_inflight");
        var histogram = meter.CreateHistogram<double>("t_latency_seconds", "s", "Latency", null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1, 10] });
        int observed = 7;
        meter.CreateObservableGauge("t_observed", () => new Measurement<int>(observed, new KeyValuePair<string, object?>("kind", "a")));
        meter.CreateObservableCounter("t_cumulative", () => 42L);

        counter.Add(2, new KeyValuePair<string, object?>("api", "Produce"));
        counter.Add(3, new KeyValuePair<string, object?>("api", "Produce"));
        counter.Add(1, new KeyValuePair<string, object?>("api", "we\"ird\\va\nlue"));
        updown.Add(5);
        updown.Add(-2);
        foreach (var v in new[] { 0.05, 0.1, 0.5, 5, 50 }) histogram.Record(v, new KeyValuePair<string, object?>("api", "Fetch"));

        var text = exporter.Collect();
        var families = PrometheusTextParser.Parse(text);
        Assert.Equal("counter", families["t_requests_total"].Type);
        Assert.Equal("Requests\nwith a \\ in help", families["t_requests_total"].Help);
        Assert.Equal(5, families.Single("t_requests_total", ("api", "Produce")).Value);
        Assert.Equal(1, families.Single("t_requests_total", ("api", "we\"ird\\va\nlue")).Value);
        Assert.Contains("t_requests_total{api=\"we\\\"ird\\\\va\\nlue\"} 1\n", text);
        Assert.Equal("gauge", families["t_inflight"].Type);
        Assert.Equal(3, families.Single("t_inflight").Value);
        Assert.Equal("histogram", families["t_latency_seconds"].Type);
        Assert.Equal(2, families.Single("t_latency_seconds_bucket", ("api", "Fetch"), ("le", "0.1")).Value); // le is inclusive
        Assert.Equal(3, families.Single("t_latency_seconds_bucket", ("api", "Fetch"), ("le", "1")).Value);
        Assert.Equal(4, families.Single("t_latency_seconds_bucket", ("api", "Fetch"), ("le", "10")).Value);
        Assert.Equal(5, families.Single("t_latency_seconds_bucket", ("api", "Fetch"), ("le", "+Inf")).Value);
        Assert.Equal(5, families.Single("t_latency_seconds_count", ("api", "Fetch")).Value);
        Assert.Equal(55.65, families.Single("t_latency_seconds_sum", ("api", "Fetch")).Value, 6);
        Assert.Equal(7, families.Single("t_observed", ("kind", "a")).Value);
        Assert.Equal("counter", families["t_cumulative_total"].Type);
        Assert.Equal(42, families.Single("t_cumulative_total").Value);
        Assert.Equal(0, families.Single(PrometheusExporter.DroppedFamily).Value);

        // Observable values are re-read on every collection; sums keep accumulating.
        observed = 9;
        counter.Add(1, new KeyValuePair<string, object?>("api", "Produce"));
        families = PrometheusTextParser.Parse(exporter.Collect());
        Assert.Equal(9, families.Single("t_observed", ("kind", "a")).Value);
        Assert.Equal(6, families.Single("t_requests_total", ("api", "Produce")).Value);
    }

    [Fact]
    public void Instruments_of_other_meters_are_not_exported()
    {
        using var mine = new Meter("Cairn.Tests.Mine");
        using var other = new Meter("Cairn.Tests.Mine"); // same name, another instance (another broker)
        using var exporter = new PrometheusExporter(mine, 100);
        mine.CreateCounter<long>("t_mine").Add(1);
        other.CreateCounter<long>("t_other").Add(1);
        var families = PrometheusTextParser.Parse(exporter.Collect());
        Assert.True(families.ContainsKey("t_mine_total"));
        Assert.False(families.ContainsKey("t_other_total"));
    }

    [Fact]
    public void Series_beyond_the_cap_are_dropped_and_counted()
    {
        using var meter = new Meter("Cairn.Tests.Cap");
        using var exporter = new PrometheusExporter(meter, 3);
        var counter = meter.CreateCounter<long>("t_c");
        for (int i = 0; i < 5; i++) counter.Add(1, new KeyValuePair<string, object?>("n", i));
        meter.CreateObservableGauge("t_g", () => Enumerable.Range(0, 10).Select(i => new Measurement<int>(i, new KeyValuePair<string, object?>("p", i))));
        var families = PrometheusTextParser.Parse(exporter.Collect());
        Assert.Equal(3, families["t_c_total"].Samples.Count);
        Assert.Equal(3, families["t_g"].Samples.Count);
        Assert.Equal(new[] { "0", "1", "2" }, families["t_g"].Samples.Select(s => s.Label("p")));
        Assert.Equal(2 + 7, families.Single(PrometheusExporter.DroppedFamily).Value);
        // The observable part of the count is per collection, not cumulative.
        families = PrometheusTextParser.Parse(exporter.Collect());
        Assert.Equal(2 + 7, families.Single(PrometheusExporter.DroppedFamily).Value);
    }

    [Fact]
    public void Series_are_ordered_by_label_values_numbers_numerically()
    {
        using var meter = new Meter("Cairn.Tests.Order");
        using var exporter = new PrometheusExporter(meter, 100);
        meter.CreateObservableGauge("t_p", () => new[] { 10, 2, 1 }.Select(p => new Measurement<long>(p,
            new KeyValuePair<string, object?>("topic", "t"), new KeyValuePair<string, object?>("partition", p))));
        var samples = PrometheusTextParser.Parse(exporter.Collect())["t_p"].Samples;
        Assert.Equal(new[] { "1", "2", "10" }, samples.Select(s => s.Label("partition")));
    }

    [Fact]
    public void A_failing_callback_does_not_take_the_other_metrics_down()
    {
        using var meter = new Meter("Cairn.Tests.Failing");
        using var exporter = new PrometheusExporter(meter, 100);
        meter.CreateObservableGauge<int>("t_broken", (Func<int>)(() => throw new ObjectDisposedException("log")));
        meter.CreateObservableGauge("t_fine", () => 1);
        var families = PrometheusTextParser.Parse(exporter.Collect());
        Assert.Empty(families["t_broken"].Samples);
        Assert.Equal(1, families.Single("t_fine").Value);
    }

    [Theory]
    [InlineData("a.b-c", "a_b_c")]
    [InlineData("9lives", "_9lives")]
    [InlineData("ok:name_1", "ok:name_1")]
    public void Names_are_sanitized(string raw, string expected) => Assert.Equal(expected, PrometheusExporter.SanitizeName(raw));

    [Fact]
    public void Special_float_values_use_the_exposition_spelling()
    {
        Assert.Equal("+Inf", PrometheusExporter.FormatDouble(double.PositiveInfinity));
        Assert.Equal("-Inf", PrometheusExporter.FormatDouble(double.NegativeInfinity));
        Assert.Equal("NaN", PrometheusExporter.FormatDouble(double.NaN));
        Assert.Equal("0.25", PrometheusExporter.FormatDouble(0.25));
    }
}
