using System.Buffers.Binary;
using System.IO.Compression;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

/// <summary>One record for <see cref="TestBatch"/>; null key/value stay null on the wire.</summary>
internal sealed record TestRecord(byte[]? Key, byte[]? Value, long Timestamp);

/// <summary>Builds valid magic v2 record batches (uncompressed or gzip) for storage tests.</summary>
internal static class TestBatch
{
    public static byte[] Build(IReadOnlyList<TestRecord> records, long producerId = -1, short producerEpoch = -1, int baseSequence = -1,
        bool gzip = false, short extraAttributes = 0, long baseOffset = 0, int? lastOffsetDeltaOverride = null)
    {
        if (records.Count == 0) throw new ArgumentException("need records");
        long baseTs = records[0].Timestamp;
        long maxTs = records.Max(r => r.Timestamp);
        var body = new MemoryStream();
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            var rec = new MemoryStream();
            rec.WriteByte(0); // attributes
            WriteVarlong(rec, r.Timestamp - baseTs);
            WriteVarlong(rec, i);
            WriteBytes(rec, r.Key);
            WriteBytes(rec, r.Value);
            WriteVarlong(rec, 0); // headers
            WriteVarlong(body, rec.Length);
            rec.Position = 0;
            rec.CopyTo(body);
        }
        byte[] recordsSection = body.ToArray();
        if (gzip)
        {
            var ms = new MemoryStream();
            using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(recordsSection);
            recordsSection = ms.ToArray();
        }
        var batch = new byte[RecordBatchHeader.Size + recordsSection.Length];
        var s = batch.AsSpan();
        BinaryPrimitives.WriteInt64BigEndian(s, baseOffset);
        BinaryPrimitives.WriteInt32BigEndian(s[8..], batch.Length - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(s[12..], -1);
        s[16] = 2;
        short attributes = (short)((ushort)extraAttributes | (gzip ? 1 : 0));
        BinaryPrimitives.WriteInt16BigEndian(s[21..], attributes);
        BinaryPrimitives.WriteInt32BigEndian(s[23..], lastOffsetDeltaOverride ?? records.Count - 1);
        BinaryPrimitives.WriteInt64BigEndian(s[27..], baseTs);
        BinaryPrimitives.WriteInt64BigEndian(s[35..], maxTs);
        BinaryPrimitives.WriteInt64BigEndian(s[43..], producerId);
        BinaryPrimitives.WriteInt16BigEndian(s[51..], producerEpoch);
        BinaryPrimitives.WriteInt32BigEndian(s[53..], baseSequence);
        BinaryPrimitives.WriteInt32BigEndian(s[57..], records.Count);
        recordsSection.CopyTo(s[61..]);
        FixCrc(batch);
        return batch;
    }

    /// <summary>A batch of <paramref name="count"/> records with values of <paramref name="valueSize"/> bytes, timestamps ts, ts+1, ...</summary>
    public static byte[] Simple(int count, long timestamp = 1_700_000_000_000, int valueSize = 16, long producerId = -1,
        short producerEpoch = -1, int baseSequence = -1, byte fill = 0x61)
    {
        var recs = new List<TestRecord>(count);
        for (int i = 0; i < count; i++)
        {
            var v = new byte[valueSize];
            Array.Fill(v, (byte)(fill + i % 20));
            recs.Add(new TestRecord(i % 2 == 0 ? null : [(byte)i], v, timestamp + i));
        }
        return Build(recs, producerId, producerEpoch, baseSequence);
    }

    public static void FixCrc(Span<byte> batch) =>
        BinaryPrimitives.WriteUInt32BigEndian(batch[17..], Crc32C.Compute(batch[21..]));

    private static void WriteBytes(Stream s, byte[]? b)
    {
        if (b is null) { WriteVarlong(s, -1); return; }
        WriteVarlong(s, b.Length);
        s.Write(b);
    }

    private static void WriteVarlong(Stream s, long v)
    {
        Span<byte> buf = stackalloc byte[10];
        int n = Varint.WriteUnsigned(buf, Varint.ZigZag(v));
        s.Write(buf[..n]);
    }

    /// <summary>Splits fetched bytes into (baseOffset, lastOffset, bytes) per batch, checking every CRC.</summary>
    public static List<(long Base, long Last, byte[] Bytes)> Split(ReadOnlySpan<byte> data, bool allowPartialTail = false)
    {
        var list = new List<(long, long, byte[])>();
        int pos = 0;
        while (pos < data.Length)
        {
            Assert.True(RecordBatchHeader.TryRead(data[pos..], out var h) || allowPartialTail, "header");
            if (pos + h.TotalSize > data.Length)
            {
                Assert.True(allowPartialTail, "partial batch");
                break;
            }
            var bytes = data.Slice(pos, h.TotalSize);
            Assert.True(RecordBatchHeader.IsCrcValid(bytes), $"CRC of batch at {pos}");
            list.Add((h.BaseOffset, h.LastOffset, bytes.ToArray()));
            pos += h.TotalSize;
        }
        return list;
    }

    public static byte[] Bytes(this RecordsPayload payload)
    {
        var b = new byte[payload.Length];
        payload.CopyTo(b);
        return b;
    }

    /// <summary>The batch as stored: original bytes with the assigned base offset.</summary>
    public static byte[] WithBaseOffset(byte[] batch, long baseOffset)
    {
        var copy = (byte[])batch.Clone();
        BinaryPrimitives.WriteInt64BigEndian(copy, baseOffset);
        return copy;
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
    public void Advance(TimeSpan by) => Now += by;
    public long NowMs => Now.ToUnixTimeMilliseconds();
}

/// <summary>A temp directory removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cairn-storage-" + Guid.NewGuid().ToString("N"));
    public TempDir() => Directory.CreateDirectory(Path);
    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
