using System.Threading.Tasks.Sources;

namespace Cairn.Storage;

/// <summary>
/// A reusable long-poll wait over several partition logs: completes at the first append to (or close of) any
/// watched log, at the timeout, or when the token fires — whichever comes first. One waiter serves one wait at a
/// time and is reused (pooled by its owner), so a wait allocates no task, timer, token source or list: the logs
/// keep the waiter in their waiter lists only while it waits, the timer is created once, and token registrations
/// reuse the token source's nodes.
/// </summary>
/// <remarks>
/// Use: <see cref="Start"/>, <see cref="Watch"/> each log, then await <see cref="WaitAsync"/> (exactly once).
/// A wake can arrive late, from a timer or append meant for the previous wait, and end the next wait early;
/// callers re-check what they wait for and wait again, as they must after any wake.
/// </remarks>
public sealed class AppendWaiter : IValueTaskSource, IDisposable
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private readonly List<IPartitionLog> _logs = new();
    private readonly Timer _timer;
    private CancellationTokenRegistration _cancellation;
    private int _armed; // 1 from Start until the first wake; the wake that clears it completes the wait

    public AppendWaiter() => _timer = new Timer(static s => ((AppendWaiter)s!).Wake(), this, Timeout.Infinite, Timeout.Infinite);

    /// <summary>Begins a new wait; watch logs next.</summary>
    public void Start()
    {
        _core.Reset();
        Volatile.Write(ref _armed, 1);
    }

    /// <summary>
    /// Wakes the wait at the next append to <paramref name="log"/>, at once if its high-water mark already moved
    /// past <paramref name="highWatermark"/> (what the caller last read) or the log is closed.
    /// </summary>
    public void Watch(IPartitionLog log, long highWatermark)
    {
        _logs.Add(log);
        log.AddAppendWaiter(this); // registered before the check, so an append between the two still wakes us
        Interlocked.MemoryBarrier();
        if (log.HighWatermark > highWatermark || log.IsClosed) Wake();
    }

    /// <summary>Waits for a wake; <see cref="Timeout.InfiniteTimeSpan"/> waits without a timer. Never throws on cancellation: the caller checks its token.</summary>
    public ValueTask WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _armed) == 1)
        {
            if (timeout != Timeout.InfiniteTimeSpan) _timer.Change(timeout, Timeout.InfiniteTimeSpan);
            if (cancellationToken.CanBeCanceled)
                _cancellation = cancellationToken.UnsafeRegister(static s => ((AppendWaiter)s!).Wake(), this);
        }
        return new ValueTask(this, _core.Version);
    }

    /// <summary>Ends the current wait (if it is still waiting); what a partition calls after an append or on closing.</summary>
    public void Wake()
    {
        if (Interlocked.Exchange(ref _armed, 0) == 1) _core.SetResult(true);
    }

    void IValueTaskSource.GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            // The awaiter only gets here after WaitAsync returned, so the timer and registration are set by now.
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
            _cancellation.Dispose();
            _cancellation = default;
            foreach (var log in _logs) log.RemoveAppendWaiter(this);
            _logs.Clear();
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    public void Dispose()
    {
        _timer.Dispose();
        _cancellation.Dispose();
    }
}
