using System.Collections.Concurrent;

namespace Cairn.Storage;

/// <summary>
/// Closes the file handles of deleted segments after file.delete.delay.ms, so fetch responses that were
/// built from them just before the deletion can still be copied out (the files themselves are unlinked
/// right away). Holds the timers so they stay rooted; <see cref="Dispose"/> closes everything pending.
/// </summary>
internal sealed class DeferredCloser(TimeProvider time) : IDisposable
{
    private readonly ConcurrentDictionary<LogSegment, ITimer> _pending = new();

    public int PendingCount => _pending.Count;

    public void Schedule(LogSegment segment, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            segment.CloseHandles();
            return;
        }
        var timer = time.CreateTimer(static state =>
        {
            var (self, seg) = ((DeferredCloser, LogSegment))state!;
            if (self._pending.TryRemove(seg, out var t)) t.Dispose();
            seg.CloseHandles();
        }, (this, segment), delay, Timeout.InfiniteTimeSpan);
        _pending[segment] = timer;
        if (segment.IsClosed && _pending.TryRemove(segment, out var fired)) fired.Dispose();
    }

    public void Dispose()
    {
        foreach (var (seg, timer) in _pending)
        {
            timer.Dispose();
            seg.CloseHandles();
        }
        _pending.Clear();
    }
}
