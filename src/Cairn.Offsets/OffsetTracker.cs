using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Offsets;

/// <summary>
/// Tracks positions over an <see cref="IOffsetStore"/> and commits them according to a <see cref="CommitStrategy"/>.
/// <para>
/// Sequential processing: after handling a record, <see cref="RecordAsync"/> the position to resume from (for Kafka,
/// the record's offset + 1, i.e. <c>offset.Next()</c>).
/// </para>
/// <para>
/// Concurrent processing: <see cref="Begin"/> each record's own offset before handing it out and
/// <see cref="CompleteAsync(string, Offset, CancellationToken)"/> it when done, in any order. The tracker then records
/// the position after the contiguous prefix of completed records (Kafka's "next record to read"), never a position past
/// a record that has not completed.
/// </para>
/// Thread-safe. Disposing commits whatever is pending. The store is not disposed with the tracker.
/// </summary>
public sealed class OffsetTracker : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<string, SourceState> _sources = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer? _timer;
    private long _recordsSinceCommit;
    private DateTimeOffset? _firstPendingAt;
    private int _disposed;

    public OffsetTracker(IOffsetStore store, OffsetTrackerOptions? options = null, ILogger<OffsetTracker>? logger = null)
    {
        Store = store ?? throw new ArgumentNullException(nameof(store));
        options ??= new OffsetTrackerOptions();
        CommitStrategy = options.CommitStrategy ?? throw new ArgumentException("CommitStrategy cannot be null", nameof(options));
        ResetPolicy = options.ResetPolicy;
        _time = options.TimeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        if (CommitStrategy.TimeInterval is not null && CommitStrategy.RecordCount != 1)
            _timer = _time.CreateTimer(static s => ((OffsetTracker)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public IOffsetStore Store { get; }

    public CommitStrategy CommitStrategy { get; }

    public OffsetResetPolicy ResetPolicy { get; }

    /// <summary>The last error of a commit the interval timer started (those have no caller to throw to); null once one succeeds.</summary>
    public Exception? LastBackgroundCommitError { get; private set; }

    /// <summary>The offsets this tracker has committed, or read from the store, by source.</summary>
    public IReadOnlyDictionary<string, Offset> Committed
    {
        get
        {
            lock (_gate)
                return _sources.Where(s => s.Value.Committed is not null).ToDictionary(s => s.Key, s => s.Value.Committed!.Value, StringComparer.Ordinal);
        }
    }

    /// <summary>The offsets recorded but not committed yet, by source.</summary>
    public IReadOnlyDictionary<string, Offset> Pending
    {
        get
        {
            lock (_gate)
                return _sources.Where(s => s.Value.Pending is not null).ToDictionary(s => s.Key, s => s.Value.Pending!.Value, StringComparer.Ordinal);
        }
    }

    /// <summary>How many records of <paramref name="source"/> are begun and not yet part of the completed prefix.</summary>
    public int GetInFlightCount(string source)
    {
        lock (_gate) return _sources.TryGetValue(source, out var state) ? state.InFlight.Count : 0;
    }

    /// <summary>
    /// Records that <paramref name="source"/> should resume from <paramref name="offset"/> (for Kafka: the processed
    /// record's offset + 1), and commits if the strategy says so. Positions only move forward: a sequence or timestamp
    /// lower than the one already recorded or committed is ignored (use <see cref="ResetAsync"/> to move back).
    /// </summary>
    public async ValueTask RecordAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        lock (_gate) SetPendingLocked(source, State(source), offset);
        await AfterRecordAsync(source, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts tracking the record at sequence <paramref name="offset"/> of <paramref name="source"/>, processed
    /// concurrently with others. Complete it with the returned handle or <see cref="CompleteAsync(string, Offset, CancellationToken)"/>.
    /// </summary>
    /// <exception cref="InvalidOffsetException">The offset is not a sequence, or lies below the position already reached.</exception>
    /// <exception cref="InvalidOperationException">The record is already in flight.</exception>
    public OffsetHandle Begin(string source, Offset offset)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        if (!offset.IsSequence)
            throw new InvalidOffsetException($"Begin tracks records by sequence offset; {offset} is not one", source);
        long value = offset.SequenceValue;
        lock (_gate)
        {
            var state = State(source);
            if (state.Floor is { } floor && value < floor)
                throw new InvalidOffsetException(
                    $"record {offset} of source '{source}' lies below the position already reached (seq:{floor}); it was processed already", source);
            if (!state.InFlight.TryAdd(value, false))
                throw new InvalidOperationException($"record {offset} of source '{source}' is already in flight");
            return new OffsetHandle(this, source, offset, state.Epoch);
        }
    }

    /// <summary>Marks the record begun at <paramref name="offset"/> as done; records the new contiguous position, if it moved.</summary>
    /// <exception cref="InvalidOperationException">The record was not begun, or was completed already.</exception>
    public ValueTask CompleteAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        return CompleteCoreAsync(source, offset, null, cancellationToken);
    }

    internal async ValueTask CompleteCoreAsync(string source, Offset offset, long? epoch, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (!offset.IsSequence)
            throw new InvalidOffsetException($"Complete tracks records by sequence offset; {offset} is not one", source);
        long value = offset.SequenceValue;
        lock (_gate)
        {
            var state = State(source);
            if (epoch is { } e && e != state.Epoch) return; // begun before a reset or clear: forgotten
            if (!state.InFlight.TryGetValue(value, out var done))
                throw new InvalidOperationException($"record {offset} of source '{source}' was not begun, or is completed and committed already");
            if (done) throw new InvalidOperationException($"record {offset} of source '{source}' is completed already");
            state.InFlight[value] = true;
            long? next = null;
            while (state.InFlight.Count > 0)
            {
                var first = state.InFlight.First();
                if (!first.Value) break;
                state.InFlight.Remove(first.Key);
                next = first.Key + 1;
            }
            if (next is { } position)
            {
                state.Floor = position;
                SetPendingLocked(source, state, Offset.Sequence(position));
            }
        }
        await AfterRecordAsync(source, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Commits <paramref name="source"/>'s pending offset, if any.</summary>
    public ValueTask CommitAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        SourceState? state;
        lock (_gate) _sources.TryGetValue(source, out state);
        return state is null ? ValueTask.CompletedTask : CommitSourceAsync(source, state, cancellationToken);
    }

    /// <summary>Commits every pending offset. If some fail, the others are still committed, and the failures are thrown together.</summary>
    public ValueTask CommitAllAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return CommitAllCoreAsync(cancellationToken);
    }

    /// <summary>
    /// Where <paramref name="source"/> resumes: the pending offset, else the committed one (read from the store the
    /// first time), else what the reset policy says (<see cref="Offset.Earliest"/>, <see cref="Offset.Latest"/>, or
    /// <see cref="OffsetNotFoundException"/> for <see cref="OffsetResetPolicy.None"/>).
    /// </summary>
    public async ValueTask<Offset> GetOffsetAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        SourceState state;
        lock (_gate)
        {
            state = State(source);
            if (state.Pending is { } pending) return pending;
            if (state.Committed is { } committed) return committed;
            if (state.CommittedKnown) return ApplyResetPolicy(source);
        }
        var stored = await Store.GetAsync(source, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            if (!state.CommittedKnown)
            {
                state.Committed = stored;
                state.CommittedKnown = true;
            }
            return state.Pending ?? state.Committed ?? ApplyResetPolicy(source);
        }
    }

    /// <summary>
    /// Moves <paramref name="source"/> to <paramref name="offset"/> (backwards too) and commits it now. Pending and in-flight
    /// records of the source are forgotten; completing them afterwards through their handles does nothing.
    /// </summary>
    public async ValueTask ResetAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        SourceState state;
        lock (_gate) state = State(source);
        await state.CommitLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await Store.CommitAsync(source, offset, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                state.Forget();
                state.Committed = offset;
                state.CommittedKnown = true;
                state.Floor = offset.IsSequence ? offset.SequenceValue : null;
            }
        }
        finally
        {
            state.CommitLock.Release();
        }
    }

    /// <summary>Deletes <paramref name="source"/>'s stored offset and forgets its pending and in-flight records.</summary>
    public async ValueTask ClearAsync(string source, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        ThrowIfDisposed();
        SourceState state;
        lock (_gate) state = State(source);
        await state.CommitLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await Store.ClearAsync(source, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                state.Forget();
                state.Committed = null;
                state.CommittedKnown = true;
                state.Floor = null;
            }
        }
        finally
        {
            state.CommitLock.Release();
        }
    }

    /// <summary>Stops the interval timer and commits everything pending (failures are thrown, after the tracker is closed).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _timer?.Dispose();
        try
        {
            await CommitAllCoreAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Committing pending offsets while disposing the offset tracker failed");
            throw;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private SourceState State(string source)
    {
        if (!_sources.TryGetValue(source, out var state)) _sources[source] = state = new SourceState();
        return state;
    }

    private Offset ApplyResetPolicy(string source) => ResetPolicy switch
    {
        OffsetResetPolicy.Earliest => Offset.Earliest,
        OffsetResetPolicy.Latest => Offset.Latest,
        _ => throw new OffsetNotFoundException(source),
    };

    private void SetPendingLocked(string source, SourceState state, Offset offset)
    {
        var current = state.Pending ?? state.Committed;
        if (current is { } c && IsBehind(offset, c))
        {
            _logger.LogDebug("Ignoring offset {Offset} for {Source}: behind {Current}", offset.ToString(), source, c.ToString());
            return;
        }
        if (state.Pending is null && state.Committed is { } committed && committed == offset) return; // nothing new
        state.Pending = offset;
    }

    private static bool IsBehind(Offset offset, Offset current) =>
        offset.Kind == current.Kind && offset.Kind is OffsetKind.Sequence or OffsetKind.Timestamp && offset < current;

    private async ValueTask AfterRecordAsync(string source, CancellationToken cancellationToken)
    {
        var strategy = CommitStrategy;
        if (strategy.IsManual) return;
        if (strategy.RecordCount == 1)
        {
            await CommitAsync(source, cancellationToken).ConfigureAwait(false);
            return;
        }
        bool commitAll = false;
        lock (_gate)
        {
            _recordsSinceCommit++;
            if (strategy.RecordCount is { } n && _recordsSinceCommit >= n) commitAll = true;
            if (strategy.TimeInterval is { } interval)
            {
                var now = _time.GetUtcNow();
                if (_firstPendingAt is null)
                {
                    _firstPendingAt = now;
                    _timer!.Change(interval, Timeout.InfiniteTimeSpan);
                }
                else if (now - _firstPendingAt.Value >= interval)
                {
                    commitAll = true;
                }
            }
        }
        if (commitAll) await CommitAllCoreAsync(cancellationToken).ConfigureAwait(false);
    }

    private void OnTimer()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        _ = CommitFromTimerAsync();
    }

    private async Task CommitFromTimerAsync()
    {
        try
        {
            await CommitAllCoreAsync(CancellationToken.None).ConfigureAwait(false);
            LastBackgroundCommitError = null;
        }
        catch (Exception ex)
        {
            LastBackgroundCommitError = ex;
            _logger.LogError(ex, "Interval commit of pending offsets failed; they stay pending and are retried");
        }
    }

    private async ValueTask CommitAllCoreAsync(CancellationToken cancellationToken)
    {
        List<(string Source, SourceState State)> pending;
        lock (_gate)
        {
            _recordsSinceCommit = 0;
            _firstPendingAt = null;
            if (Volatile.Read(ref _disposed) == 0) _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            pending = _sources.Where(s => s.Value.Pending is not null).Select(s => (s.Key, s.Value)).ToList();
        }
        if (pending.Count == 0) return;
        List<Exception>? failures = null;
        foreach (var (source, state) in pending)
        {
            try
            {
                await CommitSourceAsync(source, state, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                (failures ??= []).Add(ex);
            }
        }
        if (failures is null) return;
        lock (_gate)
        {
            // What failed is still pending: try again after another interval.
            if (CommitStrategy.TimeInterval is { } interval && _firstPendingAt is null && Volatile.Read(ref _disposed) == 0)
            {
                _firstPendingAt = _time.GetUtcNow();
                _timer!.Change(interval, Timeout.InfiniteTimeSpan);
            }
        }
        if (failures.Count == 1) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures[0]);
        throw new AggregateException("committing pending offsets failed for several sources", failures);
    }

    private async ValueTask CommitSourceAsync(string source, SourceState state, CancellationToken cancellationToken)
    {
        await state.CommitLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Offset offset;
            lock (_gate)
            {
                if (state.Pending is not { } pending) return;
                offset = pending;
            }
            await Store.CommitAsync(source, offset, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                state.Committed = offset;
                state.CommittedKnown = true;
                if (state.Pending == offset) state.Pending = null;
            }
        }
        finally
        {
            state.CommitLock.Release();
        }
    }

    private sealed class SourceState
    {
        public Offset? Pending;
        public Offset? Committed;
        public bool CommittedKnown;
        public long? Floor;
        public long Epoch;
        public readonly SortedDictionary<long, bool> InFlight = new();
        public readonly SemaphoreSlim CommitLock = new(1, 1);

        public void Forget()
        {
            Pending = null;
            InFlight.Clear();
            Epoch++;
        }
    }
}

/// <summary>A record begun with <see cref="OffsetTracker.Begin"/>; complete it once processed.</summary>
public sealed class OffsetHandle
{
    private readonly OffsetTracker _tracker;
    private readonly long _epoch;
    private int _completed;

    internal OffsetHandle(OffsetTracker tracker, string source, Offset offset, long epoch)
    {
        _tracker = tracker;
        Source = source;
        Offset = offset;
        _epoch = epoch;
    }

    public string Source { get; }

    /// <summary>The record's own offset.</summary>
    public Offset Offset { get; }

    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <summary>Marks the record done. Completing twice throws; completing after the source was reset or cleared does nothing.</summary>
    public ValueTask CompleteAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
            throw new InvalidOperationException($"record {Offset} of source '{Source}' is completed already");
        return _tracker.CompleteCoreAsync(Source, Offset, _epoch, cancellationToken);
    }
}
