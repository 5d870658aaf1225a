namespace Cairn.Offsets;

/// <summary>
/// Durable positions, one per source. A source is a name the caller chooses; for Kafka it is
/// "topic/partition" (see <see cref="OffsetSource.ForKafka"/>). A committed offset is the position to
/// resume from (for Kafka, the next record to read).
/// </summary>
/// <remarks>
/// Implementations are safe for concurrent use. Failures are reported as <see cref="OffsetStoreException"/>
/// (or a subclass) naming the source and carrying the cause; stored data that cannot be read is reported,
/// never treated as "nothing stored".
/// </remarks>
public interface IOffsetStore : IAsyncDisposable
{
    /// <summary>The committed offset for <paramref name="source"/>, or null when nothing is stored.</summary>
    ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default);

    /// <summary>Stores <paramref name="offset"/> for <paramref name="source"/>, replacing any previous value; durable when the returned task completes.</summary>
    ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default);

    /// <summary>Every stored offset, keyed by source.</summary>
    ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default);

    /// <summary>Forgets the offset for <paramref name="source"/> (no error when nothing is stored).</summary>
    ValueTask ClearAsync(string source, CancellationToken cancellationToken = default);

    /// <summary>Forgets every stored offset.</summary>
    ValueTask ClearAllAsync(CancellationToken cancellationToken = default);
}
