using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>
/// The broker-wide bound on the segment file descriptors storage keeps open (log.max.open.files). Every segment
/// file (.log, and the .index/.timeindex of active segments) is a <see cref="SegmentFile"/> registered here while its
/// handle is open. When a new open takes the count past <see cref="Limit"/>, the least recently used handles that no
/// one holds a lease on are closed; they reopen on their next use. Handles in use are never closed, so the count can
/// pass the limit by the number of storage operations running at that moment, and comes back when their leases end.
/// </summary>
/// <remarks>
/// Only opens and closes take the lock; a lease on an open handle costs two interlocked operations and no syscall.
/// Choosing a victim scans the open handles (at most about <see cref="Limit"/>), which is cheap next to the open(2)
/// that made it necessary.
/// </remarks>
internal sealed class FileHandleBudget(int limit)
{
    private readonly Lock _lock = new();
    private SegmentFile?[] _open = new SegmentFile?[64];
    private int _count;
    private long _reopens;
    private long _evictions;

    /// <summary>The number of handles kept open when none is in use.</summary>
    public int Limit { get; } = limit >= 1 ? limit : throw new ArgumentOutOfRangeException(nameof(limit), limit, "must be at least 1");

    /// <summary>Segment file handles open now.</summary>
    public int OpenCount => Volatile.Read(ref _count);

    /// <summary>Handles opened again after having been closed to stay within the budget.</summary>
    public long Reopens => Interlocked.Read(ref _reopens);

    /// <summary>Handles closed to stay within the budget.</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    internal bool IsOver => Volatile.Read(ref _count) > Limit;

    /// <summary>
    /// Background fsyncs of rolled segments run at most two at a time: each holds a lease (maybe on a reopened file), so
    /// many rolls at once (50 partitions rolling together) would otherwise pass the budget by as many descriptors.
    /// </summary>
    public SemaphoreSlim RollFlushes { get; } = new(2);

    internal void Added(SegmentFile file, bool reopened)
    {
        lock (_lock)
        {
            if (_count == _open.Length) Array.Resize(ref _open, _open.Length * 2);
            file.Slot = _count;
            _open[_count] = file;
            Volatile.Write(ref _count, _count + 1);
        }
        if (reopened) Interlocked.Increment(ref _reopens);
        if (IsOver) Trim();
    }

    internal void Removed(SegmentFile file)
    {
        lock (_lock)
        {
            int slot = file.Slot;
            if (slot < 0 || slot >= _count || !ReferenceEquals(_open[slot], file)) return;
            int last = _count - 1;
            var moved = _open[last]!;
            _open[slot] = moved;
            moved.Slot = slot;
            _open[last] = null;
            file.Slot = -1;
            Volatile.Write(ref _count, last);
        }
    }

    /// <summary>
    /// Closes least recently used idle handles until the count is within the limit (less a slack of 1/16 of it) or every open
    /// handle is in use. One scan picks all the victims: opening thousands of files in a row (every partition at start-up)
    /// then costs a scan of the table every slack opens rather than at every open.
    /// </summary>
    public void Trim()
    {
        // Bounded: a victim may be leased between being chosen and being closed; then the next scan tries others.
        for (int attempts = 0; IsOver && attempts < 2 * Limit + 16; attempts++)
        {
            var victims = new PriorityQueue<SegmentFile, long>();
            lock (_lock)
            {
                int want = _count - Limit + Limit / 16;
                if (want <= 0) return;
                // The oldest idle handles: a heap of at most `want`, the most recent of them on top (priority -LastUse).
                for (int i = 0; i < _count; i++)
                {
                    var f = _open[i]!;
                    if (!f.IsIdle) continue;
                    if (victims.Count < want) victims.Enqueue(f, -f.LastUse);
                    else if (victims.TryPeek(out _, out long newest) && f.LastUse < -newest) victims.DequeueEnqueue(f, -f.LastUse);
                }
            }
            if (victims.Count == 0) return; // all in use: the last lease to end trims again
            while (victims.TryDequeue(out var victim, out _))
                if (victim.TryCloseIdle()) Interlocked.Increment(ref _evictions);
        }
    }
}

/// <summary>
/// One segment file whose handle storage may close while it is idle and reopen on demand. Users take a
/// <see cref="FileLease"/> for the duration of one synchronous operation; a handle is closed (to stay within the
/// <see cref="FileHandleBudget"/>, or for good by <see cref="Dispose"/>) only when no lease is held.
/// </summary>
internal sealed class SegmentFile
{
    private const string DeletedSuffix = ".deleted";

    private readonly FileHandleBudget _budget;
    private readonly Lock _gate = new();
    private string _path;
    private SafeFileHandle? _handle;
    // Leases held; -1 while a close is in progress (acquirers wait for it to finish).
    private int _refs;
    private int _disposed;
    private int _dirty;
    private bool _unlinkOnDispose;
    // Not opened yet (OpenLazily): its first open is not a reopen.
    private bool _lazy;

    /// <summary>Environment.TickCount64 at the last lease (for choosing what to close).</summary>
    internal long LastUse;
    /// <summary>Position in the budget's table of open files (-1 when closed); guarded by the budget's lock.</summary>
    internal int Slot = -1;

    private SegmentFile(FileHandleBudget budget, string path)
    {
        _budget = budget;
        _path = path;
    }

    /// <summary>Opens (or creates, per <paramref name="mode"/>) the file now and registers it with the budget.</summary>
    public static SegmentFile Open(FileHandleBudget budget, string path, FileMode mode)
    {
        var file = new SegmentFile(budget, path);
        var handle = OpenHandle(path, mode);
        file.LastUse = Environment.TickCount64;
        file._dirty = mode == FileMode.Open ? 0 : 1;
        Volatile.Write(ref file._handle, handle);
        budget.Added(file, reopened: false);
        return file;
    }

    /// <summary>
    /// Registers a file that exists without opening it: the first <see cref="Acquire"/> opens it (FileMode.Open). For files
    /// that may never be used before they are closed (the index files of every partition's active segment at start-up).
    /// </summary>
    public static SegmentFile OpenLazily(FileHandleBudget budget, string path) => new(budget, path) { _lazy = true };

    public string Path => Volatile.Read(ref _path);
    public bool IsOpen => Volatile.Read(ref _handle) is not null;
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;
    internal bool IsIdle => Volatile.Read(ref _refs) == 0;

    /// <summary>
    /// A lease on the open handle, reopening the file if it was closed to stay within the budget. Throws
    /// <see cref="IOException"/> when the file cannot be reopened, <see cref="ObjectDisposedException"/> after <see cref="Dispose"/>.
    /// </summary>
    public FileLease Acquire()
    {
        var spin = new SpinWait();
        while (true)
        {
            int r = Volatile.Read(ref _refs);
            if (r >= 0 && Interlocked.CompareExchange(ref _refs, r + 1, r) == r) break;
            if (r < 0) spin.SpinOnce();
        }
        var handle = Volatile.Read(ref _handle);
        if (handle is null)
        {
            try { handle = Reopen(); }
            catch
            {
                Release();
                throw;
            }
        }
        if (IsDisposed)
        {
            Release();
            throw new ObjectDisposedException(Path);
        }
        long now = Environment.TickCount64;
        if (LastUse != now) LastUse = now;
        return new FileLease(this, handle);
    }

    private SafeFileHandle Reopen()
    {
        SafeFileHandle handle;
        bool reopened;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            if (Volatile.Read(ref _handle) is { } open) return open;
            // FileMode.Open: a file that vanished is an error, never silently recreated empty.
            handle = OpenHandle(_path, FileMode.Open);
            Volatile.Write(ref _handle, handle);
            reopened = !_lazy;
            _lazy = false;
        }
        _budget.Added(this, reopened);
        return handle;
    }

    private static SafeFileHandle OpenHandle(string path, FileMode mode)
    {
        try
        {
            return FileIO.OpenReadWrite(path, mode);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException($"cannot open {path}: {e.Message}", e);
        }
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref _refs) != 0) return;
        if (IsDisposed) TryCloseIdle();
        else if (_budget.IsOver) _budget.Trim();
    }

    /// <summary>Closes the handle if no lease is held; false when it is in use (or already closed).</summary>
    internal bool TryCloseIdle()
    {
        if (Interlocked.CompareExchange(ref _refs, -1, 0) != 0) return false;
        SafeFileHandle? handle;
        bool unlink;
        lock (_gate)
        {
            handle = Interlocked.Exchange(ref _handle, null);
            unlink = IsDisposed && _unlinkOnDispose;
            if (unlink) _unlinkOnDispose = false;
        }
        if (handle is not null) _budget.Removed(this);
        Volatile.Write(ref _refs, 0);
        handle?.Dispose();
        if (unlink) FileIO.TryDelete(Path);
        // A Dispose that came while this close was in progress could not close: finish its work.
        else if (IsDisposed && (Volatile.Read(ref _handle) is not null || UnlinkPending)) TryCloseIdle();
        return handle is not null;
    }

    private bool UnlinkPending
    {
        get { lock (_gate) return _unlinkOnDispose; }
    }

    /// <summary>Notes that data was written since the last <see cref="Flush"/>.</summary>
    public void MarkDirty()
    {
        if (Volatile.Read(ref _dirty) == 0) Volatile.Write(ref _dirty, 1);
    }

    /// <summary>fsync if anything was written since the last one (through a reopened handle if needed: fsync covers the file, not the descriptor).</summary>
    public void Flush()
    {
        if (Interlocked.Exchange(ref _dirty, 0) == 0) return;
        try
        {
            using var lease = Acquire();
            RandomAccess.FlushToDisk(lease.Handle);
        }
        catch
        {
            Volatile.Write(ref _dirty, 1);
            throw;
        }
    }

    /// <summary>
    /// Retention: the file leaves its name (renamed to *.deleted, which start-up removes) but stays readable, reopening
    /// included, until <see cref="Dispose"/>, which unlinks it. Falls back to unlinking at once if the rename fails.
    /// </summary>
    public void MarkDeleted()
    {
        lock (_gate)
        {
            if (IsDisposed)
            {
                FileIO.TryDelete(_path);
                return;
            }
            var deleted = _path + DeletedSuffix;
            try
            {
                File.Move(_path, deleted, overwrite: true);
                Volatile.Write(ref _path, deleted);
                _unlinkOnDispose = true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                FileIO.TryDelete(_path);
            }
        }
    }

    /// <summary>Closes for good: now if idle, else when the last lease ends. Later acquisitions throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        TryCloseIdle();
    }

    public override string ToString() => Path;
}

/// <summary>A file handle that stays open until <see cref="Dispose"/> (see <see cref="SegmentFile.Acquire"/>).</summary>
internal readonly struct FileLease(SegmentFile file, SafeFileHandle handle) : IDisposable
{
    public SafeFileHandle Handle { get; } = handle;

    public void Dispose() => file.Release();
}
