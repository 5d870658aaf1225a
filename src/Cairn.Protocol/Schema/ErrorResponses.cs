using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using Cairn.Protocol.Records;

namespace Cairn.Protocol.Schema;

/// <summary>
/// The response that reports one failure for every part of a request: what Apache Kafka's
/// <c>AbstractRequest.getErrorResponse</c> builds by hand for each API, derived here from the declarations.
/// Lists and keys marked <see cref="EchoesAttribute"/> repeat the request (topics, partitions, groups, resources);
/// every <c>ErrorCode</c> field holds the error; every int64 field is -1 (in Kafka responses these are offsets and
/// timestamps, for which -1 means unknown, as in Kafka's own error responses); records are empty rather than null
/// (librdkafka rejects a negative records size). Everything else keeps its declared default.
/// Only failures take this path, so plain reflection is good enough.
/// </summary>
public static class ErrorResponses
{
    private sealed record Field(PropertyInfo Property, KafkaFieldAttribute Wire, IReadOnlyList<string>? Echoes);

    private static readonly ConcurrentDictionary<Type, Field[]> Declared = new();

    /// <summary>The response to <paramref name="request"/> (decoded in <paramref name="version"/>) with <paramref name="error"/> everywhere.</summary>
    public static TResponse For<TRequest, TResponse>(TRequest request, short version, ErrorCode error)
        where TRequest : class, new()
        where TResponse : class, new()
    {
        var response = new TResponse();
        Fill(response, request, version, (short)error);
        return response;
    }

    /// <summary>
    /// Marks the part of <paramref name="message"/> that carries <paramref name="records"/> (a partition of a fetch
    /// response) as failed with <paramref name="error"/>, with empty records; false when the message does not carry them.
    /// </summary>
    public static bool FailPartHolding(object message, RecordsPayload records, ErrorCode error)
    {
        var fields = FieldsOf(message.GetType());
        foreach (var f in fields)
        {
            var value = f.Property.GetValue(message);
            if (value is null) continue;
            if (ReferenceEquals(value, records))
            {
                foreach (var g in fields) SetFailureValue(message, g, (short)error);
                return true;
            }
            if (IsStructList(f.Property.PropertyType))
            {
                foreach (var item in (IList)value)
                    if (item is not null && FailPartHolding(item, records, error)) return true;
            }
            else if (IsStruct(f.Property.PropertyType) && FailPartHolding(value, records, error)) return true;
        }
        return false;
    }

    /// <summary>
    /// Checks that every <see cref="EchoesAttribute"/> of <paramref name="response"/> names a field of <paramref name="request"/>
    /// of the same shape; run when handlers are registered, so a misspelt name fails at start-up rather than at the first failure.
    /// </summary>
    public static void Validate(Type request, Type response)
    {
        bool plain = !IsStruct(request);
        foreach (var f in FieldsOf(response))
        {
            if (f.Echoes is null) continue;
            // Mirroring a list of plain values, only "*" can apply; fields without it keep their failure value.
            bool resolved = plain && !f.Echoes.Contains(EchoesAttribute.Element);
            foreach (var name in f.Echoes)
            {
                if (name == EchoesAttribute.Element)
                {
                    if (!plain) continue;
                    if (f.Property.PropertyType != request)
                        throw new InvalidOperationException($"{response.Name}.{f.Property.Name} echoes elements of type {request.Name}");
                    resolved = true;
                    continue;
                }
                var source = Array.Find(FieldsOf(request), s => s.Property.Name == name);
                if (source is null) continue;
                resolved = true;
                var (sourceType, targetType) = (source.Property.PropertyType, f.Property.PropertyType);
                if (IsStructList(targetType))
                {
                    if (!IsList(sourceType))
                        throw new InvalidOperationException($"{response.Name}.{f.Property.Name} is a list but echoes {request.Name}.{name}, which is not");
                    Validate(ElementType(sourceType), ElementType(targetType));
                }
                else if (sourceType != targetType)
                {
                    throw new InvalidOperationException($"{response.Name}.{f.Property.Name} ({targetType.Name}) echoes {request.Name}.{name} ({sourceType.Name})");
                }
            }
            if (!resolved)
                throw new InvalidOperationException($"{response.Name}.{f.Property.Name} echoes {string.Join(" or ", f.Echoes)}, none of which {request.Name} declares");
        }
    }

    private static void Fill(object target, object source, short version, short error)
    {
        foreach (var f in FieldsOf(target.GetType()))
        {
            if (f.Echoes is not null && TryEcho(source, f.Echoes, version, out var echoed))
            {
                var type = f.Property.PropertyType;
                f.Property.SetValue(target, IsStructList(type) ? Mirror(type, (IEnumerable?)echoed, version, error) : echoed);
                continue;
            }
            SetFailureValue(target, f, error);
        }
    }

    private static IList Mirror(Type listType, IEnumerable? sources, short version, short error)
    {
        var list = (IList)Activator.CreateInstance(listType)!;
        if (sources is null) return list; // a null request list ("all topics") has nothing to repeat
        var elementType = ElementType(listType);
        foreach (var source in sources)
        {
            var element = Activator.CreateInstance(elementType)!;
            if (source is not null) Fill(element, source, version, error);
            list.Add(element);
        }
        return list;
    }

    private static bool TryEcho(object source, IReadOnlyList<string> names, short version, out object? value)
    {
        bool plain = !IsStruct(source.GetType());
        foreach (var name in names)
        {
            if (name == EchoesAttribute.Element)
            {
                if (!plain) continue;
                value = source;
                return true;
            }
            if (plain) continue;
            var field = Array.Find(FieldsOf(source.GetType()), s => s.Property.Name == name);
            if (field is null || !field.Wire.Versions.Contains(version)) continue;
            value = field.Property.GetValue(source);
            return true;
        }
        value = null;
        return false;
    }

    private static void SetFailureValue(object target, Field f, short error)
    {
        var type = f.Property.PropertyType;
        if (type == typeof(short) && f.Property.Name == "ErrorCode") f.Property.SetValue(target, error);
        else if (type == typeof(long)) f.Property.SetValue(target, -1L);
        else if (type == typeof(RecordsPayload)) f.Property.SetValue(target, RecordsPayload.Empty);
    }

    private static Field[] FieldsOf(Type type) => Declared.GetOrAdd(type, static t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Select(p => (Property: p, Wire: p.GetCustomAttribute<KafkaFieldAttribute>()))
        .Where(x => x.Wire is not null)
        .Select(x => new Field(x.Property, x.Wire!, x.Property.GetCustomAttribute<EchoesAttribute>()?.RequestFields))
        .ToArray());

    private static bool IsStruct(Type type) => type.IsClass && FieldsOf(type).Length > 0;

    private static bool IsList(Type type) => type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>);

    private static Type ElementType(Type listType) => listType.GetGenericArguments()[0];

    private static bool IsStructList(Type type) => IsList(type) && IsStruct(ElementType(type));
}
