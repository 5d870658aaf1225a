using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups.Store;

/// <summary>One caller's <see cref="IGroupStore.CommitOffsetsAsync"/> waiting for the writer loop; its task completes when its transaction commits.</summary>
internal sealed class PendingCommit : TaskCompletionSource
{
    private const int Queued = 0, Taken = 1, Cancelled = 2;
    private int _state;
    internal CancellationTokenRegistration Registration;

    public PendingCommit(IReadOnlyList<GroupOffsetCommit> commits, int offsetCount)
        : base(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        Commits = commits;
        OffsetCount = offsetCount;
    }

    public IReadOnlyList<GroupOffsetCommit> Commits { get; }

    public int OffsetCount { get; }

    /// <summary>Claims the request for a transaction; false when the caller cancelled it while it was queued.</summary>
    internal bool TryTake() => Interlocked.CompareExchange(ref _state, Taken, Queued) == Queued;

    internal static readonly Action<object?, CancellationToken> CancelIfQueued = static (state, token) =>
    {
        var pending = (PendingCommit)state!;
        if (Interlocked.CompareExchange(ref pending._state, Cancelled, Queued) == Queued) pending.TrySetCanceled(token);
    };
}

/// <summary>
/// Group commit: callers enqueue their commits; one writer loop drains everything that queued up while the previous
/// transaction was in flight and writes it in a single transaction, then completes every caller of that batch.
/// If a batch of several requests fails, each request is retried alone so that one bad request cannot fail the others;
/// a request that still fails gets its own error (so a failing database fails every caller).
/// </summary>
internal sealed class CommitBatcher
{
    /// <summary>Upper bound on requests in one transaction, whatever their size.</summary>
    private const int MaxBatchRequests = 4096;

    private readonly Channel<PendingCommit> _channel = Channel.CreateUnbounded<PendingCommit>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = false, AllowSynchronousContinuations = false });
    private readonly Func<List<PendingCommit>, ValueTask> _writeBatch;
    private readonly ILogger _logger;
    private readonly int _maxBatchOffsets;
    private readonly Task _loop;
    private long _transactions;
    private long _requests;

    /// <param name="writeBatch">Writes the commits of every request in the list in one transaction; throws if it did not commit.</param>
    public CommitBatcher(Func<List<PendingCommit>, ValueTask> writeBatch, ILogger logger, int maxBatchOffsets)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchOffsets, 1);
        _writeBatch = writeBatch;
        _logger = logger;
        _maxBatchOffsets = maxBatchOffsets;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Transactions the loop ran (batches and single retries).</summary>
    public long Transactions => Interlocked.Read(ref _transactions);

    /// <summary>Requests written successfully.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public Task EnqueueAsync(IReadOnlyList<GroupOffsetCommit> commits, int offsetCount, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled(cancellationToken);
        var pending = new PendingCommit(commits, offsetCount);
        if (cancellationToken.CanBeCanceled)
            pending.Registration = cancellationToken.UnsafeRegister(PendingCommit.CancelIfQueued, pending);
        if (!_channel.Writer.TryWrite(pending))
        {
            pending.Registration.Dispose();
            return Task.FromException(new ObjectDisposedException(nameof(IGroupStore), "the group store is closed"));
        }
        return pending.Task;
    }

    /// <summary>Stops accepting commits and waits until every queued one has been written.</summary>
    public Task CompleteAsync()
    {
        _channel.Writer.TryComplete();
        return _loop;
    }

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<PendingCommit>();
        var single = new List<PendingCommit>(1);
        PendingCommit? carried = null;
        while (carried is not null || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var offsets = 0;
            if (carried is not null)
            {
                batch.Add(carried);
                offsets = carried.OffsetCount;
                carried = null;
            }
            while (batch.Count < MaxBatchRequests && reader.TryRead(out var pending))
            {
                if (!pending.TryTake()) continue; // cancelled while queued: never written
                pending.Registration.Dispose();
                if (batch.Count > 0 && offsets + pending.OffsetCount > _maxBatchOffsets)
                {
                    carried = pending; // starts the next transaction
                    break;
                }
                batch.Add(pending);
                offsets += pending.OffsetCount;
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

    private async Task WriteAsync(List<PendingCommit> batch, List<PendingCommit> single)
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
            _logger.LogWarning(ex, "Group offset commit transaction of {Requests} requests failed; retrying each request alone", batch.Count);
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
