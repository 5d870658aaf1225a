using System.Net;
using System.Text.Json;
using Cairn.Broker.Admin;

namespace Cairn.Tests.Admin;

/// <summary>The admin HTTP API against an in-process broker: JSON endpoints, /metrics through the strict parser, resets.</summary>
public sealed class AdminApiTests : IAsyncLifetime
{
    private AdminBroker _b = null!;

    public async Task InitializeAsync() => _b = await AdminBroker.StartAsync();

    public async Task DisposeAsync() => await _b.DisposeAsync();

    private static long[] Longs(JsonElement array, string property) => array.EnumerateArray().Select(e => e.GetProperty(property).GetInt64()).ToArray();

    [Fact]
    public async Task Health_and_readiness_answer()
    {
        Assert.Equal("ok", (await _b.GetJsonAsync("healthz")).GetProperty("status").GetString());
        Assert.Equal("ready", (await _b.GetJsonAsync("readyz")).GetProperty("status").GetString());
        var broker = await _b.GetJsonAsync("api/v1/broker");
        Assert.Equal(_b.Broker.Cluster.ClusterId, broker.GetProperty("clusterId").GetString());
        Assert.Equal(Cairn.Protocol.CairnVersion.Value, broker.GetProperty("version").GetString());
    }

    [Fact]
    public async Task Lag_after_producing_N_and_committing_M_shows_in_the_json_api_and_in_metrics()
    {
        const int N = 10, M = 4;
        await _b.ProduceAsync("events", 0, N);
        Assert.Equal(0, await _b.CommitAsync("g", "events", 0, M));

        var topics = await _b.GetJsonAsync("api/v1/topics");
        var events = topics.GetProperty("topics").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "events");
        Assert.Equal(2, events.GetProperty("partitionCount").GetInt32());
        Assert.Equal(new long[] { N, 0 }, Longs(events.GetProperty("partitions"), "logEndOffset"));
        Assert.Equal(new long[] { 0, 0 }, Longs(events.GetProperty("partitions"), "logStartOffset"));
        Assert.Equal(new long[] { N, 0 }, Longs(events.GetProperty("partitions"), "records"));
        Assert.Equal(N, events.GetProperty("records").GetInt64());
        Assert.False(events.GetProperty("internal").GetBoolean());
        Assert.False(events.TryGetProperty("configs", out _), "a topic list has no configs");

        var groups = await _b.GetJsonAsync("api/v1/groups");
        var g = groups.GetProperty("groups").EnumerateArray().Single(x => x.GetProperty("groupId").GetString() == "g");
        Assert.Equal(N - M, g.GetProperty("lagRecords").GetInt64());
        Assert.Equal("Empty", g.GetProperty("state").GetString());

        var detail = await _b.GetJsonAsync("api/v1/groups/g");
        Assert.Equal(N - M, detail.GetProperty("lagRecords").GetInt64());
        var p0 = detail.GetProperty("partitions").EnumerateArray().Single();
        Assert.Equal(("events", 0, (long)M, (long)N, (long)(N - M)),
            (p0.GetProperty("topic").GetString(), p0.GetProperty("partition").GetInt32(), p0.GetProperty("committedOffset").GetInt64(),
             p0.GetProperty("logEndOffset").GetInt64(), p0.GetProperty("lag").GetInt64()));
        // Record M was written at 1_700_000_000_000 + M ms: the lag in seconds is its age.
        var expectedSeconds = (DateTimeOffset.UtcNow - DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + M)).TotalSeconds;
        Assert.InRange(p0.GetProperty("lagSeconds").GetDouble(), expectedSeconds - 60, expectedSeconds + 1);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + M), p0.GetProperty("firstUnconsumedTimestamp").GetDateTimeOffset());

        using var response = await _b.Http.GetAsync("metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        var text = await response.Content.ReadAsStringAsync();
        var metrics = PrometheusTextParser.Parse(text); // strict: every line, TYPE first, no duplicates, histogram shape

        Assert.Equal(N - M, metrics.Single("cairn_group_lag_records", ("group", "g"), ("topic", "events"), ("partition", "0")).Value);
        Assert.Equal(M, metrics.Single("cairn_group_committed_offset", ("group", "g"), ("topic", "events"), ("partition", "0")).Value);
        Assert.InRange(metrics.Single("cairn_group_lag_seconds", ("group", "g"), ("topic", "events"), ("partition", "0")).Value, expectedSeconds - 60, expectedSeconds + 60);
        Assert.Equal(N, metrics.Single("cairn_partition_log_end_offset", ("topic", "events"), ("partition", "0")).Value);
        Assert.Equal(0, metrics.Single("cairn_partition_log_end_offset", ("topic", "events"), ("partition", "1")).Value);
        Assert.Equal(0, metrics.Single("cairn_partition_log_start_offset", ("topic", "events"), ("partition", "0")).Value);
        Assert.Equal(0, metrics.Single("cairn_group_members", ("group", "g")).Value);
        Assert.Equal(1, metrics.Single("cairn_requests_total", ("api", "Produce")).Value);
        Assert.Equal(1, metrics.Single("cairn_requests_total", ("api", "OffsetCommit")).Value);
        Assert.Equal(1, metrics.Single("cairn_request_duration_seconds_count", ("api", "Produce")).Value);
        Assert.Equal(1, metrics.Single("cairn_request_duration_seconds_bucket", ("api", "Produce"), ("le", "+Inf")).Value);
        Assert.True(metrics.Single("cairn_network_received_bytes_total").Value > 0);
        Assert.True(metrics.Single("cairn_network_sent_bytes_total").Value > 0);
        Assert.Equal(1, metrics.Single("cairn_connections_active").Value);
        Assert.Equal(0, metrics.Single("cairn_metrics_series_dropped").Value);
        foreach (var (name, type) in new[]
                 {
                     ("cairn_requests_total", "counter"), ("cairn_request_duration_seconds", "histogram"), ("cairn_network_received_bytes_total", "counter"),
                     ("cairn_network_sent_bytes_total", "counter"), ("cairn_connections_active", "gauge"), ("cairn_partition_log_start_offset", "gauge"),
                     ("cairn_partition_log_end_offset", "gauge"), ("cairn_group_committed_offset", "gauge"), ("cairn_group_lag_records", "gauge"),
                     ("cairn_group_lag_seconds", "gauge"),
                 })
        {
            Assert.Equal(type, metrics[name].Type);
            Assert.False(string.IsNullOrEmpty(metrics[name].Help));
        }

        // Consuming the rest brings the lag to zero everywhere.
        Assert.Equal(0, await _b.CommitAsync("g", "events", 0, N));
        Assert.Equal(0, (await _b.GetJsonAsync("api/v1/groups/g")).GetProperty("lagRecords").GetInt64());
        await Task.Delay(1100); // the metrics' group snapshot lives for a second
        metrics = PrometheusTextParser.Parse(await _b.Http.GetStringAsync("metrics"));
        Assert.Equal(0, metrics.Single("cairn_group_lag_records", ("group", "g"), ("topic", "events"), ("partition", "0")).Value);
        Assert.Equal(0, metrics.Single("cairn_group_lag_seconds", ("group", "g"), ("topic", "events"), ("partition", "0")).Value);
    }

    [Fact]
    public async Task Topic_details_include_configs_and_unknown_names_are_404()
    {
        await _b.CreateTopicAsync("described");
        var topic = await _b.GetJsonAsync("api/v1/topics/described");
        Assert.Equal("described", topic.GetProperty("name").GetString());
        Assert.Contains(topic.GetProperty("configs").EnumerateArray(), c => c.GetProperty("name").GetString() == "retention.ms");
        Assert.Contains("does not exist", (await _b.GetJsonAsync("api/v1/topics/nope", HttpStatusCode.NotFound)).GetProperty("error").GetString());
        await _b.GetJsonAsync("api/v1/groups/nobody", HttpStatusCode.NotFound);
        await _b.GetJsonAsync("api/v1/no/such/thing", HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Group_ids_with_slashes_and_spaces_round_trip_through_the_path()
    {
        await _b.ProduceAsync("events", 1, 3);
        Assert.Equal(0, await _b.CommitAsync("team/a b", "events", 1, 1));
        var detail = await _b.GetJsonAsync("api/v1/groups/" + Uri.EscapeDataString("team/a b"));
        Assert.Equal("team/a b", detail.GetProperty("groupId").GetString());
        Assert.Equal(2, detail.GetProperty("lagRecords").GetInt64());
    }

    [Fact]
    public async Task The_lag_history_records_sampled_totals()
    {
        await _b.ProduceAsync("events", 0, 5);
        await _b.ProduceAsync("events", 1, 7);
        Assert.Equal(0, await _b.CommitAsync("hist", "events", 0, 1));
        Assert.Equal(0, await _b.CommitAsync("hist", "events", 1, 2));
        var sampler = _b.Broker.LagSampler!;
        sampler.SampleNow();
        Assert.Equal(0, await _b.CommitAsync("hist", "events", 0, 5));
        sampler.SampleNow();

        var history = await _b.GetJsonAsync("api/v1/groups/hist/lag-history");
        Assert.Equal(30, history.GetProperty("intervalSeconds").GetDouble());
        Assert.Equal(3600, history.GetProperty("windowSeconds").GetDouble());
        var samples = history.GetProperty("samples").EnumerateArray().ToList();
        // (The background sampler may have added a sample of its own in between.)
        var lags = samples.Select(s => s.GetProperty("lagRecords").GetInt64()).ToList();
        Assert.Equal(5, lags[^1]);
        Assert.Contains(4 + 5, lags);
        Assert.True(samples[^1].GetProperty("lagSeconds").GetDouble() > 0);
        await _b.GetJsonAsync("api/v1/groups/nobody/lag-history", HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_lag_history_is_a_bounded_ring()
    {
        // One sample per hour kept for three hours: four slots. Extra samples overwrite the oldest.
        await using var b = await AdminBroker.StartAsync(o => o with
        {
            Admin = o.Admin with { LagSampleInterval = TimeSpan.FromHours(1), LagHistory = TimeSpan.FromHours(3) },
        });
        await b.ProduceAsync("events", 0, 3);
        Assert.Equal(0, await b.CommitAsync("ring", "events", 0, 0));
        for (int i = 0; i < 10; i++) b.Broker.LagSampler!.SampleNow();
        Assert.Equal(4, b.Broker.LagSampler!.HistoryOf("ring").Count);
        var history = await b.GetJsonAsync("api/v1/groups/ring/lag-history");
        Assert.Equal(4, history.GetProperty("samples").GetArrayLength());
        Assert.Equal(3 * 3600, history.GetProperty("windowSeconds").GetDouble());
    }

    [Fact]
    public async Task Reset_is_a_dry_run_unless_execute_is_true()
    {
        await _b.ProduceAsync("events", 0, 10);
        await _b.ProduceAsync("events", 1, 4);
        Assert.Equal(0, await _b.CommitAsync("r", "events", 0, 8));
        Assert.Equal(0, await _b.CommitAsync("r", "events", 1, 4));

        var (status, plan) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"mode": "to-offset", "value": 6, "topic": "events"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(plan.GetProperty("executed").GetBoolean());
        Assert.Contains("dry run", plan.GetProperty("message").GetString());
        var rows = plan.GetProperty("plan").EnumerateArray().ToList();
        Assert.Equal(new long[] { 8, 4 }, rows.Select(r => r.GetProperty("current").GetInt64()));
        Assert.Equal(new long[] { 6, 4 }, rows.Select(r => r.GetProperty("target").GetInt64()));
        Assert.Equal(new[] { false, true }, rows.Select(r => r.GetProperty("clamped").GetBoolean()));
        Assert.Contains("beyond log end 4: clamped", rows[1].GetProperty("note").GetString());
        Assert.Contains("TOPIC", plan.GetProperty("table").GetString());
        Assert.Equal(8, await _b.CommittedAsync("r", "events", 0)); // nothing changed

        (status, plan) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"toOffset": 6, "topic": "events", "partitions": [0], "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(plan.GetProperty("executed").GetBoolean());
        Assert.Equal(6, await _b.CommittedAsync("r", "events", 0));
        Assert.Equal(4, await _b.CommittedAsync("r", "events", 1));
        Assert.Equal(4, (await _b.GetJsonAsync("api/v1/groups/r")).GetProperty("lagRecords").GetInt64());

        // Other modes through the API.
        (status, _) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"toEarliest": true, "allTopics": true, "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(0, await _b.CommittedAsync("r", "events", 1));
        (status, _) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"shiftBy": 3, "allTopics": true, "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(3, await _b.CommittedAsync("r", "events", 0));
        (status, _) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"mode": "by-duration", "value": "PT1H", "topic": "events", "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status); // records are from 2023: an hour ago is after all of them
        Assert.Equal(10, await _b.CommittedAsync("r", "events", 0));
        (status, _) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"toDatetime": "2023-11-14T22:13:20.002Z", "topic": "events", "partitions": [0], "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, await _b.CommittedAsync("r", "events", 0));
        (status, _) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"fromFile": "events,0,7\nevents,1,1\n", "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal((7L, 1L), (await _b.CommittedAsync("r", "events", 0), await _b.CommittedAsync("r", "events", 1)));
        (status, _) = await _b.PostJsonAsync("api/v1/groups/r/reset", """{"fromFile": [{"topic": "events", "partition": 0, "offset": 9}], "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(9, await _b.CommittedAsync("r", "events", 0));
    }

    [Fact]
    public async Task Reset_is_refused_with_409_while_the_group_has_an_active_member()
    {
        await _b.ProduceAsync("events", 0, 10);
        var memberId = await _b.JoinGroupAsync("active", "events");
        var group = await _b.GetJsonAsync("api/v1/groups/active");
        Assert.Equal("Stable", group.GetProperty("state").GetString());
        Assert.Equal("events", group.GetProperty("members")[0].GetProperty("assignment")[0].GetProperty("topic").GetString());

        // A dry run still shows the plan, with a warning.
        var (status, body) = await _b.PostJsonAsync("api/v1/groups/active/reset", """{"toLatest": true, "topic": "events"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, body.GetProperty("activeMembers").GetInt32());
        Assert.Contains(body.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("active member"));

        (status, body) = await _b.PostJsonAsync("api/v1/groups/active/reset", """{"toLatest": true, "topic": "events", "execute": true}""");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("has 1 active member(s)", body.GetProperty("message").GetString());
        Assert.False(body.GetProperty("executed").GetBoolean());
        Assert.Equal(-1, await _b.CommittedAsync("active", "events", 0));

        // Once the member leaves, the same request goes through.
        await _b.LeaveGroupAsync("active", memberId);
        (status, body) = await _b.PostJsonAsync("api/v1/groups/active/reset", """{"toLatest": true, "topic": "events", "execute": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(10, await _b.CommittedAsync("active", "events", 0));
    }

    [Theory]
    [InlineData("""{"topic": "events"}""", "say how to reset")]
    [InlineData("""{"toEarliest": true, "toLatest": true, "topic": "events"}""", "exactly one reset mode")]
    [InlineData("""{"mode": "to-earliest", "toLatest": true, "topic": "events"}""", "give the mode once")]
    [InlineData("""{"toEarliest": true}""", "say which partitions")]
    [InlineData("""{"toEarliest": true, "topic": "events", "allTopics": true}""", "not both")]
    [InlineData("""{"toEarliest": true, "partitions": [0], "allTopics": true}""", "partitions need a topic")]
    [InlineData("""{"toEarliest": true, "topic": "events", "partitons": [0]}""", "unknown field 'partitons'")]
    [InlineData("""{"toOffset": "x", "topic": "events"}""", "integer")]
    [InlineData("""{"byDuration": "2 hours", "topic": "events"}""", "ISO-8601")]
    [InlineData("""{"toEarliest": false, "topic": "events"}""", "takes true")]
    [InlineData("""{"toEarliest": true, "topic": "events", "execute": "yes"}""", "true or false")]
    [InlineData("""{"toEarliest": true, "topic": "events", "execute": true, "dryRun": true}""", "contradict")]
    [InlineData("""[1]""", "JSON object")]
    [InlineData("""not json""", "must be JSON")]
    [InlineData("""{"shiftBy": 1, "topic": "events"}""", "no committed offset")]
    [InlineData("""{"toEarliest": true, "topic": "nope"}""", "does not exist")]
    public async Task Bad_reset_requests_are_400_with_a_reason(string body, string reason)
    {
        await _b.CreateTopicAsync("events");
        var (status, answer) = await _b.PostJsonAsync("api/v1/groups/x/reset", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var text = answer.GetRawText();
        Assert.Contains(reason, text);
    }

    [Fact]
    public async Task Cross_origin_browser_posts_are_refused_and_the_same_origin_is_not()
    {
        await _b.CreateTopicAsync("events");
        var port = _b.BaseAddress.Port;
        var (status, body) = await _b.PostJsonAsync("api/v1/groups/x/reset", """{"toEarliest": true, "topic": "events"}""",
            r => r.Headers.Add("Origin", "https://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("cross-origin", body.GetProperty("error").GetString());
        (status, _) = await _b.PostJsonAsync("api/v1/groups/x/reset", """{"toEarliest": true, "topic": "events"}""",
            r => r.Headers.Add("Origin", $"http://127.0.0.1:{port}"));
        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task Wrong_methods_are_405()
    {
        using var post = await _b.Http.PostAsync("api/v1/topics", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        using var get = await _b.Http.GetAsync("api/v1/groups/g/reset");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        Assert.Equal("POST", string.Join(",", get.Content.Headers.Allow));
    }

    [Fact]
    public async Task The_dashboard_is_a_self_contained_page()
    {
        using var response = await _b.Http.GetAsync("");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("http://www.w3.org/2000/svg", html); // the chart is inline SVG
        Assert.Equal(Dashboard.Html, html);
        Assert.Contains("/api/v1/groups", html);
        Assert.DoesNotContain("src=\"http", html); // no external scripts or assets
        Assert.True(response.Headers.Contains("Content-Security-Policy"));
    }
}
