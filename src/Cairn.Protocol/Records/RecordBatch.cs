using System.Text;
using Cairn.Protocol.Compression;

namespace Cairn.Protocol.Records;

/// <summary>Decoding of the records inside one v2 batch.</summary>
public static class RecordBatch
{
    /// <summary>
    /// Reads and checks the header of one batch: magic 2, a batchLength that fits in
    /// <paramref name="batch"/>, and (when asked) the CRC-32C. Extra bytes after the batch are ignored.
    /// </summary>
    public static RecordBatchHeader ReadHeader(ReadOnlySpan<byte> batch, bool verifyCrc = true)
    {
        if (!RecordBatchIterator.TryReadBatch(batch, 0, out var header))
            throw new CorruptRecordException(batch.Length < RecordBatchHeader.Size
                ? $"record batch of {batch.Length} bytes is shorter than the {RecordBatchHeader.Size}-byte header"
                : $"record batch declares {header.TotalSize} bytes but only {batch.Length} are present");
        if (verifyCrc && !RecordBatchHeader.IsCrcValid(batch[..header.TotalSize]))
            throw new CorruptRecordException(
                $"record batch at offset {header.BaseOffset} failed its CRC-32C check (stored 0x{header.Crc:X8}, computed 0x{Primitives.Crc32C.Compute(batch[RecordBatchHeader.AttributesOffset..header.TotalSize]):X8})");
        if (header.RecordCount < 0)
            throw new CorruptRecordException($"record batch declares {header.RecordCount} records");
        return header;
    }

    /// <summary>
    /// The records section of <paramref name="batch"/>, uncompressed: a slice of the batch itself when the
    /// batch is not compressed, otherwise <paramref name="scratch"/>'s contents (reset first), valid until
    /// the scratch buffer is next used. Reusing one scratch buffer makes decoding allocation-free.
    /// </summary>
    public static ReadOnlyMemory<byte> GetRecordsSection(ReadOnlyMemory<byte> batch, PooledBufferWriter scratch,
        out RecordBatchHeader header, bool verifyCrc = true)
    {
        header = ReadHeader(batch.Span, verifyCrc);
        var compressed = batch[RecordBatchHeader.Size..header.TotalSize];
        if (header.Compression == CompressionCodec.None) return compressed;
        scratch.Reset();
        Decompress(header, compressed.Span, scratch);
        return scratch.WrittenMemory;
    }

    /// <summary>
    /// Decodes every record of one batch. Key, value and header values are slices of
    /// <paramref name="batch"/> when it is uncompressed, or of one array holding the decompressed section.
    /// </summary>
    /// <exception cref="CorruptRecordException">CRC mismatch, bad structure or undecodable compression.</exception>
    /// <exception cref="UnsupportedRecordFormatException">Magic other than 2.</exception>
    public static List<Record> ReadRecords(ReadOnlyMemory<byte> batch, bool verifyCrc = true)
    {
        var header = ReadHeader(batch.Span, verifyCrc);
        ReadOnlyMemory<byte> section;
        if (header.Compression == CompressionCodec.None)
        {
            section = batch[RecordBatchHeader.Size..header.TotalSize];
        }
        else
        {
            var compressed = batch.Span[RecordBatchHeader.Size..header.TotalSize];
            using var scratch = new PooledBufferWriter(CompressionCodecs.DecompressedSizeHint(compressed.Length));
            Decompress(header, compressed, scratch);
            // The records keep slices of the section, so it moves from the pool into one owned array.
            section = scratch.WrittenSpan.ToArray();
        }

        var records = new List<Record>(Math.Min(header.RecordCount, section.Length / RecordParser.MinRecordSize));
        ReadRecords(header, section, records);
        return records;
    }

    /// <summary>Decodes the records of an uncompressed records section into <paramref name="into"/>.</summary>
    public static void ReadRecords(in RecordBatchHeader header, ReadOnlyMemory<byte> recordsSection, List<Record> into)
    {
        var span = recordsSection.Span;
        var e = new RecordEnumerator(header, span);
        while (e.MoveNext())
        {
            var view = e.Current;
            var f = view.Fields;
            into.Add(new Record(
                view.Offset,
                view.Timestamp,
                // Typed null: a bare `null` here would convert through byte[] into an empty, non-null memory.
                f.KeyLength >= 0 ? recordsSection.Slice(f.KeyStart, f.KeyLength) : default(ReadOnlyMemory<byte>?),
                f.ValueLength >= 0 ? recordsSection.Slice(f.ValueStart, f.ValueLength) : default(ReadOnlyMemory<byte>?),
                ReadHeaders(recordsSection, f),
                f.Attributes));
        }
    }

    /// <summary>
    /// Checks one batch end to end (CRC, header, every record's structure, the record count),
    /// decompressing into <paramref name="scratch"/> when needed, and returns its header.
    /// </summary>
    public static RecordBatchHeader Validate(ReadOnlyMemory<byte> batch, PooledBufferWriter scratch)
    {
        var section = GetRecordsSection(batch, scratch, out var header);
        var e = new RecordEnumerator(header, section.Span);
        while (e.MoveNext()) { }
        return header;
    }

    private static IReadOnlyList<RecordHeader> ReadHeaders(ReadOnlyMemory<byte> section, in RecordFields f)
    {
        if (f.HeaderCount == 0) return Array.Empty<RecordHeader>();
        var span = section.Span;
        var headers = new RecordHeader[f.HeaderCount];
        int pos = f.HeadersStart;
        for (int i = 0; i < headers.Length; i++)
        {
            RecordParser.ReadHeader(span, ref pos, f.End, out int ks, out int kl, out int vs, out int vl);
            headers[i] = new RecordHeader(Encoding.UTF8.GetString(span.Slice(ks, kl)), vl >= 0 ? section.Slice(vs, vl) : default(ReadOnlyMemory<byte>?));
        }
        return headers;
    }

    private static void Decompress(in RecordBatchHeader header, ReadOnlySpan<byte> compressed, PooledBufferWriter destination)
    {
        if (!CompressionCodecs.IsDefined(header.Compression))
            throw new CorruptRecordException($"record batch at offset {header.BaseOffset} uses unknown compression codec id {(int)header.Compression}");
        try
        {
            CompressionCodecs.Get(header.Compression).Decompress(compressed, destination);
        }
        catch (CompressionException e)
        {
            throw new CorruptRecordException($"record batch at offset {header.BaseOffset}: {e.Message}", e);
        }
    }
}
