using System.Diagnostics.Metrics;
using Cairn.Broker;
using Cairn.Broker.Metrics;
using Cairn.Broker.Network;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;
using Cairn.Tests.Client;
using Cairn.Tests.Offsets;
using Cairn.Tests.Protocol;
using Microsoft.Extensions.Logging;

namespace Cairn.Tests.Broker;

/// <summary>
/// Null (length -1) in a field Kafka declares non-nullable, for every request and version the broker serves: the broker
/// closes that connection with a warning (as Kafka does on an InvalidRequestException), logs nothing at error level,
/// and keeps serving everyone else.
/// </summary>
public sealed class NullFieldTests
{
    [Fact]
    public async Task Every_forbidden_null_of_every_served_request_closes_only_its_connection_without_an_error_line()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-test-" + Guid.NewGuid().ToString("N"));
        var logs = new CapturingLoggerFactory();
        // Other tests' brokers may count malformed requests too (one meter name per process), so this only proves a lower bound.
        long counted = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BrokerMetrics.MeterName && instrument.Name == "cairn_malformed_requests") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag is { Key: "reason", Value: "body" }) Interlocked.Add(ref counted, value);
        });
        listener.Start();
        var options = BrokerOptions.FromSettings([new("admin.listen", "none")]) with { ListenPort = 0, DataDir = dataDir };
        var broker = await KafkaBroker.StartAsync(options, logs);
        try
        {
            int port = broker.LocalEndPoint.Port;
            ApiVersionsResponse served;
            using (var client = await WireClient.ConnectAsync(port))
                served = await client.SendAsync<ApiVersionsRequest, ApiVersionsResponse>(new(), 0);

            var seen = new HashSet<ApiKey>();
            int cases = 0;
            foreach (var api in served.ApiKeys)
            {
                var request = MessageCatalog.Request((ApiKey)api.ApiKey)!;
                for (short version = api.MinVersion; version <= api.MaxVersion; version++)
                {
                    foreach (var c in NullFieldFrames.For(request, version))
                    {
                        using var client = await WireClient.ConnectAsync(port);
                        await client.SendRawAsync(Frame(c));
                        Assert.True(await client.IsClosedByPeerAsync(TimeSpan.FromSeconds(30)), $"{c}: connection neither closed nor answered");
                        seen.Add(c.ApiKey);
                        cases++;
                    }
                }
            }
            Assert.True(cases > 500, $"only {cases} frames");
            // The paths that threw NullReferenceException before the decoder checked (issue 10, case 7) are all among them.
            Assert.Superset(new HashSet<ApiKey>
            {
                ApiKey.ListOffsets, ApiKey.Fetch, ApiKey.OffsetCommit, ApiKey.Produce, ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.Heartbeat,
                ApiKey.DescribeConfigs, ApiKey.FindCoordinator, ApiKey.DescribeGroups, ApiKey.OffsetFetch, ApiKey.LeaveGroup,
            }, seen);

            using (var client = await WireClient.ConnectAsync(port))
            {
                Assert.Equal(0, (await client.SendAsync<ApiVersionsRequest, ApiVersionsResponse>(new() { ClientSoftwareName = "t", ClientSoftwareVersion = "1" }, 3)).ErrorCode);
                Assert.NotNull((await client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [] }, 9)).ClusterId);
            }

            var lines = logs.Lines.ToList();
            Assert.DoesNotContain(lines, l => l.Level >= LogLevel.Error);
            var warnings = lines.Where(l => l.Level == LogLevel.Warning).ToList();
            Assert.Contains(warnings, l => l.Message.Contains("is null but not nullable in this version", StringComparison.Ordinal));
            // At most one line per request (fewer when rate-limited: see the test below); never a stack trace.
            Assert.InRange(warnings.Count, 1, cases);
            Assert.True(Interlocked.Read(ref counted) >= cases, $"{counted} counted in cairn_malformed_requests_total for {cases} requests");
        }
        finally
        {
            await broker.DisposeAsync();
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    private static ReadOnlyMemory<byte> Frame(NullFieldCase c)
    {
        using var writer = new KafkaWriter();
        writer.Advance(4);
        new RequestHeader(c.ApiKey, c.Version, 1, "null-fields").Write(writer);
        writer.WriteRaw(c.Body);
        writer.PatchInt32(0, writer.Position - 4);
        return writer.WrittenSpan.ToArray();
    }

    private sealed class ManualTime : TimeProvider
    {
        public long Now { get; set; } = 1;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Now;
    }

    [Fact]
    public void Malformed_request_warnings_are_one_line_per_reason_per_second_and_the_next_says_how_many_were_left_out()
    {
        var logger = new ListLogger();
        var time = new ManualTime();
        var log = new MalformedRequestLog(logger, null, time);
        for (int i = 0; i < 5; i++) log.Report(MalformedReason.Body, "bad body {N}", i);
        log.Report(MalformedReason.Header, "bad header");
        Assert.Equal(["bad body 0", "bad header"], logger.Entries.Select(e => e.Message));

        time.Now += TimeSpan.TicksPerSecond;
        log.Report(MalformedReason.Body, "bad body {N}", 5);
        log.Report(MalformedReason.Body, "bad body {N}", 6);
        Assert.Equal(3, logger.Entries.Count);
        Assert.Equal("bad body 5 (4 similar lines left out)", logger.Entries[^1].Message);
        Assert.All(logger.Entries, e => Assert.Equal(LogLevel.Warning, e.Level));
    }
}
