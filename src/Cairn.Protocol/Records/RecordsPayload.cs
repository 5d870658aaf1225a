namespace Cairn.Protocol.Records;

/// <summary>
/// The bytes of a `records` field. Decoded requests carry a slice of the request frame; responses may
/// carry a source that copies straight from a log file into the response buffer, so fetched bytes
/// are moved once and never re-encoded.
/// </summary>
public abstract class RecordsPayload
{
    public abstract int Length { get; }
    /// <summary>Copies exactly <see cref="Length"/> bytes into <paramref name="destination"/>.</summary>
    public abstract void CopyTo(Span<byte> destination);

    public static RecordsPayload Empty { get; } = new MemoryRecords(ReadOnlyMemory<byte>.Empty);
}

/// <summary>Record bytes held in memory (a slice of a request frame, or a buffer built by a client).</summary>
public sealed class MemoryRecords(ReadOnlyMemory<byte> bytes) : RecordsPayload
{
    public ReadOnlyMemory<byte> Bytes { get; } = bytes;
    public override int Length => Bytes.Length;
    public override void CopyTo(Span<byte> destination) => Bytes.Span.CopyTo(destination);
}

/// <summary>
/// The bytes of a records payload could not be read while a message was being written (its segment file failed).
/// Carries the payload, so the writer can fail only the part of the message that holds it and write the rest.
/// </summary>
public sealed class RecordsUnreadableException(RecordsPayload records, Exception inner)
    : Exception($"records could not be read: {inner.Message}", inner)
{
    public RecordsPayload Records { get; } = records;
}
