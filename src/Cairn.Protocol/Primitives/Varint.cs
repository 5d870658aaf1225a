namespace Cairn.Protocol.Primitives;

/// <summary>Unsigned and zig-zag varints as Kafka encodes them (protobuf style, little-endian groups of 7 bits).</summary>
public static class Varint
{
    public static int SizeOfUnsigned(uint value)
    {
        int size = 1;
        while (value >= 0x80) { value >>= 7; size++; }
        return size;
    }

    public static int SizeOfUnsigned(ulong value)
    {
        int size = 1;
        while (value >= 0x80) { value >>= 7; size++; }
        return size;
    }

    public static int SizeOfSigned(int value) => SizeOfUnsigned(ZigZag(value));
    public static int SizeOfSigned(long value) => SizeOfUnsigned(ZigZag(value));

    public static uint ZigZag(int value) => (uint)((value << 1) ^ (value >> 31));
    public static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));
    public static int UnZigZag(uint value) => (int)(value >> 1) ^ -(int)(value & 1);
    public static long UnZigZag(ulong value) => (long)(value >> 1) ^ -(long)(value & 1);

    public static int WriteUnsigned(Span<byte> dest, uint value)
    {
        int i = 0;
        while (value >= 0x80) { dest[i++] = (byte)(value | 0x80); value >>= 7; }
        dest[i++] = (byte)value;
        return i;
    }

    public static int WriteUnsigned(Span<byte> dest, ulong value)
    {
        int i = 0;
        while (value >= 0x80) { dest[i++] = (byte)(value | 0x80); value >>= 7; }
        dest[i++] = (byte)value;
        return i;
    }

    /// <summary>Reads an unsigned 32-bit varint; returns bytes consumed, or 0 when the input ends early.</summary>
    public static int TryReadUnsigned(ReadOnlySpan<byte> src, out uint value)
    {
        value = 0;
        int shift = 0;
        for (int i = 0; i < src.Length && i < 5; i++)
        {
            byte b = src[i];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return i + 1;
            shift += 7;
        }
        if (src.Length >= 5) throw new MalformedMessageException("varint longer than 5 bytes");
        return 0;
    }

    public static int TryReadUnsigned(ReadOnlySpan<byte> src, out ulong value)
    {
        value = 0;
        int shift = 0;
        for (int i = 0; i < src.Length && i < 10; i++)
        {
            byte b = src[i];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return i + 1;
            shift += 7;
        }
        if (src.Length >= 10) throw new MalformedMessageException("varlong longer than 10 bytes");
        return 0;
    }
}
