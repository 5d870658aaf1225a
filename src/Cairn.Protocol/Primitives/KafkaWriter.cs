using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Cairn.Protocol.Primitives;

/// <summary>
/// Writes Kafka wire primitives into a growable buffer rented from the shared pool.
/// Dispose returns the buffer; <see cref="WrittenMemory"/> is valid until then.
/// </summary>
public sealed class KafkaWriter : IDisposable
{
    private byte[] _buffer;
    public int Position { get; private set; }

    public KafkaWriter(int initialCapacity = 256) => _buffer = ArrayPool<byte>.Shared.Rent(initialCapacity);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, Position);
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, Position);

    /// <summary>Forgets what was written but keeps the buffer, for reuse across messages.</summary>
    public void Reset() => Position = 0;

    /// <summary>Reserves <paramref name="count"/> bytes for the caller to fill and returns them.</summary>
    public Span<byte> Advance(int count)
    {
        Ensure(count);
        var span = _buffer.AsSpan(Position, count);
        Position += count;
        return span;
    }

    /// <summary>Writes into an earlier position (for length prefixes known only afterwards).</summary>
    public void PatchInt32(int position, int value) => BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(position, 4), value);

    private void Ensure(int count)
    {
        if (Position + count <= _buffer.Length) return;
        int size = Math.Max(_buffer.Length * 2, Position + count);
        var next = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, Position).CopyTo(next);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = next;
    }

    public void WriteBool(bool v) => WriteInt8(v ? (sbyte)1 : (sbyte)0);
    public void WriteInt8(sbyte v) => Advance(1)[0] = (byte)v;
    public void WriteInt16(short v) => BinaryPrimitives.WriteInt16BigEndian(Advance(2), v);
    public void WriteUInt16(ushort v) => BinaryPrimitives.WriteUInt16BigEndian(Advance(2), v);
    public void WriteInt32(int v) => BinaryPrimitives.WriteInt32BigEndian(Advance(4), v);
    public void WriteUInt32(uint v) => BinaryPrimitives.WriteUInt32BigEndian(Advance(4), v);
    public void WriteInt64(long v) => BinaryPrimitives.WriteInt64BigEndian(Advance(8), v);
    public void WriteFloat64(double v) => BinaryPrimitives.WriteDoubleBigEndian(Advance(8), v);
    public void WriteUuid(Guid v) => v.TryWriteBytes(Advance(16), bigEndian: true, out _);

    public void WriteUnsignedVarint(uint v)
    {
        Ensure(5);
        Position += Varint.WriteUnsigned(_buffer.AsSpan(Position), v);
    }

    public void WriteVarint(int v) => WriteUnsignedVarint(Varint.ZigZag(v));

    public void WriteVarlong(long v)
    {
        Ensure(10);
        Position += Varint.WriteUnsigned(_buffer.AsSpan(Position), Varint.ZigZag(v));
    }

    /// <summary>
    /// Writes nulls as nulls even in fields the declarations say cannot be null (normally sent as empty). Only for
    /// building the malformed requests that tests send; a broker or client never sets it.
    /// </summary>
    internal bool KeepsForbiddenNulls { get; set; }

    /// <summary>Length of a string, bytes or array; -1 for null.</summary>
    public void WriteLength(int length, bool compact, bool wide)
    {
        if (compact) WriteUnsignedVarint((uint)(length + 1));
        else if (wide) WriteInt32(length);
        else WriteInt16(checked((short)length));
    }

    public void WriteString(string? v, bool compact)
    {
        if (v is null) { WriteLength(-1, compact, wide: false); return; }
        int len = Encoding.UTF8.GetByteCount(v);
        WriteLength(len, compact, wide: false);
        Encoding.UTF8.GetBytes(v, Advance(len));
    }

    public void WriteBytes(ReadOnlySpan<byte> v, bool compact)
    {
        WriteLength(v.Length, compact, wide: true);
        v.CopyTo(Advance(v.Length));
    }

    public void WriteRaw(ReadOnlySpan<byte> v) => v.CopyTo(Advance(v.Length));

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        Position = 0;
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}
