namespace Cairn.Broker.Network;

/// <summary>
/// queued.max.request.bytes: one broker-wide budget of bytes for request frames being received or handled. A connection
/// reserves a frame's size before it receives the body and releases it once the response is written; while the budget
/// cannot cover a frame, that connection stops reading (TCP flow control then slows the client) until bytes come back.
/// Waiters are served first come, first served, so a large frame is not starved by a stream of small ones; the
/// configuration guarantees the budget is at least max.request.bytes (as Kafka requires of queued.max.request.bytes),
/// so every acceptable frame fits once the budget is free.
/// </summary>
internal sealed class RequestMemoryBudget
{
    private readonly object _lock = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private long _available;

    public RequestMemoryBudget(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        _available = capacity;
    }

    public long Capacity { get; }

    /// <summary>Bytes reserved right now.</summary>
    public long InUse { get { lock (_lock) return Capacity - _available; } }

    /// <summary>Reserves <paramref name="bytes"/> (at most <see cref="Capacity"/>), waiting behind earlier reservations until they fit.</summary>
    public ValueTask ReserveAsync(long bytes, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Capacity);
        Waiter waiter;
        lock (_lock)
        {
            if (_waiters.Count == 0 && _available >= bytes)
            {
                _available -= bytes;
                return ValueTask.CompletedTask;
            }
            waiter = new Waiter(bytes);
            waiter.Node = _waiters.AddLast(waiter);
        }
        return new ValueTask(WaitAsync(waiter, cancellationToken));
    }

    private async Task WaitAsync(Waiter waiter, CancellationToken cancellationToken)
    {
        await using (cancellationToken.Register(() => Cancel(waiter)))
            await waiter.Granted.Task.ConfigureAwait(false);
    }

    private void Cancel(Waiter waiter)
    {
        lock (_lock)
        {
            if (waiter.Node is null) return; // granted already: the caller sees the grant and releases it as usual
            _waiters.Remove(waiter.Node);
            waiter.Node = null;
            GrantWaitersLocked(); // the head may have been the one blocking the others
        }
        waiter.Granted.TrySetCanceled();
    }

    public void Release(long bytes)
    {
        if (bytes <= 0) return;
        lock (_lock)
        {
            _available += bytes;
            GrantWaitersLocked();
        }
    }

    private void GrantWaitersLocked()
    {
        while (_waiters.First is { } first && _available >= first.Value.Bytes)
        {
            var waiter = first.Value;
            _available -= waiter.Bytes;
            _waiters.RemoveFirst();
            waiter.Node = null;
            // Continuations run asynchronously: never inside this lock, never on the releasing connection's stack.
            waiter.Granted.TrySetResult();
        }
    }

    private sealed class Waiter(long bytes)
    {
        public long Bytes { get; } = bytes;
        public LinkedListNode<Waiter>? Node { get; set; }
        public TaskCompletionSource Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
