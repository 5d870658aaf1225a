using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// fsync of one partition log. Callers that need an offset durable share one fsync in flight (group fsync);
/// flush.messages and flush.ms start background flushes; <see cref="DurableOffset"/> only moves forward.
/// Only record data is fsynced here: indexes are fsynced on roll and close, and rebuilt by recovery after a crash.
/// </summary>
internal sealed class LogFlusher
{
    private readonly PartitionState _state;
    private readonly Lock _gate = new();
    private Task? _inFlight;
    private long _durableOffset;
    private long _unflushedMessages;
    private long _lastFlushMs;

    public LogFlusher(PartitionState state, long durableOffset)
    {
        _state = state;
        _durableOffset = durableOffset;
        _lastFlushMs = state.NowMs;
    }

    /// <summary>Every offset below this is fsynced.</summary>
    public long DurableOffset => Volatile.Read(ref _durableOffset);

    /// <summary>Records appended since the last flush started (for flush.messages).</summary>
    public long UnflushedMessages => Interlocked.Read(ref _unflushedMessages);

    /// <summary>Counts records just appended; under the append lock, before the high-water mark moves.</summary>
    public void CountAppended(int records) => Interlocked.Add(ref _unflushedMessages, records);

    /// <summary>Ensures the record at <paramref name="upToOffset"/> is fsynced; concurrent callers share one fsync.</summary>
    public ValueTask FlushAsync(long upToOffset, CancellationToken cancellationToken)
    {
        long target = Math.Min(upToOffset, Volatile.Read(ref _state.NextOffset) - 1);
        if (Volatile.Read(ref _durableOffset) > target) return ValueTask.CompletedTask;
        return FlushSlowAsync(target, cancellationToken);
    }

    private async ValueTask FlushSlowAsync(long target, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task t;
            lock (_gate)
            {
                if (Volatile.Read(ref _durableOffset) > target) return;
                t = _inFlight ??= Task.Run(FlushCore);
            }
            await t.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Synchronous fsync of everything appended so far.</summary>
    public void Flush()
    {
        long target = Volatile.Read(ref _state.NextOffset) - 1;
        if (Volatile.Read(ref _durableOffset) > target) return;
        FlushSlowAsync(target, CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    private void FlushCore()
    {
        try
        {
            long target = Volatile.Read(ref _state.NextOffset);
            long messages = Interlocked.Read(ref _unflushedMessages);
            long durable = Volatile.Read(ref _durableOffset);
            var segs = Volatile.Read(ref _state.Segments);
            for (int i = segs.Length - 1; i >= 0; i--)
            {
                var seg = segs[i];
                if (seg.NextOffset <= durable && i < segs.Length - 1) break;
                try { seg.Flush(includeIndexes: false); }
                catch (ObjectDisposedException) { }
            }
            long cur;
            do { cur = Volatile.Read(ref _durableOffset); }
            while (target > cur && Interlocked.CompareExchange(ref _durableOffset, target, cur) != cur);
            Interlocked.Add(ref _unflushedMessages, -messages);
            Volatile.Write(ref _lastFlushMs, _state.NowMs);
        }
        catch (IOException e)
        {
            _state.Logger.LogError(e, "{Partition}: fsync failed", _state.Name);
            throw;
        }
        finally
        {
            lock (_gate) _inFlight = null;
        }
    }

    /// <summary>flush.messages: after an append, starts a background flush once enough records are unflushed.</summary>
    public void FlushIfMessagesDue(long lastOffset)
    {
        if (Interlocked.Read(ref _unflushedMessages) >= _state.Config.FlushMessages)
            FlushInBackground(lastOffset);
    }

    /// <summary>flush.ms: starts a flush when there is unflushed data and the last flush is older than flush.ms.</summary>
    public bool FlushIfDue(DateTimeOffset now)
    {
        var cfg = _state.Config;
        if (_state.Closed || cfg.FlushMs == long.MaxValue) return false;
        long hwm = Volatile.Read(ref _state.NextOffset);
        if (DurableOffset >= hwm) return false;
        if (now.ToUnixTimeMilliseconds() - Volatile.Read(ref _lastFlushMs) < cfg.FlushMs) return false;
        FlushInBackground(hwm - 1);
        return true;
    }

    private void FlushInBackground(long upToOffset)
    {
        var t = FlushAsync(upToOffset, CancellationToken.None);
        if (t.IsCompleted) return;
        _ = t.AsTask().ContinueWith(static (task, state) =>
        {
            var (log, name) = ((ILogger, string))state!;
            log.LogError(task.Exception, "{Partition}: background flush failed", name);
        }, (_state.Logger, _state.Name), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>Close: lets a flush in flight finish (its failure is logged by whoever waited on it).</summary>
    public void WaitForFlushInFlight()
    {
        Task? pending;
        lock (_gate) pending = _inFlight;
        try { pending?.Wait(); }
        catch (AggregateException) { }
    }

    /// <summary>Close: everything up to <paramref name="nextOffset"/> was fsynced by the caller.</summary>
    public void MarkDurable(long nextOffset) => Volatile.Write(ref _durableOffset, nextOffset);
}
