namespace Cairn.Protocol.Records;

/// <summary>Positions of one record's fields within a records section (all relative to the section).</summary>
internal struct RecordFields
{
    public int End;
    public sbyte Attributes;
    public long TimestampDelta;
    public int OffsetDelta;
    public int KeyStart, KeyLength;     // KeyLength -1: null key
    public int ValueStart, ValueLength; // ValueLength -1: null value
    public int HeadersStart, HeaderCount;
}

/// <summary>
/// Decodes the record layout of magic v2: every length, delta and count is a zig-zag varint, -1 = null.
/// Throws <see cref="CorruptRecordException"/> on anything that does not fit, including a record whose
/// fields do not use exactly its declared length.
/// </summary>
internal static class RecordParser
{
    /// <summary>Smallest possible record: length, attributes, tsDelta, offsetDelta, keyLen, valueLen, headerCount.</summary>
    public const int MinRecordSize = 7;

    public static void Parse(ReadOnlySpan<byte> section, ref int pos, out RecordFields f)
    {
        f = default;
        int start = pos;
        int length = ReadVarint(section, ref pos, section.Length);
        if (length < MinRecordSize - 1 || length > section.Length - pos)
            throw new CorruptRecordException($"record at byte {start} of the records section declares length {length}, but {section.Length - pos} bytes remain");
        int bodyStart = pos;
        int end = pos + length;
        f.End = end;

        f.Attributes = (sbyte)section[pos++];
        f.TimestampDelta = ReadVarlong(section, ref pos, end);
        f.OffsetDelta = ReadVarint(section, ref pos, end);
        ReadBytesField(section, ref pos, end, "key", out f.KeyStart, out f.KeyLength);
        ReadBytesField(section, ref pos, end, "value", out f.ValueStart, out f.ValueLength);

        int headerCount = ReadVarint(section, ref pos, end);
        // Each header takes at least two bytes (its two lengths): bounds the count before anything trusts it.
        if (headerCount < 0 || headerCount > (end - pos) / 2)
            throw new CorruptRecordException($"record at byte {start} declares {headerCount} headers in {end - pos} bytes");
        f.HeaderCount = headerCount;
        f.HeadersStart = pos;
        for (int i = 0; i < headerCount; i++)
            ReadHeader(section, ref pos, end, out _, out _, out _, out _);

        if (pos != end)
            throw new CorruptRecordException($"record at byte {start} declares length {length} but its fields use {pos - bodyStart} bytes");
    }

    public static void ReadHeader(ReadOnlySpan<byte> section, ref int pos, int end,
        out int keyStart, out int keyLength, out int valueStart, out int valueLength)
    {
        ReadBytesField(section, ref pos, end, "header key", out keyStart, out keyLength);
        if (keyLength < 0) throw new CorruptRecordException("record header with a null key");
        ReadBytesField(section, ref pos, end, "header value", out valueStart, out valueLength);
    }

    private static void ReadBytesField(ReadOnlySpan<byte> section, ref int pos, int end, string what, out int start, out int length)
    {
        length = ReadVarint(section, ref pos, end);
        if (length < -1 || length > end - pos)
            throw new CorruptRecordException($"{what} length {length} at byte {pos} exceeds the {end - pos} bytes left in the record");
        start = pos;
        if (length > 0) pos += length;
    }

    public static int ReadVarint(ReadOnlySpan<byte> data, ref int pos, int end)
    {
        uint value = 0;
        for (int shift = 0; shift < 35; shift += 7)
        {
            if (pos >= end) throw new CorruptRecordException($"truncated varint at byte {pos}");
            byte b = data[pos++];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return (int)(value >> 1) ^ -(int)(value & 1);
        }
        throw new CorruptRecordException($"varint longer than 5 bytes ending at byte {pos}");
    }

    public static long ReadVarlong(ReadOnlySpan<byte> data, ref int pos, int end)
    {
        ulong value = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (pos >= end) throw new CorruptRecordException($"truncated varlong at byte {pos}");
            byte b = data[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return (long)(value >> 1) ^ -(long)(value & 1);
        }
        throw new CorruptRecordException($"varlong longer than 10 bytes ending at byte {pos}");
    }
}
