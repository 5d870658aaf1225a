using System.Collections;
using System.Reflection;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Tests.Protocol;

/// <summary>One request body with exactly one field (or one array element) null where its version forbids it.</summary>
public sealed record NullFieldCase(ApiKey ApiKey, short Version, string Struct, string Field, byte[] Body)
{
    public override string ToString() => $"{ApiKey} v{Version} {Struct}.{Field}";
}

/// <summary>
/// Generates, from the message declarations alone, every way a request can carry a forbidden null: for each request
/// message and version, every string, bytes, records or array field that is present and not nullable in that version,
/// and every element of an array of strings. The rest of the message is filled (one element per array) so that every
/// nested field is reached.
/// </summary>
public static class NullFieldFrames
{
    private const string Element = "[]";

    // A path from the message to the field made null; a null step stands for "the first element of the list".

    public static IEnumerable<NullFieldCase> For(MessageDescriptor request, short version)
    {
        foreach (var path in Targets(request.Type, version, []))
        {
            var message = Filled(request.Type, version);
            object owner = message;
            foreach (var step in path[..^1]) owner = step is null ? ((IList)owner)[0]! : step.GetValue(owner)!;
            var holder = path[^1] ?? path[^2]!;
            if (path[^1] is { } last) last.SetValue(owner, null);
            else ((IList)owner)[0] = null;
            var ownerType = holder.DeclaringType!;
            string field = path[^1] is null ? holder.Name + Element : holder.Name;
            yield return new NullFieldCase(request.ApiKey, version, StructName(ownerType), field, Encode(message, version));
        }
    }

    /// <summary>The body of <paramref name="message"/> with nulls kept wherever they are, declared nullable or not.</summary>
    public static byte[] Encode(object message, short version)
    {
        using var writer = new KafkaWriter { KeepsForbiddenNulls = true };
        typeof(MessageSerializer).GetMethod(nameof(MessageSerializer.Write))!.MakeGenericMethod(message.GetType())
            .Invoke(null, [writer, message, version]);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes a request body; the exception the decoder throws, unwrapped from reflection.</summary>
    public static object Decode(Type type, byte[] body, short version)
    {
        var read = typeof(MessageSerializer).GetMethods()
            .Single(m => m.Name == nameof(MessageSerializer.Read) && m.GetParameters()[0].ParameterType == typeof(ReadOnlyMemory<byte>))
            .MakeGenericMethod(type);
        try
        {
            return read.Invoke(null, [new ReadOnlyMemory<byte>(body), version])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }

    /// <summary>A message of <paramref name="type"/> with every field of <paramref name="version"/> set and one element in every array.</summary>
    public static object Filled(Type type, short version)
    {
        var value = Activator.CreateInstance(type)!;
        foreach (var (property, _) in Fields(type, version)) property.SetValue(value, Sample(property.PropertyType, version));
        return value;
    }

    private static object? Sample(Type t, short version)
    {
        if (t == typeof(string)) return "x";
        if (t == typeof(byte[])) return new byte[] { 1 };
        if (t == typeof(RecordsPayload)) return new MemoryRecords(ReadOnlyMemory<byte>.Empty);
        if (IsList(t))
        {
            var list = (IList)Activator.CreateInstance(t)!;
            list.Add(Sample(t.GetGenericArguments()[0], version));
            return list;
        }
        if (IsStruct(t)) return Filled(t, version);
        return Activator.CreateInstance(t);
    }

    private static IEnumerable<PropertyInfo?[]> Targets(Type type, short version, PropertyInfo?[] prefix)
    {
        foreach (var (property, declaration) in Fields(type, version))
        {
            var t = property.PropertyType;
            PropertyInfo?[] path = [.. prefix, property];
            bool nullable = VersionRange.Parse(declaration.Nullable).Contains(version);
            if (!nullable && (t == typeof(string) || t == typeof(byte[]) || t == typeof(RecordsPayload) || IsList(t))) yield return path;
            if (IsList(t))
            {
                var element = t.GetGenericArguments()[0];
                if (element == typeof(string)) yield return [.. path, null];
                else if (IsStruct(element)) foreach (var inner in Targets(element, version, [.. path, null])) yield return inner;
            }
            else if (IsStruct(t))
            {
                foreach (var inner in Targets(t, version, path)) yield return inner;
            }
        }
    }

    /// <summary>Regular (untagged) fields present in <paramref name="version"/>; tagged fields holding null are simply left out by the writer.</summary>
    private static IEnumerable<(PropertyInfo Property, KafkaFieldAttribute Declaration)> Fields(Type type, short version) =>
        type.GetProperties()
            .Select(p => (Property: p, Declaration: p.GetCustomAttribute<KafkaFieldAttribute>()!))
            .Where(x => x.Declaration is not null && x.Declaration.Versions.Contains(version) && !VersionRange.Parse(x.Declaration.Tagged).Contains(version));

    private static bool IsList(Type t) => t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>);

    private static bool IsStruct(Type t) => t.IsClass && t != typeof(string) && t != typeof(byte[]) && !typeof(RecordsPayload).IsAssignableFrom(t) && !IsList(t);

    private static string StructName(Type t) => t.DeclaringType is { } outer ? $"{StructName(outer)}.{t.Name}" : t.Name;
}
