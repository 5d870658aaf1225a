using System.Reflection;
using Cairn.Protocol.Primitives;

namespace Cairn.Protocol.Schema;

/// <summary>What the declarations say about one message type.</summary>
public sealed record MessageDescriptor(ApiKey ApiKey, MessageKind Kind, VersionRange Versions, VersionRange FlexibleVersions, Type Type)
{
    public bool IsFlexible(short version) => FlexibleVersions.Contains(version);
}

/// <summary>All declared messages of this assembly, found once by their <see cref="KafkaMessageAttribute"/>.</summary>
public static class MessageCatalog
{
    private static readonly Dictionary<Type, MessageDescriptor> ByType = typeof(MessageCatalog).Assembly.GetTypes()
        .Select(t => (Type: t, Attribute: t.GetCustomAttribute<KafkaMessageAttribute>()))
        .Where(x => x.Attribute is not null)
        .ToDictionary(x => x.Type, x => new MessageDescriptor(
            x.Attribute!.ApiKey, x.Attribute.Kind, x.Attribute.Versions, VersionRange.Parse(x.Attribute.Flexible), x.Type));

    private static readonly Dictionary<ApiKey, MessageDescriptor> Requests =
        ByType.Values.Where(d => d.Kind == MessageKind.Request).ToDictionary(d => d.ApiKey);

    private static readonly Dictionary<ApiKey, MessageDescriptor> Responses =
        ByType.Values.Where(d => d.Kind == MessageKind.Response).ToDictionary(d => d.ApiKey);

    public static IReadOnlyCollection<MessageDescriptor> All => ByType.Values;

    public static MessageDescriptor Of<T>() => Of(typeof(T));

    public static MessageDescriptor Of(Type type) =>
        ByType.TryGetValue(type, out var d) ? d : throw new ArgumentException($"{type} is not a declared Kafka message");

    public static MessageDescriptor? Request(ApiKey key) => Requests.GetValueOrDefault(key);
    public static MessageDescriptor? Response(ApiKey key) => Responses.GetValueOrDefault(key);
}

/// <summary>Reads and writes declared messages in any of their versions.</summary>
public static class MessageSerializer
{
    public static T Read<T>(KafkaReader reader, short version) where T : class, new()
    {
        var descriptor = MessageCatalog.Of<T>();
        CheckVersion(descriptor, version);
        return CodecFactory.Struct<T>().Read(reader, version, descriptor.IsFlexible(version));
    }

    public static T Read<T>(ReadOnlyMemory<byte> bytes, short version) where T : class, new() => Read<T>(new KafkaReader(bytes), version);

    public static void Write<T>(KafkaWriter writer, T message, short version) where T : class, new()
    {
        var descriptor = MessageCatalog.Of<T>();
        CheckVersion(descriptor, version);
        CodecFactory.Struct<T>().Write(writer, message, version, descriptor.IsFlexible(version));
    }

    /// <summary>Encodes a struct that is not a message (e.g. consumer protocol metadata) with its own version, non-flexible.</summary>
    public static void WriteStruct<T>(KafkaWriter writer, T value, short version, bool flexible = false) where T : class, new() =>
        CodecFactory.Struct<T>().Write(writer, value, version, flexible);

    public static T ReadStruct<T>(KafkaReader reader, short version, bool flexible = false) where T : class, new() =>
        CodecFactory.Struct<T>().Read(reader, version, flexible);

    private static void CheckVersion(MessageDescriptor d, short version)
    {
        if (!d.Versions.Contains(version))
            throw new UnsupportedVersionException(d.ApiKey, version);
    }
}

public sealed class UnsupportedVersionException(ApiKey apiKey, short version)
    : Exception($"{apiKey} version {version} is not supported")
{
    public ApiKey ApiKey { get; } = apiKey;
    public short Version { get; } = version;
}
