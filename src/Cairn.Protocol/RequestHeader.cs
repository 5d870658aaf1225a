using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Protocol;

/// <summary>
/// Request header v1/v2. The client id is a classic (non-compact) nullable string even in v2;
/// v2 (flexible request versions) adds a tagged-field section.
/// </summary>
public sealed record RequestHeader(ApiKey ApiKey, short ApiVersion, int CorrelationId, string? ClientId)
{
    /// <summary>Reads the fixed part; tagged fields follow only when the request version is flexible.</summary>
    public static RequestHeader Read(KafkaReader reader)
    {
        var key = (ApiKey)reader.ReadInt16();
        short version = reader.ReadInt16();
        int correlationId = reader.ReadInt32();
        string? clientId = reader.ReadString(compact: false);
        var header = new RequestHeader(key, version, correlationId, clientId);
        if (header.IsFlexible) SkipTaggedFields(reader);
        return header;
    }

    /// <summary>
    /// Whether this request uses header v2. ApiVersions requests of an unknown (newer) version are
    /// treated as flexible, as Kafka does, so their header still parses.
    /// </summary>
    public bool IsFlexible => MessageCatalog.Request(ApiKey) is { } d &&
        (d.IsFlexible(ApiVersion) || (ApiKey == ApiKey.ApiVersions && ApiVersion > d.Versions.Max));

    public void Write(KafkaWriter writer)
    {
        writer.WriteInt16((short)ApiKey);
        writer.WriteInt16(ApiVersion);
        writer.WriteInt32(CorrelationId);
        writer.WriteString(ClientId, compact: false);
        if (IsFlexible) writer.WriteUnsignedVarint(0);
    }

    /// <summary>Response header v1 (with tagged fields) goes with flexible versions, except ApiVersions, which always uses v0.</summary>
    public bool ResponseHeaderIsFlexible => ApiKey != ApiKey.ApiVersions && IsFlexible;

    public void WriteResponseHeader(KafkaWriter writer)
    {
        writer.WriteInt32(CorrelationId);
        if (ResponseHeaderIsFlexible) writer.WriteUnsignedVarint(0);
    }

    /// <summary>Reads a response header for this request (client side).</summary>
    public int ReadResponseHeader(KafkaReader reader)
    {
        int correlationId = reader.ReadInt32();
        if (ResponseHeaderIsFlexible) SkipTaggedFields(reader);
        return correlationId;
    }

    private static void SkipTaggedFields(KafkaReader reader)
    {
        uint count = reader.ReadUnsignedVarint();
        for (uint i = 0; i < count; i++)
        {
            reader.ReadUnsignedVarint();
            reader.Skip((int)reader.ReadUnsignedVarint());
        }
    }
}
