using System.Buffers.Binary;
using System.Text;

namespace Cairn.Protocol.Primitives;

/// <summary>
/// Reads Kafka wire primitives from one contiguous frame. Byte and record fields are returned as
/// slices of the frame, never copied, so the frame must outlive what is decoded from it.
/// </summary>
public sealed class KafkaReader(ReadOnlyMemory<byte> buffer)
{
    private readonly ReadOnlyMemory<byte> _buffer = buffer;
    public int Position { get; set; }
    public int Remaining => _buffer.Length - Position;
    public ReadOnlyMemory<byte> Buffer => _buffer;

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
            throw new MalformedMessageException($"need {count} bytes at {Position}, only {Remaining} left");
        var span = _buffer.Span.Slice(Position, count);
        Position += count;
        return span;
    }

    public ReadOnlyMemory<byte> TakeMemory(int count)
    {
        if (count < 0 || count > Remaining)
            throw new MalformedMessageException($"need {count} bytes at {Position}, only {Remaining} left");
        var mem = _buffer.Slice(Position, count);
        Position += count;
        return mem;
    }

    public bool ReadBool() => Take(1)[0] != 0;
    public sbyte ReadInt8() => (sbyte)Take(1)[0];
    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));
    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));
    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));
    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));
    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));
    public double ReadFloat64() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));

    public Guid ReadUuid()
    {
        // Kafka UUIDs are two big-endian longs; Guid's big-endian constructor matches that byte order.
        return new Guid(Take(16), bigEndian: true);
    }

    public uint ReadUnsignedVarint()
    {
        int n = Varint.TryReadUnsigned(_buffer.Span[Position..], out uint value);
        if (n == 0) throw new MalformedMessageException($"truncated varint at {Position}");
        Position += n;
        return value;
    }

    public int ReadVarint() => Varint.UnZigZag(ReadUnsignedVarint());

    public long ReadVarlong()
    {
        int n = Varint.TryReadUnsigned(_buffer.Span[Position..], out ulong value);
        if (n == 0) throw new MalformedMessageException($"truncated varlong at {Position}");
        Position += n;
        return Varint.UnZigZag(value);
    }

    /// <summary>Length of a string, bytes or array: -1 for null.</summary>
    public int ReadLength(bool compact, bool wide)
    {
        if (compact) return (int)ReadUnsignedVarint() - 1;
        return wide ? ReadInt32() : ReadInt16();
    }

    public string? ReadString(bool compact)
    {
        int len = ReadLength(compact, wide: false);
        if (len < 0) return null;
        return Encoding.UTF8.GetString(Take(len));
    }

    public ReadOnlyMemory<byte>? ReadBytes(bool compact)
    {
        int len = ReadLength(compact, wide: true);
        if (len < 0) return null;
        return TakeMemory(len);
    }

    public void Skip(int count) => Take(count);
}
