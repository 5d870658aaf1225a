using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Cairn.Sql;

/// <summary>One caller's request waiting for the writer loop; its task completes when its transaction commits.</summary>
internal sealed class PendingCommit<T> : TaskCompletionSource
{
    private const int Queued = 0, Taken = 1, Cancelled = 2;
    private int _state;
    internal CancellationTokenRegistration Registration;

    public PendingCommit(T item, int weight)
        : base(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        Item = item;
        Weight = weight;
    }

    /// <summary>What the caller asked to write.</summary>
    public T Item { get; }

    /// <summary>How much it writes (rows), counted against the batch limit.</summary>
    public int Weight { get; }

    /// <summary>Claims the request for a transaction; false when the caller cancelled it while it was queued.</summary>
    internal bool TryTake() => Interlocked.CompareExchange(ref _state, Taken, Queued) == Queued;

    internal static readonly Action<object?, CancellationToken> CancelIfQueued = static (state, token) =>
    {
        var pending = (PendingCommit<T>)state!;
        if (Interlocked.CompareExchange(ref pending._state, Cancelled, Queued) == Queued) pending.TrySetCanceled(token);
    };
}

/// <summary>
/// Group commit: callers enqueue their writes; one writer loop drains everything that queued up while the previous
/// transaction was in flight and writes it in a single transaction, then completes every caller of that batch. A durable
/// commit (an fsync) is the expensive part of a write, so many callers share one.
/// If a batch of several requests fails, each request is retried alone so that one bad request cannot fail the others;
/// a request that still fails gets its own error (so a failing database fails every caller).
/// </summary>
internal sealed class CommitBatcher<T>
{
    /// <summary>Upper bound on requests in one transaction, whatever their weight.</summary>
    private const int MaxBatchRequests = 4096;

    private readonly Channel<PendingCommit<T>> _channel = Channel.CreateUnbounded<PendingCommit<T>>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = false, AllowSynchronousContinuations = false });
    private readonly Func<List<PendingCommit<T>>, ValueTask> _writeBatch;
    private readonly ILogger _logger;
    private readonly int _maxBatchWeight;
    private readonly string _what;
    private readonly Task _loop;
    private long _transactions;
    private long _requests;

    /// <param name="writeBatch">Writes the items of every request in the list in one transaction; throws if it did not commit.</param>
    /// <param name="maxBatchWeight">Most weight one transaction takes; a heavier request still goes, alone.</param>
    /// <param name="what">What is committed, in messages ("group offset commit").</param>
    public CommitBatcher(Func<List<PendingCommit<T>>, ValueTask> writeBatch, ILogger logger, int maxBatchWeight, string what)
    {
        ArgumentNullException.ThrowIfNull(writeBatch);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchWeight, 1);
        _writeBatch = writeBatch;
        _logger = logger;
        _maxBatchWeight = maxBatchWeight;
        _what = what;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Transactions the loop ran (batches and single retries).</summary>
    public long Transactions => Interlocked.Read(ref _transactions);

    /// <summary>Requests written successfully.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Queues <paramref name="item"/>; the task completes when the transaction holding it commits.</summary>
    public Task EnqueueAsync(T item, int weight, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled(cancellationToken);
        var pending = new PendingCommit<T>(item, weight);
        if (cancellationToken.CanBeCanceled)
            pending.Registration = cancellationToken.UnsafeRegister(PendingCommit<T>.CancelIfQueued, pending);
        if (!_channel.Writer.TryWrite(pending))
        {
            pending.Registration.Dispose();
            return Task.FromException(new ObjectDisposedException(null, $"the store is closed: no {_what} is accepted"));
        }
        return pending.Task;
    }

    /// <summary>Stops accepting requests and waits until every queued one has been written.</summary>
    public Task CompleteAsync()
    {
        _channel.Writer.TryComplete();
        return _loop;
    }

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<PendingCommit<T>>();
        var single = new List<PendingCommit<T>>(1);
        PendingCommit<T>? carried = null;
        while (carried is not null || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var weight = 0;
            if (carried is not null)
            {
                batch.Add(carried);
                weight = carried.Weight;
                carried = null;
            }
            while (batch.Count < MaxBatchRequests && reader.TryRead(out var pending))
            {
                if (!pending.TryTake()) continue; // cancelled while queued: never written
                pending.Registration.Dispose();
                if (batch.Count > 0 && weight + pending.Weight > _maxBatchWeight)
                {
                    carried = pending; // starts the next transaction
                    break;
                }
                batch.Add(pending);
                weight += pending.Weight;
            }
            if (batch.Count == 0) continue;
            try
            {
                await WriteAsync(batch, single).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // WriteAsync completes every caller itself; this is only a guard so the loop never dies.
                foreach (var p in batch) p.TrySetException(ex);
            }
            batch.Clear();
        }
    }

    private async Task WriteAsync(List<PendingCommit<T>> batch, List<PendingCommit<T>> single)
    {
        try
        {
            Interlocked.Increment(ref _transactions);
            await _writeBatch(batch).ConfigureAwait(false);
            Interlocked.Add(ref _requests, batch.Count);
            foreach (var p in batch) p.TrySetResult();
            return;
        }
        catch (Exception ex) when (batch.Count > 1)
        {
            _logger.LogWarning(ex, "A {What} transaction of {Requests} requests failed; retrying each request alone", _what, batch.Count);
        }
        catch (Exception ex)
        {
            batch[0].TrySetException(ex);
            return;
        }

        foreach (var p in batch)
        {
            single.Clear();
            single.Add(p);
            try
            {
                Interlocked.Increment(ref _transactions);
                await _writeBatch(single).ConfigureAwait(false);
                Interlocked.Increment(ref _requests);
                p.TrySetResult();
            }
            catch (Exception ex)
            {
                p.TrySetException(ex);
            }
        }
        single.Clear();
    }
}
