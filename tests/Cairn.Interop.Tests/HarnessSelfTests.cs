using System.Text;
using Cairn.Interop.Tests.Clients;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>Checks of the harness itself (no broker): the comparisons must catch differences.</summary>
public sealed class HarnessSelfTests
{
    private static readonly OutRecord Sample = new()
    {
        Partition = 0,
        Key = [],
        Value = [0, 1, 2],
        Headers = [new KHeader("a", null), new KHeader("b", [0x41, 0x00, 0x42]), new KHeader("a", "x"u8.ToArray())],
        Timestamp = 1234,
    };

    private static ConsumeResult Result(params KRecord[] records) => new() { Records = records, Diagnostics = "(test)" };

    private static KRecord Same(long offset = 0) => new()
    {
        Partition = 0, Offset = offset, Timestamp = 1234, Key = [], Value = [0, 1, 2],
        Headers = [new KHeader("a", null), new KHeader("b", [0x41, 0x00, 0x42]), new KHeader("a", "x"u8.ToArray())],
    };

    [Fact]
    public void Identical_records_match()
    {
        Assert.Empty(RecordAssert.Compare("t", [new Expected(Sample, 0)], Result(Same()), KafkaClients.Confluent));
    }

    [Fact]
    public void Differences_are_reported()
    {
        var expected = new List<Expected> { new(Sample, 0) };
        var nullKey = Same();
        Assert.NotEmpty(RecordAssert.Compare("t", expected, Result(new KRecord
        {
            Partition = 0, Offset = 0, Timestamp = 1234, Key = null, Value = nullKey.Value, Headers = nullKey.Headers,
        }), KafkaClients.Confluent));
        Assert.NotEmpty(RecordAssert.Compare("t", expected, Result(new KRecord
        {
            Partition = 0, Offset = 0, Timestamp = 1234, Key = [], Value = [0, 1, 3], Headers = nullKey.Headers,
        }), KafkaClients.Confluent));
        Assert.NotEmpty(RecordAssert.Compare("t", expected, Result(new KRecord
        {
            Partition = 0, Offset = 0, Timestamp = 1234, Key = [], Value = nullKey.Value,
            Headers = [new KHeader("a", []), nullKey.Headers[1], nullKey.Headers[2]],
        }), KafkaClients.Confluent));
        Assert.NotEmpty(RecordAssert.Compare("t", expected, Result(Same(offset: 1)), KafkaClients.Confluent));
        Assert.NotEmpty(RecordAssert.Compare("t", expected, Result(), KafkaClients.Confluent));
        Assert.NotEmpty(RecordAssert.Compare("t", expected, Result(Same(), Same()), KafkaClients.Confluent));
        Assert.NotEmpty(RecordAssert.Compare("t", expected, Result(new KRecord
        {
            Partition = 0, Offset = 0, Timestamp = 999, Key = [], Value = nullKey.Value, Headers = nullKey.Headers,
        }), KafkaClients.Confluent));
    }

    [Fact]
    public void Kafkajs_header_grouping_is_expected_but_nothing_else()
    {
        var grouped = new KRecord
        {
            Partition = 0, Offset = 0, Timestamp = 1234, Key = [], Value = [0, 1, 2],
            Headers = [new KHeader("a", null), new KHeader("a", "x"u8.ToArray()), new KHeader("b", [0x41, 0x00, 0x42])],
        };
        Assert.Empty(RecordAssert.Compare("t", [new Expected(Sample, 0)], Result(grouped), KafkaClients.Kafkajs));
        Assert.NotEmpty(RecordAssert.Compare("t", [new Expected(Sample, 0)], Result(grouped), KafkaClients.Confluent));
    }

    [Fact]
    public void Kcat_output_parses_and_renders_headers_like_kcat()
    {
        var output = new List<byte>();
        output.AddRange(Encoding.ASCII.GetBytes("3 17 1234 -1 0\n"));
        output.AddRange("\n"u8.ToArray());
        output.AddRange(Encoding.ASCII.GetBytes("a=NULL,b=A,a=x"));
        output.AddRange(new byte[] { 0x1e, 0x1f, 0x1e, (byte)'\n' });
        output.AddRange(Encoding.ASCII.GetBytes("3 18 1235 2 3\n"));
        output.AddRange(new byte[] { (byte)'k', (byte)'\n', 0, (byte)'\n', 9 });
        output.AddRange("\n"u8.ToArray());
        output.AddRange(new byte[] { 0x1e, 0x1f, 0x1e, (byte)'\n' });

        var records = KcatClient.ParseOutput(output.ToArray(), "(test)");
        Assert.Equal(2, records.Count);
        Assert.Null(records[0].Key);
        Assert.Equal([], records[0].Value!);
        Assert.Equal(17, records[0].Offset);
        Assert.Equal(3, records[0].Partition);
        Assert.Equal(KcatClient.RenderHeaders(Sample.Headers), records[0].HeadersRendered);
        Assert.Equal("k\n"u8.ToArray(), records[1].Key!);
        Assert.Equal(new byte[] { 0, (byte)'\n', 9 }, records[1].Value!);
        Assert.Empty(records[1].HeadersRendered!);
    }

    [Fact]
    public void Expected_offsets_must_be_consecutive()
    {
        var records = TestData.Numbered("x", 3, partition: 0);
        var ok = new ProduceResult { Acks = [new Ack(0, 0, 5), new Ack(1, 0, 6), new Ack(2, 0, 7)], Diagnostics = "" };
        Assert.Equal([5L, 6L, 7L], RecordAssert.Expect(records, ok, firstOffset: 5).Select(e => e.Offset));
        var gap = new ProduceResult { Acks = [new Ack(0, 0, 0), new Ack(1, 0, 2), new Ack(2, 0, 3)], Diagnostics = "" };
        Assert.Throws<InteropFailureException>(() => RecordAssert.Expect(records, gap));
    }

    [Fact]
    public void Test_data_fits_each_client()
    {
        foreach (var client in KafkaClients.All)
        {
            var caps = client.Caps;
            foreach (var r in TestData.Mixed(caps, 200, 1, 0, 1000).Concat(TestData.Shapes(caps, 0)))
            {
                Assert.False(!caps.NullKeyAndNullValue && r.Key is null && r.Value is null, $"{client.Name}: {r}");
                Assert.False(!caps.NullValue && r.Value is null, $"{client.Name}: {r}");
                Assert.False(!caps.NullHeaderValues && r.Headers.Any(h => h.Value is null), $"{client.Name}: {r}");
                Assert.False(!caps.Timestamps && r.Timestamp is not null, $"{client.Name}: {r}");
                if (!caps.OrderedDuplicateHeaders)
                    Assert.Equal(RecordAssert.GroupByName(r.Headers), r.Headers);
            }
        }
    }
}
