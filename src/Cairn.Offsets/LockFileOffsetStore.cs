using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Offsets.Internal;

namespace Cairn.Offsets;

public sealed class LockFileOffsetStoreOptions
{
    /// <summary>How long a write waits for a source's lock (held by another task or process) before failing with
    /// <see cref="OffsetLockTimeoutException"/>. Default 30 s.</summary>
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest pause between attempts to take a lock another process holds (the pause doubles from 1 ms up to this). Default 50 ms.</summary>
    public TimeSpan MaxLockRetryDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Read each Get/GetAll from disk instead of the cache loaded on open, so commits made by other processes since
    /// are seen. Default false: processes usually own distinct sources, and <see cref="LockFileOffsetStore.ReloadAsync"/>
    /// refreshes the cache on demand.
    /// </summary>
    public bool ReadThrough { get; set; }
}

/// <summary>
/// A directory per consumer name and one small JSON file per source ("&lt;encoded source&gt;.offset", the source name
/// encoded into a portable file name and also kept inside the file). Each write holds an exclusive OS lock on the
/// source's "&lt;encoded source&gt;.lock" file (a FileStream opened with FileShare.None: flock(2) on Unix, a share lock on
/// Windows), retried until <see cref="LockFileOffsetStoreOptions.LockTimeout"/>, and replaces the file atomically
/// (temp file, fsync, rename, directory fsync); so several processes can commit into one directory safely.
/// Every file is read into a cache on open; an unreadable file fails the open with an
/// <see cref="OffsetSerializationException"/> naming it.
/// </summary>
public sealed class LockFileOffsetStore : IOffsetStore
{
    private const string OffsetExtension = ".offset";
    private const string LockExtension = ".lock";
    private const string TempExtension = ".offset.tmp";

    private static readonly int[] ContentionResults =
    [
        11, // EAGAIN / EWOULDBLOCK (Linux): flock held elsewhere
        35, // EAGAIN (macOS, BSD)
        unchecked((int)0x80070020), // ERROR_SHARING_VIOLATION (Windows)
        unchecked((int)0x80070021), // ERROR_LOCK_VIOLATION (Windows)
    ];

    private readonly LockFileOffsetStoreOptions _options;
    private readonly AsyncInit _init;
    private readonly ConcurrentDictionary<string, Offset> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _localLocks = new(StringComparer.Ordinal);
    private int _disposed;

    /// <param name="rootDirectory">The directory holding one sub-directory per consumer.</param>
    /// <param name="consumerName">The consumer (application, pipeline) whose offsets these are.</param>
    public LockFileOffsetStore(string rootDirectory, string consumerName, LockFileOffsetStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootDirectory);
        ArgumentException.ThrowIfNullOrEmpty(consumerName);
        _options = options ?? new LockFileOffsetStoreOptions();
        if (_options.LockTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "LockTimeout cannot be negative");
        ConsumerName = consumerName;
        DirectoryPath = Path.Combine(Path.GetFullPath(rootDirectory), FileNameCodec.Encode(consumerName));
        _init = new AsyncInit(LoadAsync);
    }

    /// <summary>Opens the store now: creates the directory and reads every offset file (a corrupt one is reported here).</summary>
    public static async Task<LockFileOffsetStore> OpenAsync(string rootDirectory, string consumerName,
        LockFileOffsetStoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        var store = new LockFileOffsetStore(rootDirectory, consumerName, options);
        await store._init.EnsureAsync(cancellationToken).ConfigureAwait(false);
        return store;
    }

    public string ConsumerName { get; }

    /// <summary>This consumer's directory.</summary>
    public string DirectoryPath { get; }

    /// <summary>The file holding <paramref name="source"/>'s offset.</summary>
    public string GetOffsetFilePath(string source) => Path.Combine(DirectoryPath, FileNameCodec.Encode(source) + OffsetExtension);

    /// <summary>The file locked while <paramref name="source"/>'s offset is written.</summary>
    public string GetLockFilePath(string source) => Path.Combine(DirectoryPath, FileNameCodec.Encode(source) + LockExtension);

    public async ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        if (_options.ReadThrough)
        {
            var stored = await ReadSourceFileAsync(source, GetOffsetFilePath(source), cancellationToken).ConfigureAwait(false);
            if (stored is { } o) _cache[source] = o;
            else _cache.TryRemove(source, out _);
            return stored;
        }
        return _cache.TryGetValue(source, out var offset) ? offset : null;
    }

    public async ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        if (_options.ReadThrough) await ReloadAsync(cancellationToken).ConfigureAwait(false);
        return new Dictionary<string, Offset>(_cache, StringComparer.Ordinal);
    }

    public async ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var stem = FileNameCodec.Encode(source);
        await using var held = await LockAsync(stem, source, cancellationToken).ConfigureAwait(false);
        await WriteAsync(stem, source, offset).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads <paramref name="source"/>'s offset from disk and commits what <paramref name="update"/> returns for it,
    /// all under the source's lock: a read-modify-write that is atomic across every process sharing the directory.
    /// </summary>
    public async Task<Offset> UpdateAsync(string source, Func<Offset?, Offset> update, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ArgumentNullException.ThrowIfNull(update);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var stem = FileNameCodec.Encode(source);
        await using var held = await LockAsync(stem, source, cancellationToken).ConfigureAwait(false);
        var current = await ReadSourceFileAsync(source, Path.Combine(DirectoryPath, stem + OffsetExtension), cancellationToken).ConfigureAwait(false);
        var next = update(current);
        await WriteAsync(stem, source, next).ConfigureAwait(false);
        return next;
    }

    public async ValueTask ClearAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var stem = FileNameCodec.Encode(source);
        await using var held = await LockAsync(stem, source, cancellationToken).ConfigureAwait(false);
        DeleteLocked(stem, source);
    }

    public async ValueTask ClearAllAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var stems = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in _cache.Keys) stems.Add(FileNameCodec.Encode(source));
        foreach (var file in ListOffsetFiles()) stems.Add(Path.GetFileName(file)[..^OffsetExtension.Length]);
        foreach (var stem in stems)
        {
            await using var held = await LockAsync(stem, null, cancellationToken).ConfigureAwait(false);
            DeleteLocked(stem, null);
        }
    }

    /// <summary>Re-reads every offset file into the cache (to see commits other processes made).</summary>
    public async Task ReloadAsync(CancellationToken cancellationToken = default)
    {
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var loaded = await ReadAllAsync(cancellationToken).ConfigureAwait(false);
        foreach (var source in _cache.Keys)
        {
            if (!loaded.ContainsKey(source)) _cache.TryRemove(source, out _);
        }
        foreach (var (source, offset) in loaded) _cache[source] = offset;
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return ValueTask.CompletedTask;
        return ValueTask.CompletedTask;
    }

    private async ValueTask ReadyAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!_init.IsCompleted) await _init.EnsureAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task LoadAsync()
    {
        try
        {
            Durability.CreateDirectory(DirectoryPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OffsetStoreIOException($"could not create offset directory '{DirectoryPath}': {ex.Message}", null, ex);
        }
        var loaded = await ReadAllAsync(CancellationToken.None).ConfigureAwait(false);
        _cache.Clear();
        foreach (var (source, offset) in loaded) _cache[source] = offset;
    }

    private async Task<Dictionary<string, Offset>> ReadAllAsync(CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, Offset>(StringComparer.Ordinal);
        foreach (var file in ListOffsetFiles())
        {
            var content = await ReadFileAsync(file, null, cancellationToken).ConfigureAwait(false);
            if (content is null) continue; // cleared by another process since the listing
            var (source, offset) = OffsetJson.ReadSourceFile(content, file);
            CheckFileName(file, source);
            result[source] = offset;
        }
        return result;
    }

    private IEnumerable<string> ListOffsetFiles()
    {
        try
        {
            return Directory.GetFiles(DirectoryPath, "*" + OffsetExtension).Where(f => f.EndsWith(OffsetExtension, StringComparison.Ordinal));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OffsetStoreIOException($"could not list offset directory '{DirectoryPath}': {ex.Message}", null, ex);
        }
    }

    private async Task<Offset?> ReadSourceFileAsync(string source, string path, CancellationToken cancellationToken)
    {
        var content = await ReadFileAsync(path, source, cancellationToken).ConfigureAwait(false);
        if (content is null) return null;
        var (stored, offset) = OffsetJson.ReadSourceFile(content, path);
        if (!string.Equals(stored, source, StringComparison.Ordinal))
            throw new OffsetSerializationException($"offset file '{path}' belongs to source '{stored}', not '{source}'", source, path);
        return offset;
    }

    private static async Task<byte[]?> ReadFileAsync(string path, string? source, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OffsetStoreIOException(OffsetStoreException.Describe(source, $"could not read offset file '{path}': {ex.Message}"), source, ex);
        }
    }

    private static void CheckFileName(string path, string source)
    {
        var expected = FileNameCodec.Encode(source) + OffsetExtension;
        if (!string.Equals(Path.GetFileName(path), expected, StringComparison.Ordinal))
            throw new OffsetSerializationException(
                $"offset file '{path}' holds source '{source}', whose file would be '{expected}': the file was renamed or copied by hand", source, path);
    }

    private async Task WriteAsync(string stem, string source, Offset offset)
    {
        var path = Path.Combine(DirectoryPath, stem + OffsetExtension);
        try
        {
            await Durability.ReplaceFileAsync(path, Path.Combine(DirectoryPath, stem + TempExtension),
                OffsetJson.WriteSourceFile(source, offset), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OffsetStoreIOException($"could not write offset file '{path}' (source '{source}'): {ex.Message}", source, ex);
        }
        _cache[source] = offset;
    }

    private void DeleteLocked(string stem, string? source)
    {
        var path = Path.Combine(DirectoryPath, stem + OffsetExtension);
        try
        {
            Durability.DeleteFile(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OffsetStoreIOException(OffsetStoreException.Describe(source, $"could not delete offset file '{path}': {ex.Message}"), source, ex);
        }
        if (source is not null) _cache.TryRemove(source, out _);
        else
        {
            foreach (var cached in _cache.Keys)
            {
                if (FileNameCodec.Encode(cached) == stem) _cache.TryRemove(cached, out _);
            }
        }
    }

    /// <summary>Takes the in-process lock, then the OS lock on the lock file, retrying until the lock timeout.</summary>
    private async Task<HeldLock> LockAsync(string stem, string? source, CancellationToken cancellationToken)
    {
        var lockPath = Path.Combine(DirectoryPath, stem + LockExtension);
        var timeout = _options.LockTimeout;
        var clock = Stopwatch.StartNew();
        var local = _localLocks.GetOrAdd(stem, static _ => new SemaphoreSlim(1, 1));
        if (!await local.WaitAsync(timeout, cancellationToken).ConfigureAwait(false))
            throw LockTimeout(source, lockPath, timeout, null, "another task of this process holds it");
        var delay = TimeSpan.FromMilliseconds(1);
        try
        {
            while (true)
            {
                try
                {
                    var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                    return new HeldLock(stream, local);
                }
                catch (IOException ex) when (ex.GetType() == typeof(IOException) && ContentionResults.Contains(ex.HResult))
                {
                    var left = timeout - clock.Elapsed;
                    if (left <= TimeSpan.Zero) throw LockTimeout(source, lockPath, timeout, ex, "another process holds it");
                    await Task.Delay(delay < left ? delay : left, cancellationToken).ConfigureAwait(false);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Math.Max(_options.MaxLockRetryDelay.Ticks, TimeSpan.TicksPerMillisecond)));
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new OffsetStoreIOException(OffsetStoreException.Describe(source, $"could not open lock file '{lockPath}': {ex.Message}"), source, ex);
                }
            }
        }
        catch
        {
            local.Release();
            throw;
        }
    }

    private static OffsetLockTimeoutException LockTimeout(string? source, string lockPath, TimeSpan timeout, Exception? inner, string why) =>
        new(OffsetStoreException.Describe(source, $"timed out after {timeout.TotalSeconds:0.###} s waiting for the lock '{lockPath}' ({why})"),
            source, lockPath, timeout, inner);

    private sealed class HeldLock(FileStream stream, SemaphoreSlim local) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            try { stream.Dispose(); }
            finally { local.Release(); }
            return ValueTask.CompletedTask;
        }
    }
}
