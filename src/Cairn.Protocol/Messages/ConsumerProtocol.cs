using Cairn.Protocol.Schema;

namespace Cairn.Protocol.Messages;

/// <summary>
/// The "consumer" protocol's member metadata (JoinGroup protocol metadata). It carries its own int16
/// version in front; newer versions only append fields, so an unknown newer version is read as the newest known.
/// </summary>
public sealed class ConsumerProtocolSubscription
{
    public const short MaxVersion = 3;

    [KafkaField("0+")] public List<string> Topics { get; set; } = [];
    [KafkaField("0+", Nullable = "0+")] public byte[]? UserData { get; set; }
    [KafkaField("1+")] public List<TopicPartitions> OwnedPartitions { get; set; } = [];
    [KafkaField("2+")] public int GenerationId { get; set; } = -1;
    [KafkaField("3+", Nullable = "3+")] public string? RackId { get; set; }

    public sealed class TopicPartitions
    {
        [KafkaField("0+")] public string Topic { get; set; } = "";
        [KafkaField("0+")] public List<int> Partitions { get; set; } = [];
    }
}

/// <summary>The "consumer" protocol's assignment (SyncGroup assignment bytes), also prefixed by an int16 version.</summary>
public sealed class ConsumerProtocolAssignment
{
    public const short MaxVersion = 3;

    [KafkaField("0+")] public List<ConsumerProtocolSubscription.TopicPartitions> AssignedPartitions { get; set; } = [];
    [KafkaField("0+", Nullable = "0+")] public byte[]? UserData { get; set; }
}

/// <summary>Reads and writes the version-prefixed consumer protocol blobs.</summary>
public static class ConsumerProtocol
{
    public static ConsumerProtocolSubscription ReadSubscription(ReadOnlyMemory<byte> bytes) =>
        ReadVersioned<ConsumerProtocolSubscription>(bytes, ConsumerProtocolSubscription.MaxVersion);

    public static ConsumerProtocolAssignment ReadAssignment(ReadOnlyMemory<byte> bytes) =>
        ReadVersioned<ConsumerProtocolAssignment>(bytes, ConsumerProtocolAssignment.MaxVersion);

    public static byte[] Write(ConsumerProtocolSubscription value, short version = ConsumerProtocolSubscription.MaxVersion) => WriteVersioned(value, version);
    public static byte[] Write(ConsumerProtocolAssignment value, short version = ConsumerProtocolAssignment.MaxVersion) => WriteVersioned(value, version);

    private static T ReadVersioned<T>(ReadOnlyMemory<byte> bytes, short maxVersion) where T : class, new()
    {
        var reader = new Primitives.KafkaReader(bytes);
        short version = reader.ReadInt16();
        if (version < 0) throw new Primitives.MalformedMessageException($"negative consumer protocol version {version}");
        return MessageSerializer.ReadStruct<T>(reader, Math.Min(version, maxVersion));
    }

    private static byte[] WriteVersioned<T>(T value, short version) where T : class, new()
    {
        using var writer = new Primitives.KafkaWriter();
        writer.WriteInt16(version);
        MessageSerializer.WriteStruct(writer, value, version);
        return writer.WrittenSpan.ToArray();
    }
}
