namespace Cairn.Protocol.Records;

/// <summary>One complete batch found by <see cref="RecordBatchIterator"/>: its header and exactly its bytes.</summary>
public readonly record struct RecordBatchSlice(RecordBatchHeader Header, ReadOnlyMemory<byte> Bytes)
{
    public bool IsCrcValid() => RecordBatchHeader.IsCrcValid(Bytes.Span);
}

/// <summary>
/// Walks concatenated v2 batches (a produce request's records, a fetch response, a log segment).
/// Stops without error at a trailing partial batch, since fetch responses are cut at the size limit
/// and a crash may leave a torn batch at the end of a segment; <see cref="Position"/> then tells where
/// the complete batches end. Does not check CRCs (see <see cref="RecordBatchSlice.IsCrcValid"/>).
/// </summary>
/// <remarks>
/// A mutable struct: <c>foreach</c> iterates a copy, so to read <see cref="Position"/> afterwards
/// call <see cref="MoveNext"/> on a local.
/// </remarks>
public struct RecordBatchIterator(ReadOnlyMemory<byte> data)
{
    /// <summary>The smallest batchLength a v2 batch can have: its header after baseOffset and batchLength.</summary>
    public const int MinBatchLength = RecordBatchHeader.Size - RecordBatchHeader.LogOverhead;

    private readonly ReadOnlyMemory<byte> _data = data;
    private int _position;
    private RecordBatchSlice _current;

    public readonly RecordBatchSlice Current => _current;

    /// <summary>Bytes consumed by the complete batches returned so far.</summary>
    public readonly int Position => _position;

    /// <summary>Bytes after the last complete batch; non-zero at the end means a partial trailing batch.</summary>
    public readonly int RemainingBytes => _data.Length - _position;

    public readonly RecordBatchIterator GetEnumerator() => this;

    /// <exception cref="UnsupportedRecordFormatException">A batch whose magic is not 2.</exception>
    /// <exception cref="CorruptRecordException">A batchLength too small to hold the v2 header.</exception>
    public bool MoveNext()
    {
        var rest = _data.Span[_position..];
        if (!TryReadBatch(rest, _position, out var header)) return false;
        _current = new RecordBatchSlice(header, _data.Slice(_position, header.TotalSize));
        _position += header.TotalSize;
        return true;
    }

    /// <summary>
    /// Reads the header of the batch at the start of <paramref name="data"/>. Returns false if the data
    /// ends before the batch does (including an empty input).
    /// </summary>
    /// <param name="position">Where <paramref name="data"/> starts in the caller's buffer, for error messages.</param>
    public static bool TryReadBatch(ReadOnlySpan<byte> data, int position, out RecordBatchHeader header)
    {
        if (!RecordBatchHeader.TryRead(data, out header))
            return false;
        if (header.Magic != 2)
            throw new UnsupportedRecordFormatException(header.Magic, position);
        if (header.BatchLength < MinBatchLength)
            throw new CorruptRecordException($"record batch at byte {position} has batchLength {header.BatchLength}, less than the {MinBatchLength}-byte header");
        // long arithmetic: a batchLength near int.MaxValue must not overflow into a "complete" batch.
        return (long)header.BatchLength + RecordBatchHeader.LogOverhead <= data.Length;
    }
}
