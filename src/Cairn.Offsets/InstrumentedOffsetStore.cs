using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Offsets;

/// <summary>
/// A decorator for any <see cref="IOffsetStore"/>: records commit count, failures and latency on the
/// "Cairn.Offsets" meter (<see cref="OffsetMetrics"/>) and runs <see cref="IPostCommitHook"/>s after each successful
/// commit, with the previous offset (read from the inner store the first time a source is committed, then
/// remembered). Disposing it disposes the inner store unless <c>leaveOpen</c>.
/// </summary>
public sealed class InstrumentedOffsetStore : IOffsetStore
{
    private readonly IPostCommitHook[] _hooks;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly bool _leaveOpen;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly ConcurrentDictionary<string, Offset?> _previous = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _sourceLocks = new(StringComparer.Ordinal);

    public InstrumentedOffsetStore(IOffsetStore inner, IEnumerable<IPostCommitHook>? hooks = null, string? storeName = null,
        ILogger? logger = null, TimeProvider? timeProvider = null, bool leaveOpen = false)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _hooks = hooks?.ToArray() ?? [];
        StoreName = storeName ?? (inner is InstrumentedOffsetStore i ? i.StoreName : inner.GetType().Name);
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _leaveOpen = leaveOpen;
        _tag = new(OffsetMetrics.StoreTag, StoreName);
    }

    /// <summary>The decorated store.</summary>
    public IOffsetStore Inner { get; }

    /// <summary>The value of the <c>cairn.offsets.store</c> tag.</summary>
    public string StoreName { get; }

    public IReadOnlyList<IPostCommitHook> Hooks => _hooks;

    public ValueTask<Offset?> GetAsync(string source, CancellationToken cancellationToken = default) => Inner.GetAsync(source, cancellationToken);

    public ValueTask<IReadOnlyDictionary<string, Offset>> GetAllAsync(CancellationToken cancellationToken = default) => Inner.GetAllAsync(cancellationToken);

    public async ValueTask CommitAsync(string source, Offset offset, CancellationToken cancellationToken = default)
    {
        OffsetSource.Validate(source);
        // Per-source ordering so each hook sees the true previous offset.
        var gate = _hooks.Length == 0 ? null : _sourceLocks.GetOrAdd(source, static _ => new SemaphoreSlim(1, 1));
        if (gate is not null) await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Offset? previous = null;
            if (gate is not null && !_previous.TryGetValue(source, out previous))
                previous = await Inner.GetAsync(source, cancellationToken).ConfigureAwait(false);

            long started = Stopwatch.GetTimestamp();
            try
            {
                await Inner.CommitAsync(source, offset, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                OffsetMetrics.CommitDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, _tag);
                OffsetMetrics.CommitErrors.Add(1, _tag);
                throw;
            }
            var duration = Stopwatch.GetElapsedTime(started);
            OffsetMetrics.CommitDuration.Record(duration.TotalSeconds, _tag);
            OffsetMetrics.Commits.Add(1, _tag);
            if (gate is null) return;

            _previous[source] = offset;
            var info = new CommitInfo(source, offset, previous, _time.GetUtcNow()) { Duration = duration };
            foreach (var hook in _hooks)
            {
                try
                {
                    await hook.OnCommitAsync(info, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    OffsetMetrics.HookErrors.Add(1, _tag);
                    _logger.LogError(ex, "Post-commit hook {Hook} failed for source {Source} at offset {Offset}; the offset is committed",
                        hook.GetType().Name, source, offset.ToString());
                }
            }
        }
        finally
        {
            gate?.Release();
        }
    }

    public async ValueTask ClearAsync(string source, CancellationToken cancellationToken = default)
    {
        await Inner.ClearAsync(source, cancellationToken).ConfigureAwait(false);
        _previous[source] = null;
    }

    public async ValueTask ClearAllAsync(CancellationToken cancellationToken = default)
    {
        await Inner.ClearAllAsync(cancellationToken).ConfigureAwait(false);
        _previous.Clear();
    }

    public ValueTask DisposeAsync() => _leaveOpen ? ValueTask.CompletedTask : Inner.DisposeAsync();
}

public static class OffsetStoreExtensions
{
    /// <summary>Wraps <paramref name="store"/> so that <paramref name="hooks"/> run after each commit (and metrics are recorded).</summary>
    public static InstrumentedOffsetStore WithHooks(this IOffsetStore store, params IPostCommitHook[] hooks) => new(store, hooks);

    /// <summary>Wraps <paramref name="store"/> so its commits are counted and timed on the "Cairn.Offsets" meter.</summary>
    public static InstrumentedOffsetStore WithMetrics(this IOffsetStore store, string? storeName = null) => new(store, storeName: storeName);
}
