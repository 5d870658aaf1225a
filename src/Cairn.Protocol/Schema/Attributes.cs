using System.Runtime.CompilerServices;

namespace Cairn.Protocol.Schema;

public enum MessageKind { Request, Response }

/// <summary>
/// Declares a class as the one description of a Kafka message: its API, the versions it exists in and
/// the versions that use the flexible encoding. Every version's wire format is derived from it.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class KafkaMessageAttribute(ApiKey apiKey, MessageKind kind, string versions) : Attribute
{
    public ApiKey ApiKey { get; } = apiKey;
    public MessageKind Kind { get; } = kind;
    public VersionRange Versions { get; } = VersionRange.Parse(versions);
    /// <summary>Versions using compact strings/arrays and tagged fields ("none" if never).</summary>
    public string Flexible { get; init; } = "none";
}

/// <summary>
/// Declares a property as a wire field. Fields are encoded in declaration order (taken from the
/// source line, so the class reads exactly like the wire layout).
/// </summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class KafkaFieldAttribute(string versions, [CallerLineNumber] int order = 0) : Attribute
{
    public VersionRange Versions { get; } = VersionRange.Parse(versions);
    public int Order { get; } = order;
    /// <summary>Versions in which the field may be null (strings, bytes, arrays, structs, records).</summary>
    public string Nullable { get; init; } = "none";
    /// <summary>Tag number for a tagged field; -1 for a regular field.</summary>
    public int Tag { get; init; } = -1;
    /// <summary>Versions in which the field is tagged (carried in the tagged-field section).</summary>
    public string Tagged { get; init; } = "none";
}

/// <summary>
/// Declares that a response field repeats part of the request, so that the response reporting a failure can be
/// built for any request from the declarations (<see cref="ErrorResponses"/>). On a list: one element per element
/// of the named request list. On a value: the named field of the request element being mirrored, or "*" for that
/// element itself when the request list holds plain values (group ids, topic names). With several names, the
/// first one the request has in the version at hand is used.
/// </summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false)]
public sealed class EchoesAttribute(params string[] requestFields) : Attribute
{
    /// <summary>The element itself, when the mirrored request list holds plain values.</summary>
    public const string Element = "*";

    public IReadOnlyList<string> RequestFields { get; } = requestFields;
}
