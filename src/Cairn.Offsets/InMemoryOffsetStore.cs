using System.Collections.Concurrent;

namespace Cairn.Offsets;

/// <summary>Offsets kept in memory only: for tests, and for pipelines that re-read from the start anyway.</summary>
public sealed class InMemoryOffsetStore : IOffsetStore
{
    private readonly ConcurrentDictionary<string, Offset> _offsets = new(StringComparer.Ordinal);
    private int _disposed;

    public InMemoryOffsetStore() { }

    /// <summary>A store holding <paramref name="initial"/> offsets.</summary>
    public InMemoryOffsetStore(IEnumerable<KeyValuePair<string, Offset>> initial)
    {
        foreach (var (source, offset) in initial)
        {
            OffsetSource.Validate(source);
            _offsets[source] = offset;
        }
    }

    public ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<Offset?>(_offsets.TryGetValue(source, out var offset) ? offset : null);
    }

    public ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        _offsets[source] = offset;
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult<IReadOnlyDictionary<string, Offset>>(new Dictionary<string, Offset>(_offsets, StringComparer.Ordinal));
    }

    public ValueTask ClearAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        _offsets.TryRemove(source, out _);
        return ValueTask.CompletedTask;
    }

    public ValueTask ClearAllAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        _offsets.Clear();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Interlocked.Exchange(ref _disposed, 1);
        return ValueTask.CompletedTask;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
