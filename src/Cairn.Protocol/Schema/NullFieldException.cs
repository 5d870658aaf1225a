using Cairn.Protocol.Primitives;

namespace Cairn.Protocol.Schema;

/// <summary>
/// A field that is not nullable in the message's version arrived as null (length -1). It is a malformed message, so
/// every place that already refuses malformed input refuses it too.
/// </summary>
public sealed class NullFieldException(Type owner, string field, short version)
    : MalformedMessageException($"{DisplayName(owner)} v{version}: field {field} is null but not nullable in this version")
{
    /// <summary>The struct holding the field, with the message it is nested in first (e.g. <c>ProduceRequest.TopicProduceData</c>).</summary>
    public string Struct { get; } = DisplayName(owner);
    public string Field { get; } = field;
    public short Version { get; } = version;

    private static string DisplayName(Type type) =>
        type.DeclaringType is { } outer ? $"{DisplayName(outer)}.{type.Name}" : type.Name;
}
