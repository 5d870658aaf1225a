using System.Collections.Concurrent;
using System.Reflection;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;

namespace Cairn.Protocol.Schema;

internal interface IFieldCodec<in TOwner>
{
    string Name { get; }
    VersionRange Versions { get; }
    int Tag { get; }
    VersionRange TaggedVersions { get; }
    void Read(KafkaReader r, TOwner owner, short version, bool flexible);
    void Write(KafkaWriter w, TOwner owner, short version, bool flexible);
    bool IsDefault(TOwner owner);
}

internal sealed class FieldCodec<TOwner, TValue>(
    PropertyInfo property, KafkaFieldAttribute declaration, ValueCodec<TValue> codec, ValueCodec<TValue>? nullableCodec, TValue defaultValue)
    : IFieldCodec<TOwner>
{
    private readonly Func<TOwner, TValue> _get = property.GetGetMethod()!.CreateDelegate<Func<TOwner, TValue>>();
    private readonly Action<TOwner, TValue> _set = property.GetSetMethod()!.CreateDelegate<Action<TOwner, TValue>>();
    private readonly VersionRange _nullable = VersionRange.Parse(declaration.Nullable);

    public string Name => property.Name;
    public VersionRange Versions => declaration.Versions;
    public int Tag => declaration.Tag;
    public VersionRange TaggedVersions { get; } = VersionRange.Parse(declaration.Tagged);

    private ValueCodec<TValue> CodecFor(short version) =>
        nullableCodec is not null && _nullable.Contains(version) ? nullableCodec : codec;

    public void Read(KafkaReader r, TOwner owner, short version, bool flexible)
    {
        TValue value;
        try
        {
            value = CodecFor(version).Read(r, version, flexible);
        }
        catch (NullElementException)
        {
            throw new NullFieldException(typeof(TOwner), Name + "[]", version);
        }
        // Length -1 in a field Kafka declares non-nullable: handlers rely on the declarations, so such a message is
        // malformed here rather than a NullReferenceException deep in a handler (Kafka's generated readers do the same).
        if (value is null && !_nullable.Contains(version)) throw new NullFieldException(typeof(TOwner), Name, version);
        _set(owner, value);
    }

    public void Write(KafkaWriter w, TOwner owner, short version, bool flexible) =>
        CodecFor(version).Write(w, _get(owner), version, flexible, _nullable.Contains(version) || w.KeepsForbiddenNulls);

    public bool IsDefault(TOwner owner) => codec.IsDefault(_get(owner), defaultValue);
}

/// <summary>
/// Encodes and decodes one declared struct (a message or a nested struct). The field list for each
/// version is derived once from the declarations and cached.
/// </summary>
internal sealed class StructCodec<T> where T : class, new()
{
    private sealed record Plan(IFieldCodec<T>[] Regular, IFieldCodec<T>[] Tagged);

    private readonly IFieldCodec<T>[] _fields;
    private readonly Plan?[] _plans = new Plan?[64];

    public StructCodec(IFieldCodec<T>[] fields) => _fields = fields;

    private Plan PlanFor(short version, bool flexible)
    {
        int slot = version * 2 + (flexible ? 1 : 0);
        if ((uint)slot < (uint)_plans.Length && _plans[slot] is { } cached) return cached;
        var regular = new List<IFieldCodec<T>>();
        var tagged = new List<IFieldCodec<T>>();
        foreach (var f in _fields)
        {
            if (flexible && f.Tag >= 0 && f.TaggedVersions.Contains(version)) tagged.Add(f);
            else if (f.Versions.Contains(version) && !(f.Tag >= 0 && f.TaggedVersions.Contains(version))) regular.Add(f);
        }
        var plan = new Plan(regular.ToArray(), tagged.OrderBy(f => f.Tag).ToArray());
        if ((uint)slot < (uint)_plans.Length) _plans[slot] = plan;
        return plan;
    }

    public T Read(KafkaReader r, short version, bool flexible)
    {
        var value = new T();
        var plan = PlanFor(version, flexible);
        foreach (var f in plan.Regular) f.Read(r, value, version, flexible);
        if (flexible) ReadTaggedFields(r, value, plan, version);
        return value;
    }

    private static void ReadTaggedFields(KafkaReader r, T value, Plan plan, short version)
    {
        uint count = r.ReadUnsignedVarint();
        for (uint i = 0; i < count; i++)
        {
            int tag = (int)r.ReadUnsignedVarint();
            int size = (int)r.ReadUnsignedVarint();
            var field = Array.Find(plan.Tagged, f => f.Tag == tag);
            if (field is null)
            {
                r.Skip(size); // unknown tags are skipped, as the protocol requires
                continue;
            }
            int end = r.Position + size;
            field.Read(r, value, version, true);
            if (r.Position != end) throw new MalformedMessageException($"tagged field {field.Name} declared {size} bytes");
        }
    }

    public void Write(KafkaWriter w, T value, short version, bool flexible)
    {
        var plan = PlanFor(version, flexible);
        foreach (var f in plan.Regular) f.Write(w, value, version, flexible);
        if (!flexible) return;
        int present = 0;
        foreach (var f in plan.Tagged) if (!f.IsDefault(value)) present++;
        w.WriteUnsignedVarint((uint)present);
        if (present == 0) return;
        using var scratch = new KafkaWriter();
        foreach (var f in plan.Tagged)
        {
            if (f.IsDefault(value)) continue;
            scratch.Reset();
            f.Write(scratch, value, version, true);
            w.WriteUnsignedVarint((uint)f.Tag);
            w.WriteUnsignedVarint((uint)scratch.Position);
            w.WriteRaw(scratch.WrittenSpan);
        }
    }
}

/// <summary>Builds codecs from the declarations by reflection, once per type.</summary>
internal static class CodecFactory
{
    private static readonly ConcurrentDictionary<Type, object> StructCodecs = new();

    public static StructCodec<T> Struct<T>() where T : class, new() => (StructCodec<T>)StructFor(typeof(T));

    private static object StructFor(Type type)
    {
        if (StructCodecs.TryGetValue(type, out var existing)) return existing;
        var method = typeof(CodecFactory).GetMethod(nameof(BuildStruct), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(type);
        var codec = method.Invoke(null, null)!;
        return StructCodecs.GetOrAdd(type, codec);
    }

    private static StructCodec<T> BuildStruct<T>() where T : class, new()
    {
        var defaults = new T();
        var fields = typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (Property: p, Attribute: p.GetCustomAttribute<KafkaFieldAttribute>()))
            .Where(x => x.Attribute is not null)
            .OrderBy(x => x.Attribute!.Order)
            .Select(x => BuildField<T>(x.Property, x.Attribute!, defaults))
            .ToArray();
        return new StructCodec<T>(fields);
    }

    private static IFieldCodec<T> BuildField<T>(PropertyInfo property, KafkaFieldAttribute attribute, T defaults)
    {
        var valueType = property.PropertyType;
        var codec = ValueCodecFor(valueType);
        object? nullableCodec = IsStruct(valueType)
            ? Activator.CreateInstance(typeof(NullableStructCodec<>).MakeGenericType(valueType), StructFor(valueType))
            : null;
        var fieldType = typeof(FieldCodec<,>).MakeGenericType(typeof(T), valueType);
        return (IFieldCodec<T>)Activator.CreateInstance(fieldType, property, attribute, codec, nullableCodec, property.GetValue(defaults))!;
    }

    private static bool IsStruct(Type t) =>
        t.IsClass && t != typeof(string) && t != typeof(byte[]) && !typeof(RecordsPayload).IsAssignableFrom(t) &&
        !(t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>));

    private static object ValueCodecFor(Type t)
    {
        if (t == typeof(bool)) return new PrimitiveCodec<bool>(r => r.ReadBool(), (w, x) => w.WriteBool(x));
        if (t == typeof(sbyte)) return new PrimitiveCodec<sbyte>(r => r.ReadInt8(), (w, x) => w.WriteInt8(x));
        if (t == typeof(short)) return new PrimitiveCodec<short>(r => r.ReadInt16(), (w, x) => w.WriteInt16(x));
        if (t == typeof(ushort)) return new PrimitiveCodec<ushort>(r => r.ReadUInt16(), (w, x) => w.WriteUInt16(x));
        if (t == typeof(int)) return new PrimitiveCodec<int>(r => r.ReadInt32(), (w, x) => w.WriteInt32(x));
        if (t == typeof(uint)) return new PrimitiveCodec<uint>(r => r.ReadUInt32(), (w, x) => w.WriteUInt32(x));
        if (t == typeof(long)) return new PrimitiveCodec<long>(r => r.ReadInt64(), (w, x) => w.WriteInt64(x));
        if (t == typeof(double)) return new PrimitiveCodec<double>(r => r.ReadFloat64(), (w, x) => w.WriteFloat64(x));
        if (t == typeof(Guid)) return new PrimitiveCodec<Guid>(r => r.ReadUuid(), (w, x) => w.WriteUuid(x));
        if (t == typeof(string)) return new StringCodec();
        if (t == typeof(byte[])) return new BytesCodec();
        if (t == typeof(RecordsPayload)) return new RecordsCodec();
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
        {
            var element = t.GetGenericArguments()[0];
            return Activator.CreateInstance(typeof(ArrayCodec<>).MakeGenericType(element), ValueCodecFor(element))!;
        }
        if (IsStruct(t))
            return Activator.CreateInstance(typeof(NestedStructCodec<>).MakeGenericType(t), StructFor(t))!;
        throw new NotSupportedException($"no wire encoding for {t}");
    }
}
