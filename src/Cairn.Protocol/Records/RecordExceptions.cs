namespace Cairn.Protocol.Records;

/// <summary>Base of the errors about record batch contents; a broker answers these per partition.</summary>
public abstract class InvalidRecordException : Exception
{
    protected InvalidRecordException(string message) : base(message) { }
    protected InvalidRecordException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// The batch is corrupt: CRC mismatch, lengths or counts that do not add up, undecodable compressed data
/// (Kafka's CORRUPT_MESSAGE).
/// </summary>
public sealed class CorruptRecordException : InvalidRecordException
{
    public CorruptRecordException(string message) : base(message) { }
    public CorruptRecordException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A batch with a magic other than 2 (the legacy v0/v1 message sets, or garbage).</summary>
public sealed class UnsupportedRecordFormatException(sbyte magic, int position)
    : InvalidRecordException($"record batch at byte {position} has magic {magic}; only magic 2 record batches are supported")
{
    public sbyte Magic { get; } = magic;
    /// <summary>Byte position of the batch within the data being iterated.</summary>
    public int Position { get; } = position;
}
