using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>
/// Malformed input on one connection gets that connection closed, while other connections and
/// real clients keep working. Plus framing rules every client relies on.
/// </summary>
public sealed class BadInputTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(10);

    public static IEnumerable<object[]> BadInputs() =>
    [
        ["http-request"],
        ["huge-length-prefix"],
        ["negative-length-prefix"],
        ["zero-length-frame"],
        ["truncated-frame-then-eof"],
        ["client-id-longer-than-frame"],
        ["random-bytes"],
    ];

    private static byte[] Payload(string kind)
    {
        switch (kind)
        {
            case "http-request":
                return Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl\r\n\r\n");
            case "huge-length-prefix":
            {
                var b = new byte[4 + 64];
                BinaryPrimitives.WriteInt32BigEndian(b, int.MaxValue);
                return b;
            }
            case "negative-length-prefix":
                return [0xff, 0xff, 0xff, 0xff, 0, 18, 0, 0];
            case "zero-length-frame":
                return [0, 0, 0, 0];
            case "truncated-frame-then-eof":
            {
                // Declares 100 bytes, sends the start of a valid ApiVersions header, then EOF.
                var b = new byte[4 + 10];
                BinaryPrimitives.WriteInt32BigEndian(b, 100);
                BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(4), RawKafka.ApiVersionsKey);
                BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), 7);
                return b;
            }
            case "client-id-longer-than-frame":
            {
                // A complete frame whose header says the client id is 500 bytes long.
                var payload = new byte[12];
                BinaryPrimitives.WriteInt16BigEndian(payload, RawKafka.ApiVersionsKey);
                BinaryPrimitives.WriteInt16BigEndian(payload.AsSpan(2), 0);
                BinaryPrimitives.WriteInt32BigEndian(payload.AsSpan(4), 9);
                BinaryPrimitives.WriteInt16BigEndian(payload.AsSpan(8), 500);
                payload[10] = (byte)'x';
                payload[11] = (byte)'y';
                return RawKafka.Frame(payload);
            }
            case "random-bytes":
            {
                var b = new byte[4096];
                new Random(12345).NextBytes(b);
                b[0] = 0x7f; // first length byte: far beyond any request size limit
                return b;
            }
            default:
                throw new ArgumentException(kind);
        }
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public Task Bad_input_closes_only_that_connection(string kind) => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var port = fixture.Broker.Port;
        using var healthy = await RawKafka.ConnectAsync(port);
        await RawKafka.ApiVersionsAsync(healthy, 1);

        using (var bad = await RawKafka.ConnectAsync(port))
        {
            await RawKafka.SendAsync(bad, Payload(kind));
            if (kind == "truncated-frame-then-eof") bad.Shutdown(SocketShutdown.Send);
            Assert.True(await RawKafka.IsClosedByPeerAsync(bad, CloseTimeout),
                $"broker kept the connection open {CloseTimeout.TotalSeconds:F0}s after '{kind}'");
        }

        // The connection opened before is unaffected, a new one works, and so does a real client.
        await RawKafka.ApiVersionsAsync(healthy, 2);
        using (var fresh = await RawKafka.ConnectAsync(port))
            await RawKafka.ApiVersionsAsync(fresh, 3, version: 3);
        Assert.True(fixture.Broker.IsRunning, "broker process died");
        var md = await KcatClient.MetadataAsync(fixture.Bootstrap);
        Assert.Equal(BrokerProcess.NodeId, md.GetProperty("brokers")[0].GetProperty("id").GetInt32());
    });

    [Fact]
    public Task Many_bad_connections_at_once_do_not_disturb_a_producer() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        var port = fixture.Broker.Port;
        var kinds = BadInputs().Select(o => (string)o[0]).ToList();
        var sockets = new List<Socket>();
        try
        {
            for (var i = 0; i < 30; i++)
            {
                var s = await RawKafka.ConnectAsync(port);
                sockets.Add(s);
                await RawKafka.SendAsync(s, Payload(kinds[i % kinds.Count]));
            }
            var topic = Topics.Unique("bad-neighbours");
            var records = TestData.Numbered("ok", 50, partition: 0);
            var produced = await KafkaClients.Confluent.ProduceAsync(fixture.Bootstrap, topic, records);
            var got = await KafkaClients.Kcat.ConsumeAsync(fixture.Bootstrap, topic, 50, StartAt.Earliest, partitions: [0]);
            RecordAssert.NoProblems(RecordAssert.Compare("beside bad connections", RecordAssert.Expect(records, produced), got, KafkaClients.Kcat));
        }
        finally
        {
            foreach (var s in sockets) s.Dispose();
        }
    });

    [Fact]
    public Task Pipelined_requests_are_answered_in_order() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        using var s = await RawKafka.ConnectAsync(fixture.Broker.Port);
        var versions = Enumerable.Range(0, 40).Select(i => (short)(i % 2 == 0 ? 0 : 3)).ToArray();
        await RawKafka.SendAsync(s, versions.SelectMany((v, i) => RawKafka.ApiVersionsRequest(1000 + i, v)).ToArray());
        for (var i = 0; i < versions.Length; i++)
        {
            var r = RawKafka.ParseApiVersions(await RawKafka.ReadFrameAsync(s, TimeSpan.FromSeconds(10)), versions[i]);
            Assert.Equal(1000 + i, r.CorrelationId);
            Assert.Equal(0, r.ErrorCode);
            Assert.Contains(r.Apis, a => a.Key == RawKafka.ApiVersionsKey);
        }
    });

    [Fact]
    public Task ApiVersions_of_an_unknown_version_answers_v0_with_UNSUPPORTED_VERSION() => fixture.Broker.WithBrokerLogAsync(async () =>
    {
        using var s = await RawKafka.ConnectAsync(fixture.Broker.Port);
        await RawKafka.SendAsync(s, RawKafka.ApiVersionsRequest(77, version: 127));
        var r = RawKafka.ParseApiVersions(await RawKafka.ReadFrameAsync(s, TimeSpan.FromSeconds(10)), version: 0);
        Assert.Equal(77, r.CorrelationId);
        Assert.Equal(RawKafka.UnsupportedVersion, r.ErrorCode);
        Assert.Contains(r.Apis, a => a.Key == RawKafka.ApiVersionsKey && a.Min == 0 && a.Max >= 3);
    });
}
