using Cairn.Broker.Groups;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Admin;

/// <summary>One point of a group's lag history.</summary>
internal readonly record struct LagSample(DateTimeOffset Time, long LagRecords, double LagSeconds);

/// <summary>
/// Samples every group's total lag (records, and the age of the oldest unconsumed record) at a fixed interval and
/// keeps the last <see cref="AdminOptions.LagHistory"/> of it per group in a fixed-size ring: the dashboard's chart.
/// At most <c>maxGroups</c> groups are tracked; a group that disappears loses its history.
/// </summary>
internal sealed class LagSampler : IAsyncDisposable
{
    private readonly GroupCoordinator _groups;
    private readonly LogManager _logs;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _history;
    private readonly int _maxGroups;
    private readonly int _capacity;
    private readonly ILogger _logger;
    private readonly Dictionary<string, Ring> _rings = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    public LagSampler(GroupCoordinator groups, LogManager logs, TimeProvider time, TimeSpan interval, TimeSpan history, int maxGroups, ILogger logger)
    {
        if (interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval));
        _groups = groups;
        _logs = logs;
        _time = time;
        _interval = interval;
        _history = history;
        _maxGroups = maxGroups;
        _logger = logger;
        _capacity = (int)Math.Clamp(Math.Ceiling(history / interval) + 1, 2, 100_000);
    }

    public TimeSpan Interval => _interval;
    public TimeSpan History => _history;

    public void Start() => _loop ??= RunAsync();

    private async Task RunAsync()
    {
        await Task.Yield();
        using var timer = new PeriodicTimer(_interval, _time);
        do
        {
            try { SampleNow(); }
            catch (Exception e) { _logger.LogWarning(e, "lag sampling failed"); }
        }
        while (await WaitAsync(timer));
    }

    private async Task<bool> WaitAsync(PeriodicTimer timer)
    {
        try { return await timer.WaitForNextTickAsync(_stopping.Token); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>Takes one sample of every group now.</summary>
    public void SampleNow()
    {
        var now = _time.GetUtcNow();
        var listed = _groups.ListGroups();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var g in listed)
        {
            if (seen.Count >= _maxGroups) break;
            seen.Add(g.GroupId);
            var (records, seconds) = GroupLag.Totals(GroupLagReader.Read(_groups, _logs, g.GroupId), now);
            Ring? ring;
            lock (_rings)
                if (!_rings.TryGetValue(g.GroupId, out ring)) _rings[g.GroupId] = ring = new Ring(_capacity);
            ring.Add(new LagSample(now, records, seconds));
        }
        lock (_rings)
            foreach (var gone in _rings.Keys.Where(k => !seen.Contains(k)).ToList()) _rings.Remove(gone);
    }

    /// <summary>The group's samples within the history window, oldest first; empty when it has none.</summary>
    public IReadOnlyList<LagSample> HistoryOf(string groupId)
    {
        Ring? ring;
        lock (_rings) ring = _rings.GetValueOrDefault(groupId);
        if (ring is null) return [];
        var since = _time.GetUtcNow() - _history;
        return ring.Snapshot().Where(s => s.Time >= since).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        if (_loop is not null) await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }

    /// <summary>A fixed-capacity ring of samples: the oldest is overwritten once it is full.</summary>
    private sealed class Ring(int capacity)
    {
        private readonly LagSample[] _items = new LagSample[capacity];
        private int _next;
        private int _count;

        public void Add(LagSample sample)
        {
            lock (_items)
            {
                _items[_next] = sample;
                _next = (_next + 1) % _items.Length;
                if (_count < _items.Length) _count++;
            }
        }

        public LagSample[] Snapshot()
        {
            lock (_items)
            {
                var result = new LagSample[_count];
                int first = (_next - _count + _items.Length) % _items.Length;
                for (int i = 0; i < _count; i++) result[i] = _items[(first + i) % _items.Length];
                return result;
            }
        }
    }
}
