using Microsoft.Extensions.Logging;

namespace Cairn.Offsets;

/// <summary>What was committed: the source, the new offset, the one it replaced (null when none was known) and when.</summary>
public sealed record CommitInfo(string Source, Offset Offset, Offset? PreviousOffset, DateTimeOffset CommittedAt)
{
    /// <summary>How long the store took to commit.</summary>
    public TimeSpan Duration { get; init; }
}

/// <summary>
/// Runs after each successful commit through an <see cref="InstrumentedOffsetStore"/> (see
/// <see cref="OffsetStoreExtensions.WithHooks"/>). A hook that throws is logged and counted; it does not fail the
/// commit, which has already happened.
/// </summary>
public interface IPostCommitHook
{
    ValueTask OnCommitAsync(CommitInfo commit, CancellationToken cancellationToken = default);
}

/// <summary>Logs every commit (Debug level by default).</summary>
public sealed partial class LoggingCommitHook(ILogger<LoggingCommitHook> logger, LogLevel level = LogLevel.Debug) : IPostCommitHook
{
    public ValueTask OnCommitAsync(CommitInfo commit, CancellationToken cancellationToken = default)
    {
        if (logger.IsEnabled(level))
            Log(logger, level, commit.Source, commit.Offset.ToString(), commit.PreviousOffset?.ToString() ?? "(none)", commit.Duration.TotalMilliseconds);
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 1, Message = "Committed offset {Offset} for {Source} (was {PreviousOffset}) in {DurationMs:0.###} ms")]
    private static partial void Log(ILogger logger, LogLevel level, string source, string offset, string previousOffset, double durationMs);
}

/// <summary>Keeps every commit it sees, for tests.</summary>
public sealed class RecordingCommitHook : IPostCommitHook
{
    private readonly object _gate = new();
    private readonly List<CommitInfo> _commits = [];
    private readonly List<(Func<CommitInfo, bool> Match, TaskCompletionSource<CommitInfo> Done)> _waiters = [];

    /// <summary>The commits so far, oldest first.</summary>
    public IReadOnlyList<CommitInfo> Commits
    {
        get { lock (_gate) return _commits.ToArray(); }
    }

    public ValueTask OnCommitAsync(CommitInfo commit, CancellationToken cancellationToken = default)
    {
        List<TaskCompletionSource<CommitInfo>>? done = null;
        lock (_gate)
        {
            _commits.Add(commit);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (!_waiters[i].Match(commit)) continue;
                (done ??= []).Add(_waiters[i].Done);
                _waiters.RemoveAt(i);
            }
        }
        if (done is not null) foreach (var tcs in done) tcs.TrySetResult(commit);
        return ValueTask.CompletedTask;
    }

    /// <summary>The commits of one source, oldest first.</summary>
    public IReadOnlyList<CommitInfo> CommitsOf(string source)
    {
        lock (_gate) return _commits.Where(c => c.Source == source).ToArray();
    }

    /// <summary>Completes with the first commit (already seen or still to come) that matches <paramref name="match"/>.</summary>
    public Task<CommitInfo> WaitForAsync(Func<CommitInfo, bool> match, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(match);
        lock (_gate)
        {
            foreach (var commit in _commits)
            {
                if (match(commit)) return Task.FromResult(commit);
            }
            var tcs = new TaskCompletionSource<CommitInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, tcs));
            return tcs.Task.WaitAsync(cancellationToken);
        }
    }

    public void Clear()
    {
        lock (_gate) _commits.Clear();
    }
}
