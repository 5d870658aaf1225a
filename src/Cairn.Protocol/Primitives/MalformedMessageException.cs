namespace Cairn.Protocol.Primitives;

/// <summary>The bytes do not form a valid message of the expected shape (truncated, bad length, bad varint).</summary>
// Not sealed: NullFieldException names the field a request left null where the protocol forbids it.
public class MalformedMessageException(string message) : Exception(message);
