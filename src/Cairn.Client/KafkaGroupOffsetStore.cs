using Cairn.Offsets;

namespace Cairn.Client;

/// <summary>
/// An <see cref="IOffsetStore"/> kept in a Kafka consumer group: offsets are committed to the group's coordinator
/// (OffsetCommit, generation -1 and no member id, with <see cref="CommitMetadata"/> attached) and read back with
/// OffsetFetch, so Kafka tooling sees them as the group's offsets. Sources are "topic/partition" (<see cref="OffsetSource.ForKafka"/>).
/// </summary>
/// <remarks>
/// <para>The group must have no active members while this store commits: the coordinator refuses commits from outside
/// a live group (<see cref="OffsetStoreIOException"/> wrapping a <see cref="KafkaException"/> with UNKNOWN_MEMBER_ID).</para>
/// <para>Kafka stores exact offsets only: committing <see cref="Offset.Earliest"/>, <see cref="Offset.Latest"/> or a
/// <see cref="Offset.Timestamp"/> stores the offset they resolve to now (ListOffsets; a time after the last record
/// resolves to the end of the log). Custom offsets are refused with <see cref="InvalidOffsetException"/>.</para>
/// </remarks>
public sealed class KafkaGroupOffsetStore : IOffsetStore
{
    private readonly KafkaAdminClient _admin;
    private readonly bool _ownsClient;
    private int _disposed;

    /// <summary>A store with its own connections to the cluster.</summary>
    public KafkaGroupOffsetStore(KafkaClientOptions clientOptions, string groupId, string? commitMetadata = null)
        : this(new KafkaAdminClient(clientOptions), groupId, commitMetadata, ownsClient: true)
    {
    }

    /// <summary>A store on an existing admin client (disposed with the store only when <paramref name="ownsClient"/>).</summary>
    public KafkaGroupOffsetStore(KafkaAdminClient admin, string groupId, string? commitMetadata = null, bool ownsClient = false)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        _admin = admin;
        _ownsClient = ownsClient;
        GroupId = groupId;
        CommitMetadata = commitMetadata;
    }

    public string GroupId { get; }

    /// <summary>The metadata string attached to every commit (Kafka's offset metadata), e.g. the committing application.</summary>
    public string? CommitMetadata { get; }

    public async ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default)
    {
        var entry = await GetEntryAsync(source, cancellationToken).ConfigureAwait(false);
        return entry is null ? null : Offset.Sequence(entry.Offset);
    }

    /// <summary>The committed offset of <paramref name="source"/> with its metadata and leader epoch; null when nothing is committed.</summary>
    public async ValueTask<OffsetAndMetadata?> GetEntryAsync(string source, CancellationToken cancellationToken = default)
    {
        var tp = Parse(source);
        ThrowIfDisposed();
        var committed = await RunAsync(source, "reading the committed offset",
            () => _admin.FetchCommittedOffsetsAsync(GroupId, [tp], cancellationToken)).ConfigureAwait(false);
        return committed.GetValueOrDefault(tp);
    }

    public async ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        var tp = Parse(source);
        ThrowIfDisposed();
        long value;
        if (offset.Kind == OffsetKind.Sequence) value = offset.SequenceValue;
        else if (offset.Kind == OffsetKind.Custom)
            throw new InvalidOffsetException($"a Kafka group stores offsets only; {offset} has no meaning for {tp}", source);
        else
        {
            value = await RunAsync(source, $"resolving {offset}", async () =>
            {
                var found = await _admin.ListOffsetsAsync([tp], OffsetSpec.From(offset), IsolationLevel.ReadUncommitted, cancellationToken).ConfigureAwait(false);
                long resolved = found[tp].Offset;
                if (resolved < 0)
                    resolved = (await _admin.ListOffsetsAsync([tp], OffsetSpec.Latest, IsolationLevel.ReadUncommitted, cancellationToken).ConfigureAwait(false))[tp].Offset;
                return resolved;
            }).ConfigureAwait(false);
        }
        await RunAsync(source, "committing", async () =>
        {
            await _admin.CommitGroupOffsetsAsync(GroupId, new Dictionary<TopicPartition, OffsetAndMetadata> { [tp] = new(value, CommitMetadata) }, cancellationToken).ConfigureAwait(false);
            return true;
        }).ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var committed = await RunAsync(null, "reading the committed offsets", () => _admin.FetchCommittedOffsetsAsync(GroupId, null, cancellationToken)).ConfigureAwait(false);
        return committed.OrderBy(kv => kv.Key).ToDictionary(kv => OffsetSource.ForKafka(kv.Key.Topic, kv.Key.Partition), kv => Offset.Sequence(kv.Value.Offset), StringComparer.Ordinal);
    }

    public async ValueTask ClearAsync(string source, CancellationToken cancellationToken = default)
    {
        var tp = Parse(source);
        ThrowIfDisposed();
        await DeleteAsync(source, [tp], cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask ClearAllAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var committed = await RunAsync(null, "reading the committed offsets", () => _admin.FetchCommittedOffsetsAsync(GroupId, null, cancellationToken)).ConfigureAwait(false);
        if (committed.Count > 0) await DeleteAsync(null, committed.Keys.ToList(), cancellationToken).ConfigureAwait(false);
    }

    private Task DeleteAsync(string? source, IReadOnlyList<TopicPartition> partitions, CancellationToken cancellationToken) =>
        RunAsync(source, "clearing", async () =>
        {
            try
            {
                await _admin.DeleteGroupOffsetsAsync(GroupId, partitions, cancellationToken).ConfigureAwait(false);
            }
            catch (KafkaException e) when (e.Error == Protocol.ErrorCode.GroupIdNotFound)
            {
                // No group, so nothing stored.
            }
            return true;
        });

    private async Task<T> RunAsync<T>(string? source, string what, Func<Task<T>> operation)
    {
        try
        {
            return await operation().ConfigureAwait(false);
        }
        catch (KafkaException e)
        {
            var subject = source is null ? $"group '{GroupId}'" : $"source '{source}' of group '{GroupId}'";
            throw new OffsetStoreIOException($"{what} for {subject} failed: {e.Message}", source, e);
        }
    }

    private static TopicPartition Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var (topic, partition) = OffsetSource.ParseKafka(source);
        return new TopicPartition(topic, partition);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_ownsClient) await _admin.DisposeAsync().ConfigureAwait(false);
    }
}
