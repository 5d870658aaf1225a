using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;

namespace Cairn.Protocol.Schema;

/// <summary>How one value type travels on the wire, for a given version and encoding (flexible or not).</summary>
internal abstract class ValueCodec<T>
{
    public abstract T Read(KafkaReader r, short version, bool flexible);
    public abstract void Write(KafkaWriter w, T value, short version, bool flexible, bool nullable);
    /// <summary>Whether a tagged field holding this value can be left out (it equals the field's default).</summary>
    public virtual bool IsDefault(T value, T defaultValue) => EqualityComparer<T>.Default.Equals(value, defaultValue);
}

/// <summary>A fixed-width value with the same encoding in every version (integers, booleans, floats, UUIDs).</summary>
internal sealed class PrimitiveCodec<T>(Func<KafkaReader, T> read, Action<KafkaWriter, T> write) : ValueCodec<T>
{
    public override T Read(KafkaReader r, short v, bool f) => read(r);
    public override void Write(KafkaWriter w, T value, short v, bool f, bool n) => write(w, value);
}

internal sealed class StringCodec : ValueCodec<string?>
{
    public override string? Read(KafkaReader r, short v, bool f) => r.ReadString(f);
    // A null in a version where the field is not nullable is sent as empty rather than failing the whole response.
    public override void Write(KafkaWriter w, string? value, short v, bool f, bool nullable) => w.WriteString(value ?? (nullable ? null : ""), f);
}

internal sealed class BytesCodec : ValueCodec<byte[]?>
{
    public override byte[]? Read(KafkaReader r, short v, bool f) => r.ReadBytes(f)?.ToArray();

    public override void Write(KafkaWriter w, byte[]? value, short v, bool f, bool nullable)
    {
        if (value is null && nullable) w.WriteLength(-1, f, wide: true);
        else w.WriteBytes(value ?? [], f);
    }

    public override bool IsDefault(byte[]? value, byte[]? defaultValue) =>
        value is null ? defaultValue is null : defaultValue is not null && value.AsSpan().SequenceEqual(defaultValue);
}

/// <summary>Record data: read as a slice of the frame (no copy); written by copying straight from its source.</summary>
internal sealed class RecordsCodec : ValueCodec<RecordsPayload?>
{
    public override RecordsPayload? Read(KafkaReader r, short v, bool f)
    {
        int len = r.ReadLength(f, wide: true);
        return len < 0 ? null : new MemoryRecords(r.TakeMemory(len));
    }

    public override void Write(KafkaWriter w, RecordsPayload? value, short v, bool f, bool nullable)
    {
        if (value is null)
        {
            w.WriteLength(nullable ? -1 : 0, f, wide: true);
            return;
        }
        int len = value.Length;
        w.WriteLength(len, f, wide: true);
        try
        {
            value.CopyTo(w.Advance(len));
        }
        catch (Exception e)
        {
            throw new RecordsUnreadableException(value, e);
        }
    }
}

internal sealed class ArrayCodec<TElem>(ValueCodec<TElem> element) : ValueCodec<List<TElem>?>
{
    public override List<TElem>? Read(KafkaReader r, short v, bool f)
    {
        int count = r.ReadLength(f, wide: true);
        if (count < 0) return null;
        // Each element takes at least one byte, so a count beyond the remaining bytes is malformed, not a huge allocation.
        if (count > r.Remaining) throw new MalformedMessageException($"array of {count} elements with {r.Remaining} bytes left");
        var list = new List<TElem>(count);
        for (int i = 0; i < count; i++) list.Add(element.Read(r, v, f) ?? throw new NullElementException());
        return list;
    }

    public override void Write(KafkaWriter w, List<TElem>? value, short v, bool f, bool nullable)
    {
        if (value is null)
        {
            w.WriteLength(nullable ? -1 : 0, f, wide: true);
            return;
        }
        w.WriteLength(value.Count, f, wide: true);
        foreach (var item in value) element.Write(w, item, v, f, w.KeepsForbiddenNulls);
    }

    public override bool IsDefault(List<TElem>? value, List<TElem>? defaultValue) =>
        value is null ? defaultValue is null : defaultValue is not null && value.Count == 0 && defaultValue.Count == 0;
}

/// <summary>A nested struct in a version where it cannot be null.</summary>
internal sealed class NestedStructCodec<T>(StructCodec<T> codec) : ValueCodec<T?> where T : class, new()
{
    public override T? Read(KafkaReader r, short v, bool f) => codec.Read(r, v, f);

    public override void Write(KafkaWriter w, T? value, short v, bool f, bool nullable) =>
        codec.Write(w, value ?? new T(), v, f);

    public override bool IsDefault(T? value, T? defaultValue) => value is null;
}

/// <summary>A nested struct in a version where it may be null: an int8 presence marker (-1 null, 1 present) comes first.</summary>
internal sealed class NullableStructCodec<T>(StructCodec<T> codec) : ValueCodec<T?> where T : class, new()
{
    public override T? Read(KafkaReader r, short v, bool f) => r.ReadInt8() < 0 ? null : codec.Read(r, v, f);

    public override void Write(KafkaWriter w, T? value, short v, bool f, bool nullable)
    {
        if (value is null) { w.WriteInt8(-1); return; }
        w.WriteInt8(1);
        codec.Write(w, value, v, f);
    }

    public override bool IsDefault(T? value, T? defaultValue) => value is null;
}

/// <summary>An element of an array is null: Kafka arrays never hold nulls. The field holding the array names it.</summary>
internal sealed class NullElementException() : MalformedMessageException("array element is null");
