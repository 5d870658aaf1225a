namespace Cairn.Protocol.Primitives;

/// <summary>The bytes do not form a valid message of the expected shape (truncated, bad length, bad varint).</summary>
public sealed class MalformedMessageException(string message) : Exception(message);
