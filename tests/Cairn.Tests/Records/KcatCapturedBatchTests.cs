using Cairn.Protocol.Records;
using static Cairn.Tests.Records.RecordAssert;

namespace Cairn.Tests.Records;

/// <summary>Batches written by a real client (librdkafka via kcat), one per codec; see <see cref="KcatCapturedBatches"/>.</summary>
public class KcatCapturedBatchTests
{
    public static TheoryData<string, CompressionCodec> Captures => new()
    {
        { KcatCapturedBatches.None, CompressionCodec.None },
        { KcatCapturedBatches.Gzip, CompressionCodec.Gzip },
        { KcatCapturedBatches.Snappy, CompressionCodec.Snappy },
        { KcatCapturedBatches.Lz4, CompressionCodec.Lz4 },
        { KcatCapturedBatches.Zstd, CompressionCodec.Zstd },
    };

    private static string ExpectedValue(int i) => $"value number {i} " + string.Concat(Enumerable.Repeat("abcdefgh", 8));

    [Theory]
    [MemberData(nameof(Captures))]
    public void Decodes_the_batch_written_by_librdkafka(string hex, CompressionCodec codec)
    {
        var bytes = Convert.FromHexString(hex);
        var it = new RecordBatchIterator(bytes);
        Assert.True(it.MoveNext());
        var slice = it.Current;
        Assert.False(it.MoveNext());
        Assert.Equal(0, it.RemainingBytes);

        var header = slice.Header;
        Assert.Equal(codec, header.Compression);
        Assert.Equal(2, header.Magic);
        Assert.Equal(22, header.RecordCount);
        Assert.Equal(21, header.LastOffsetDelta);
        Assert.Equal(-1, header.ProducerId);
        Assert.True(slice.IsCrcValid());

        var records = RecordBatch.ReadRecords(slice.Bytes);
        Assert.Equal(22, records.Count);
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(i, records[i].Offset);
            BytesEqual(Utf8($"key{i}"), records[i].Key);
            BytesEqual(Utf8(ExpectedValue(i)), records[i].Value);
        }
        // kcat -K: sends an empty (not null) key for ":..." and an empty value for "...:".
        BytesEqual([], records[20].Key);
        BytesEqual(Utf8("empty key record"), records[20].Value);
        BytesEqual(Utf8("k-null-value"), records[21].Key);
        BytesEqual([], records[21].Value);

        foreach (var r in records)
        {
            Assert.InRange(r.Timestamp, header.BaseTimestamp, header.MaxTimestamp);
            Assert.Equal(2, r.Headers.Count);
            Assert.Equal("h1", r.Headers[0].Key);
            BytesEqual(Utf8("v1"), r.Headers[0].Value);
            Assert.Equal("h2", r.Headers[1].Key);
            BytesEqual([], r.Headers[1].Value);
        }
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Rebuilding_the_records_uncompressed_reproduces_librdkafkas_bytes(string hex, CompressionCodec codec)
    {
        // Compressed bytes depend on the compressor; the uncompressed layout must match exactly.
        _ = codec;
        var captured = Convert.FromHexString(hex);
        var header = RecordBatch.ReadHeader(captured);
        var records = RecordBatch.ReadRecords(captured);

        using var builder = new RecordBatchBuilder
        {
            BaseOffset = header.BaseOffset,
            PartitionLeaderEpoch = header.PartitionLeaderEpoch,
            ProducerId = header.ProducerId,
            ProducerEpoch = header.ProducerEpoch,
            BaseSequence = header.BaseSequence,
        };
        foreach (var r in records) builder.Append(r.Timestamp, r.Key, r.Value, r.Headers);
        var rebuilt = builder.Build();

        if (codec == CompressionCodec.None)
        {
            Assert.Equal(captured, rebuilt);
        }
        else
        {
            var rebuiltHeader = RecordBatch.ReadHeader(rebuilt);
            Assert.Equal(header with { BatchLength = 0, Crc = 0, Attributes = 0 }, rebuiltHeader with { BatchLength = 0, Crc = 0, Attributes = 0 });
        }
    }
}
