using System.Collections.Concurrent;
using Cairn.Offsets.Internal;

namespace Cairn.Offsets;

public sealed class JsonFileOffsetStoreOptions
{
    /// <summary>Create the file's directory when it does not exist (default true).</summary>
    public bool CreateDirectory { get; set; } = true;
}

/// <summary>
/// Every offset in one JSON file, replaced atomically on each change: the new content goes to "&lt;file&gt;.tmp",
/// is fsynced, renamed over the file, and the directory is fsynced. A crash at any moment leaves either the old or
/// the new content. Concurrent commits are grouped: while one write is in progress, the commits that arrive wait and
/// go out together in the next write. One process per file; for several processes use <see cref="LockFileOffsetStore"/>.
/// </summary>
/// <remarks>
/// The file is read on first use (or by <see cref="OpenAsync"/>); a file that cannot be parsed is reported with an
/// <see cref="OffsetSerializationException"/> naming it, never treated as empty. A missing file is an empty store.
/// </remarks>
public sealed class JsonFileOffsetStore : IOffsetStore
{
    private const int Pending = 0, Claimed = 1, Cancelled = 2;

    private readonly JsonFileOffsetStoreOptions _options;
    private readonly string _tempPath;
    private readonly AsyncInit _init;
    private readonly ConcurrentQueue<Change> _queue = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private Dictionary<string, Offset> _durable = new Dictionary<string, Offset>(StringComparer.Ordinal);
    private int _disposed;

    public JsonFileOffsetStore(string path, JsonFileOffsetStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FilePath = Path.GetFullPath(path);
        _tempPath = FilePath + ".tmp";
        _options = options ?? new JsonFileOffsetStoreOptions();
        _init = new AsyncInit(LoadAsync);
    }

    /// <summary>Opens the store and reads the file now, so a corrupt file is reported here.</summary>
    public static async Task<JsonFileOffsetStore> OpenAsync(string path, JsonFileOffsetStoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        var store = new JsonFileOffsetStore(path, options);
        try
        {
            await store._init.EnsureAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The full path of the offsets file.</summary>
    public string FilePath { get; }

    public async ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        return Volatile.Read(ref _durable).TryGetValue(source, out var offset) ? offset : null;
    }

    public async ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        return Volatile.Read(ref _durable).AsReadOnly();
    }

    public ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        return SubmitAsync(new Change(ChangeKind.Commit, source, offset), cancellationToken);
    }

    public ValueTask ClearAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        return SubmitAsync(new Change(ChangeKind.Clear, source, default), cancellationToken);
    }

    public ValueTask ClearAllAsync(CancellationToken cancellationToken = default) =>
        SubmitAsync(new Change(ChangeKind.ClearAll, null, default), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // Let a write in progress finish; changes queued behind it are written by their own callers' turn.
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            while (_queue.TryDequeue(out var change))
            {
                if (Interlocked.CompareExchange(ref change.State, Claimed, Pending) == Pending)
                    change.Done.TrySetException(new ObjectDisposedException(nameof(JsonFileOffsetStore)));
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask ReadyAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!_init.IsCompleted) await _init.EnsureAsync(cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask SubmitAsync(Change change, CancellationToken cancellationToken)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        _queue.Enqueue(change);
        try
        {
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Withdraw the change unless a writer already took it; then its outcome is the caller's.
            if (Interlocked.CompareExchange(ref change.State, Cancelled, Pending) == Pending) throw;
            await change.Done.Task.ConfigureAwait(false);
            return;
        }
        try
        {
            if (!change.Done.Task.IsCompleted)
            {
                ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
                await WriteQueuedAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _writeLock.Release();
        }
        await change.Done.Task.ConfigureAwait(false);
    }

    /// <summary>Writes every queued change in one file replacement (caller holds the write lock).</summary>
    private async Task WriteQueuedAsync()
    {
        var batch = new List<Change>();
        while (_queue.TryDequeue(out var queued))
        {
            if (Interlocked.CompareExchange(ref queued.State, Claimed, Pending) == Pending) batch.Add(queued);
        }
        if (batch.Count == 0) return;

        var next = new Dictionary<string, Offset>(_durable, StringComparer.Ordinal);
        foreach (var change in batch)
        {
            switch (change.Kind)
            {
                case ChangeKind.Commit: next[change.Source!] = change.Offset; break;
                case ChangeKind.Clear: next.Remove(change.Source!); break;
                default: next.Clear(); break;
            }
        }
        try
        {
            var content = OffsetJson.WriteOffsetsFile(next);
            if (_options.CreateDirectory) Durability.CreateDirectory(Path.GetDirectoryName(FilePath)!);
            await Durability.ReplaceFileAsync(FilePath, _tempPath, content, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            foreach (var change in batch)
            {
                change.Done.TrySetException(new OffsetStoreIOException(
                    OffsetStoreException.Describe(change.Source, $"could not write offset file '{FilePath}': {ex.Message}"), change.Source, ex));
            }
            return;
        }
        Volatile.Write(ref _durable, next);
        foreach (var change in batch) change.Done.TrySetResult();
    }

    private async Task LoadAsync()
    {
        byte[] content;
        try
        {
            // A temp file is only ever a write that did not reach its rename: the real file is intact without it.
            if (File.Exists(_tempPath)) File.Delete(_tempPath);
            if (!File.Exists(FilePath))
            {
                Volatile.Write(ref _durable, new Dictionary<string, Offset>(StringComparer.Ordinal));
                return;
            }
            content = await File.ReadAllBytesAsync(FilePath).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OffsetStoreIOException($"could not read offset file '{FilePath}': {ex.Message}", null, ex);
        }
        Volatile.Write(ref _durable, OffsetJson.ReadOffsetsFile(content, FilePath));
    }

    private enum ChangeKind { Commit, Clear, ClearAll }

    private sealed class Change(ChangeKind kind, string? source, Offset offset)
    {
        public ChangeKind Kind { get; } = kind;
        public string? Source { get; } = source;
        public Offset Offset { get; } = offset;
        public int State;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
