using Cairn.Protocol.Records;
using FsCheck;
using FsCheck.Fluent;

namespace Cairn.Tests.Records;

public class RecordBatchPropertyTests
{
    private static readonly Gen<byte[]?> NullableBytes =
        Gen.Frequency(
            (1, Gen.Constant<byte[]?>(null)),
            (1, Gen.Constant<byte[]?>([])),
            (6, Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf().Select(a => (byte[]?)a)),
            // Occasionally long enough for multi-byte length varints and several compression blocks.
            (1, Gen.Choose(100, 40_000).Select(n => (byte[]?)Enumerable.Range(0, n).Select(i => (byte)(i * 31 % 251)).ToArray())));

    private static readonly Gen<string> HeaderKey =
        Gen.Elements("", "h", "trace-id", "ключ", "🔑", "content-type");

    private static readonly Gen<(string, byte[]?)> Header =
        HeaderKey.SelectMany(_ => NullableBytes, (k, v) => (k, v));

    private static readonly Gen<long> Timestamp =
        Gen.Frequency(
            (4, Gen.Choose(-5000, 5000).Select(d => 1_700_000_000_000L + d)),
            (1, Gen.Elements(0L, -1L, long.MaxValue / 4, 1L << 40)));

    private static readonly Gen<InputRecord> RecordGen =
        from ts in Timestamp
        from key in NullableBytes
        from value in NullableBytes
        from headers in Header.ArrayOf().Resize(4)
        select new InputRecord(ts, key, value, headers);

    private static readonly Gen<(CompressionCodec, long, InputRecord[])> Batch =
        from codec in Gen.Elements(CompressionCodec.None, CompressionCodec.Gzip, CompressionCodec.Snappy, CompressionCodec.Lz4, CompressionCodec.Zstd)
        from baseOffset in Gen.Choose(0, int.MaxValue).Select(o => (long)o * 3)
        from records in RecordGen.NonEmptyListOf().Resize(30).Select(l => l.ToArray())
        select (codec, baseOffset, records);

    [Fact]
    public void Builder_then_reader_round_trips_random_records()
    {
        var property = Prop.ForAll(Batch.ToArbitrary(), input =>
        {
            var (codec, baseOffset, records) = input;
            using var builder = new RecordBatchBuilder(codec) { BaseOffset = baseOffset };
            foreach (var r in records) r.AppendTo(builder);
            var batch = builder.Build();

            var it = new RecordBatchIterator(batch);
            Assert.True(it.MoveNext());
            var header = it.Current.Header;
            Assert.False(it.MoveNext());
            Assert.Equal(codec, header.Compression);
            Assert.Equal(records.Length, header.RecordCount);
            Assert.Equal(records[0].Timestamp, header.BaseTimestamp);
            Assert.Equal(Math.Max(-1, records.Max(r => r.Timestamp)), header.MaxTimestamp);
            Assert.True(RecordBatchHeader.IsCrcValid(batch));

            var decoded = RecordBatch.ReadRecords(batch);
            Assert.Equal(records.Length, decoded.Count);
            for (int i = 0; i < records.Length; i++) RecordAssert.Matches(records[i], decoded[i], baseOffset + i);
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), property);
    }
}
