namespace Cairn.Protocol.Records;

/// <summary>One record header. Keys are never null on the wire; values may be (null ≠ empty).</summary>
public readonly record struct RecordHeader(string Key, ReadOnlyMemory<byte>? Value)
{
    /// <summary>
    /// Keeps a null array null: the implicit byte[] → ReadOnlyMemory conversion would turn it into an
    /// empty value. Also picked for a literal <c>null</c>.
    /// </summary>
    public RecordHeader(string key, byte[]? value) : this(key, value is null ? default(ReadOnlyMemory<byte>?) : value) { }
}

/// <summary>
/// A decoded record with absolute offset and timestamp. Key, value and header values are slices of
/// the batch bytes (or of the decompressed records section), not copies. Null and empty are distinct.
/// </summary>
public sealed class Record(
    long offset,
    long timestamp,
    ReadOnlyMemory<byte>? key,
    ReadOnlyMemory<byte>? value,
    IReadOnlyList<RecordHeader> headers,
    sbyte attributes = 0)
{
    public long Offset { get; } = offset;
    public long Timestamp { get; } = timestamp;
    public ReadOnlyMemory<byte>? Key { get; } = key;
    public ReadOnlyMemory<byte>? Value { get; } = value;
    public IReadOnlyList<RecordHeader> Headers { get; } = headers;
    /// <summary>The per-record attributes byte; unused by Kafka so far (always 0).</summary>
    public sbyte Attributes { get; } = attributes;

    public override string ToString() =>
        $"Record(offset={Offset}, ts={Timestamp}, key={Key?.Length.ToString() ?? "null"}B, value={Value?.Length.ToString() ?? "null"}B, headers={Headers.Count})";
}
