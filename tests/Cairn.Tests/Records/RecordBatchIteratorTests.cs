using System.Buffers.Binary;
using Cairn.Protocol.Records;
using static Cairn.Tests.Records.RecordAssert;

namespace Cairn.Tests.Records;

public class RecordBatchIteratorTests
{
    private static byte[] Batch(long baseOffset, int records, CompressionCodec codec = CompressionCodec.None)
    {
        using var builder = new RecordBatchBuilder(codec) { BaseOffset = baseOffset };
        for (int i = 0; i < records; i++) builder.Append(1000 + i, Utf8($"k{baseOffset + i}"), Utf8($"value {baseOffset + i}"));
        return builder.Build();
    }

    [Fact]
    public void Yields_each_batch_with_its_header_and_exact_bytes()
    {
        var a = Batch(0, 3);
        var b = Batch(3, 1, CompressionCodec.Gzip);
        var c = Batch(4, 5, CompressionCodec.Zstd);
        var data = a.Concat(b).Concat(c).ToArray();

        var batches = new List<RecordBatchSlice>();
        foreach (var slice in new RecordBatchIterator(data)) batches.Add(slice);

        Assert.Equal(3, batches.Count);
        Assert.Equal(a, batches[0].Bytes.ToArray());
        Assert.Equal(b, batches[1].Bytes.ToArray());
        Assert.Equal(c, batches[2].Bytes.ToArray());
        Assert.Equal(new long[] { 0, 3, 4 }, batches.Select(x => x.Header.BaseOffset));
        Assert.Equal(new long[] { 3, 4, 9 }, batches.Select(x => x.Header.NextOffset));
        Assert.Equal(CompressionCodec.Gzip, batches[1].Header.Compression);
        Assert.All(batches, x => Assert.True(x.IsCrcValid()));

        var offsets = batches.SelectMany(x => RecordBatch.ReadRecords(x.Bytes)).Select(r => r.Offset);
        Assert.Equal(Enumerable.Range(0, 9).Select(i => (long)i), offsets);
    }

    [Fact]
    public void Empty_input_yields_nothing()
    {
        var it = new RecordBatchIterator(ReadOnlyMemory<byte>.Empty);
        Assert.False(it.MoveNext());
        Assert.Equal(0, it.RemainingBytes);
    }

    [Fact]
    public void Stops_cleanly_at_a_partial_trailing_batch_wherever_it_is_cut()
    {
        var a = Batch(0, 2);
        var b = Batch(2, 2, CompressionCodec.Lz4);
        var full = a.Concat(b).ToArray();

        // Every possible cut inside the second batch, from 1 byte of it up to all but its last byte.
        for (int cut = a.Length + 1; cut < full.Length; cut++)
        {
            var it = new RecordBatchIterator(full.AsMemory(0, cut));
            Assert.True(it.MoveNext());
            Assert.Equal(a, it.Current.Bytes.ToArray());
            Assert.False(it.MoveNext());
            Assert.Equal(a.Length, it.Position);
            Assert.Equal(cut - a.Length, it.RemainingBytes);
        }
    }

    [Fact]
    public void A_lone_partial_batch_yields_nothing()
    {
        var a = Batch(0, 2);
        for (int cut = 0; cut < a.Length; cut++)
        {
            var it = new RecordBatchIterator(a.AsMemory(0, cut));
            Assert.False(it.MoveNext());
            Assert.Equal(cut, it.RemainingBytes);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void Reports_a_magic_other_than_2(sbyte magic)
    {
        var a = Batch(0, 1);
        var b = Batch(1, 1);
        b[16] = (byte)magic;
        var data = a.Concat(b).ToArray();

        var it = new RecordBatchIterator(data);
        Assert.True(it.MoveNext());
        var e = Assert.Throws<UnsupportedRecordFormatException>(() => it.MoveNext());
        Assert.Equal(magic, e.Magic);
        Assert.Equal(a.Length, e.Position);
        Assert.Contains($"magic {magic}", e.Message);
    }

    [Fact]
    public void Rejects_a_batch_length_smaller_than_the_header()
    {
        var a = Batch(0, 1);
        BinaryPrimitives.WriteInt32BigEndian(a.AsSpan(8), 48);
        var it = new RecordBatchIterator(a);
        Assert.Throws<CorruptRecordException>(() => it.MoveNext());
    }

    [Fact]
    public void A_huge_batch_length_is_a_partial_batch_not_an_overflow()
    {
        var a = Batch(0, 1);
        BinaryPrimitives.WriteInt32BigEndian(a.AsSpan(8), int.MaxValue);
        var it = new RecordBatchIterator(a);
        Assert.False(it.MoveNext());
        Assert.Equal(a.Length, it.RemainingBytes);
    }

    [Fact]
    public void TryReadBatch_reports_whether_the_batch_is_complete()
    {
        var a = Batch(7, 2);
        Assert.True(RecordBatchIterator.TryReadBatch(a, 0, out var header));
        Assert.Equal(7, header.BaseOffset);
        Assert.Equal(a.Length, header.TotalSize);
        Assert.False(RecordBatchIterator.TryReadBatch(a.AsSpan(0, a.Length - 1), 0, out _));
    }
}
