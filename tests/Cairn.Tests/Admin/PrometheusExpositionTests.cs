using System.Net;
using System.Net.Sockets;
using System.Text;
using Cairn.Broker;
using Cairn.Broker.Metrics;
using Cairn.Testing;
using BrokerOptions = Cairn.Broker.BrokerOptions;

namespace Cairn.Tests.Admin;

/// <summary>
/// /metrics as the OpenTelemetry Prometheus exporter writes it for a running in-process broker: the documented names,
/// types and label sets, escaping, the series cap, promtool's verdict; and the opt-in OTLP push.
/// </summary>
public sealed class PrometheusExpositionTests : IAsyncLifetime
{
    private AdminBroker _b = null!;

    public async Task InitializeAsync() => _b = await AdminBroker.StartAsync();

    public async Task DisposeAsync() => await _b.DisposeAsync();

    /// <summary>Traffic that gives every family at least one series: produce, a group's commit.</summary>
    private static async Task TrafficAsync(AdminBroker b, string group = "g")
    {
        await b.CreateTopicAsync("events");
        await b.ProduceAsync("events", 0, 5);
        Assert.Equal(0, await b.CommitAsync(group, "events", 0, 2));
    }

    private static string[] LabelNames(PromFamily family) =>
        family.Samples.SelectMany(s => s.Labels.Keys).Where(k => k != "le").Distinct().Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task Every_family_keeps_its_name_type_and_label_set()
    {
        await TrafficAsync(_b);
        var families = PrometheusTextParser.Parse(await _b.Http.GetStringAsync("metrics"));
        var expected = new (string Name, string Type, string[] Labels)[]
        {
            ("cairn_requests_total", "counter", ["api"]),
            ("cairn_request_duration_seconds", "histogram", ["api"]),
            ("cairn_network_received_bytes_total", "counter", []),
            ("cairn_network_sent_bytes_total", "counter", []),
            ("cairn_connections_active", "gauge", []),
            ("cairn_request_queued_bytes", "gauge", []),
            ("cairn_partition_log_start_offset", "gauge", ["partition", "topic"]),
            ("cairn_partition_log_end_offset", "gauge", ["partition", "topic"]),
            ("cairn_partition_size_bytes", "gauge", ["partition", "topic"]),
            ("cairn_group_committed_offset", "gauge", ["group", "partition", "topic"]),
            ("cairn_group_lag_records", "gauge", ["group", "partition", "topic"]),
            ("cairn_group_lag_seconds", "gauge", ["group", "partition", "topic"]),
            ("cairn_group_members", "gauge", ["group"]),
            ("cairn_metrics_series_dropped", "gauge", []),
        };
        Assert.Equal(expected.Select(e => e.Name).Order(StringComparer.Ordinal), families.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, type, labels) in expected)
        {
            Assert.Equal(type, families[name].Type);
            Assert.False(string.IsNullOrEmpty(families[name].Help), name);
            Assert.Equal(labels, LabelNames(families[name]));
        }
        // The buckets are the broker's own, le inclusive, then +Inf.
        var les = families["cairn_request_duration_seconds"].Samples
            .Where(s => s.Name.EndsWith("_bucket", StringComparison.Ordinal) && s.Label("api") == "Produce").Select(s => s.Label("le")).ToArray();
        Assert.Equal(BrokerMetrics.DurationBuckets.Select(b => b.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append("+Inf"), les);
        Assert.Equal(3, families.Single("cairn_group_lag_records", ("group", "g"), ("topic", "events"), ("partition", "0")).Value);
        Assert.Equal(5, families.Single("cairn_partition_log_end_offset", ("topic", "events"), ("partition", "0")).Value);
    }

    [Fact]
    public async Task Label_values_are_escaped()
    {
        const string group = "we\"ird\\gr\noup";
        await TrafficAsync(_b, group);
        var text = await _b.Http.GetStringAsync("metrics");
        Assert.Contains("cairn_group_committed_offset{group=\"we\\\"ird\\\\gr\\noup\",partition=\"0\",topic=\"events\"} 2\n", text);
        Assert.Equal(2, PrometheusTextParser.Parse(text).Single("cairn_group_committed_offset", ("group", group), ("topic", "events"), ("partition", "0")).Value);
    }

    [Fact]
    public async Task Promtool_accepts_the_exposition()
    {
        var promtool = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "promtool")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("promtool is not installed (apt-get install prometheus; bash test.sh installs it)");
        await TrafficAsync(_b);
        var memberId = await _b.JoinGroupAsync("members", "events");
        var text = await _b.Http.GetStringAsync("metrics");
        Assert.Contains("cairn_group_members{group=\"members\"} 1", text);
        var result = await ChildProcess.RunAsync(promtool, ["check", "metrics"], TimeSpan.FromSeconds(60), Encoding.UTF8.GetBytes(text));
        Assert.True(result.ExitCode == 0, $"promtool check metrics: exit {result.ExitCode}\n{result.Stdout}{result.Stderr}\n--- exposition:\n{text}");
        await _b.LeaveGroupAsync("members", memberId);
    }

    [Fact]
    public async Task A_deleted_topic_leaves_the_exposition()
    {
        await _b.CreateTopicAsync("doomed");
        Assert.Contains(PrometheusTextParser.Parse(await _b.Http.GetStringAsync("metrics"))["cairn_partition_size_bytes"].Samples, s => s.Label("topic") == "doomed");
        Assert.Equal(Cairn.Protocol.ErrorCode.None, _b.Broker.Logs.DeleteTopic("doomed").Error);
        var families = PrometheusTextParser.Parse(await _b.Http.GetStringAsync("metrics"));
        Assert.DoesNotContain(families.Values.SelectMany(f => f.Samples), s => s.Label("topic") == "doomed");
    }

    [Fact]
    public async Task An_OpenMetrics_scraper_gets_the_text_format_too()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "metrics");
        request.Headers.TryAddWithoutValidation("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5");
        using var response = await _b.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
        PrometheusTextParser.Parse(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Head_is_served_and_other_methods_are_refused()
    {
        using var head = await _b.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "metrics"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        using var post = await _b.Http.PostAsync("metrics", new StringContent(""));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal("GET, HEAD", string.Join(", ", post.Content.Headers.Allow));
    }

    [Fact]
    public async Task Another_brokers_instruments_are_not_exported()
    {
        await TrafficAsync(_b);
        await using var other = await AdminBroker.StartAsync();
        await other.CreateTopicAsync("elsewhere");
        await other.ProduceAsync("elsewhere", 0, 1);
        await other.ProduceAsync("elsewhere", 0, 1);
        var mine = PrometheusTextParser.Parse(await _b.Http.GetStringAsync("metrics"));
        Assert.Equal(1, mine.Single("cairn_requests_total", ("api", "Produce")).Value);
        Assert.DoesNotContain(mine.Values.SelectMany(f => f.Samples), s => s.Label("topic") == "elsewhere");
        var theirs = PrometheusTextParser.Parse(await other.Http.GetStringAsync("metrics"));
        Assert.Equal(2, theirs.Single("cairn_requests_total", ("api", "Produce")).Value);
    }

    [Fact]
    public async Task Series_beyond_the_cap_are_dropped_and_counted_also_over_the_brokers_life()
    {
        await using var b = await AdminBroker.StartAsync(o => o with { Admin = o.Admin with { MaxMetricSeries = 3 } });
        var logs = b.Broker.Logs;
        foreach (var t in new[] { "a", "b", "c" }) Assert.Equal(Cairn.Protocol.ErrorCode.None, logs.CreateTopic(t, 2).Error);
        var families = PrometheusTextParser.Parse(await b.Http.GetStringAsync("metrics"));
        Assert.Equal(["a/0", "a/1", "b/0"], families["cairn_partition_log_end_offset"].Samples.Select(s => $"{s.Label("topic")}/{s.Label("partition")}"));
        Assert.Equal(3, families.Single("cairn_metrics_series_dropped").Value);

        // Each gauge yields at most 2 x 3 different label sets over the broker's life (an exporter keeps a slot for
        // every one it has seen): a/0, a/1, b/0, then c/0, c/1, d/0 once a and b are gone; d/1 never gets one.
        Assert.Equal(Cairn.Protocol.ErrorCode.None, logs.DeleteTopic("a").Error);
        Assert.Equal(Cairn.Protocol.ErrorCode.None, logs.DeleteTopic("b").Error);
        Assert.Equal(Cairn.Protocol.ErrorCode.None, logs.CreateTopic("d", 2).Error);
        families = PrometheusTextParser.Parse(await b.Http.GetStringAsync("metrics"));
        Assert.Equal(["c/0", "c/1", "d/0"], families["cairn_partition_log_end_offset"].Samples.Select(s => $"{s.Label("topic")}/{s.Label("partition")}"));
        Assert.Equal(1, families.Single("cairn_metrics_series_dropped").Value);
        Assert.Equal(Cairn.Protocol.ErrorCode.None, logs.DeleteTopic("c").Error);
        families = PrometheusTextParser.Parse(await b.Http.GetStringAsync("metrics"));
        Assert.Equal(["d/0"], families["cairn_partition_log_end_offset"].Samples.Select(s => $"{s.Label("topic")}/{s.Label("partition")}"));
        Assert.Equal(1, families.Single("cairn_metrics_series_dropped").Value);
        Assert.DoesNotContain(families.Values.SelectMany(f => f.Samples), s => s.Labels.Keys.Any(k => k.StartsWith("otel", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/metrics")]
    [InlineData("https://collector.example:4318/custom/path", "https://collector.example:4318/custom/path")]
    public void The_otlp_endpoint_setting_takes_a_base_address_or_a_full_url(string value, string expected)
    {
        var options = BrokerOptions.FromSettings([new("metrics.otlp.endpoint", value), new("metrics.otlp.interval.ms", "1500")]);
        Assert.Equal(new Uri(expected), options.Metrics.OtlpEndpoint);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.Metrics.OtlpExportInterval);
        Assert.Null(new BrokerOptions().Metrics.OtlpEndpoint); // off by default
        Assert.Null(BrokerOptions.FromSettings([new("metrics.otlp.endpoint", "none")]).Metrics.OtlpEndpoint);
        var e = Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new("metrics.otlp.endpoint", "collector:4318")]));
        Assert.StartsWith("metrics.otlp.endpoint must be an http:// or https:// URL", e.Message);
    }

    [Fact]
    public async Task Metrics_are_pushed_over_otlp_http_when_an_endpoint_is_set()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var collector = new HttpListener();
        collector.Prefixes.Add($"http://127.0.0.1:{port}/");
        collector.Start();
        await using var b = await AdminBroker.StartAsync(o => o with
        {
            Metrics = new MetricsOptions { OtlpEndpoint = new Uri($"http://127.0.0.1:{port}"), OtlpExportInterval = TimeSpan.FromMilliseconds(200) },
        });
        await b.CreateTopicAsync("pushed");
        await b.ProduceAsync("pushed", 0, 3);

        // Exports arrive every 200 ms; one taken after the produce carries the request counter and the partition gauges.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var seen = new List<string>();
        for (int i = 0; i < 200; i++)
        {
            var remaining = deadline - DateTime.UtcNow;
            Assert.True(remaining > TimeSpan.Zero, $"no OTLP export with the broker's metrics within 30 s; requests seen: {string.Join("; ", seen)}");
            var context = await collector.GetContextAsync().WaitAsync(remaining);
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            context.Response.StatusCode = 200;
            context.Response.Close();
            var bytes = Encoding.UTF8.GetString(body.ToArray()); // protobuf: the names are plain UTF-8 inside it
            seen.Add($"{context.Request.HttpMethod} {context.Request.Url!.AbsolutePath} {context.Request.ContentType} {body.Length} bytes");
            Assert.Equal("POST", context.Request.HttpMethod);
            Assert.Equal("/v1/metrics", context.Request.Url!.AbsolutePath);
            Assert.Equal("application/x-protobuf", context.Request.ContentType);
            if (bytes.Contains("cairn_requests") && bytes.Contains("cairn_partition_log_end_offset") && bytes.Contains("pushed"))
            {
                Assert.Contains("cairn_request_duration_seconds", bytes);
                Assert.Contains("Cairn.Broker", bytes); // the meter (OTLP scope) name
                // The broker pushes once more when it stops: answered, so stopping does not wait out the push's timeout.
                _ = AnswerUntilClosedAsync(collector);
                return;
            }
        }
        Assert.Fail($"200 OTLP exports without the broker's metrics: {string.Join("; ", seen.TakeLast(5))}");
    }

    private static async Task AnswerUntilClosedAsync(HttpListener collector)
    {
        try
        {
            for (int i = 0; i < 100; i++)
            {
                var context = await collector.GetContextAsync();
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { } // the test is over
    }
}
