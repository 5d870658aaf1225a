namespace Cairn.Offsets;

/// <summary>What an <see cref="OffsetTracker"/> does when nothing is stored for a source.</summary>
public enum OffsetResetPolicy
{
    /// <summary>Start from the oldest position the source has (<see cref="Offset.Earliest"/>). The default.</summary>
    Earliest,
    /// <summary>Start after the newest record (<see cref="Offset.Latest"/>): only what arrives from now on.</summary>
    Latest,
    /// <summary>Fail with <see cref="OffsetNotFoundException"/>.</summary>
    None,
}

/// <summary>
/// When an <see cref="OffsetTracker"/> writes recorded offsets to its store: after every record (<see cref="Auto"/>),
/// after N records (<see cref="EveryN"/>), when the oldest uncommitted record is a given age (<see cref="Interval"/>),
/// whichever of the two comes first (<see cref="FirstOf"/>), or only when told (<see cref="Manual"/>). Disposing a
/// tracker always commits what is pending.
/// </summary>
public sealed record CommitStrategy
{
    private CommitStrategy(int? recordCount, TimeSpan? timeInterval)
    {
        RecordCount = recordCount;
        TimeInterval = timeInterval;
    }

    /// <summary>Commit once this many records (recorded or completed, across all sources) are uncommitted; null: no count trigger.</summary>
    public int? RecordCount { get; }

    /// <summary>Commit once the oldest uncommitted record is this old; null: no time trigger.</summary>
    public TimeSpan? TimeInterval { get; }

    /// <summary>Only explicit CommitAsync/CommitAllAsync (and dispose) commit.</summary>
    public bool IsManual => RecordCount is null && TimeInterval is null;

    /// <summary>Commit every record as it is recorded (the default): nothing is ever re-processed, at a store write per record.</summary>
    public static CommitStrategy Auto { get; } = new(1, null);

    /// <summary>Never commit on its own.</summary>
    public static CommitStrategy Manual { get; } = new(null, null);

    /// <summary>Commit every source once <paramref name="records"/> records are uncommitted.</summary>
    public static CommitStrategy EveryN(int records)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(records, 1);
        return new(records, null);
    }

    /// <summary>Commit every source once the oldest uncommitted record is <paramref name="interval"/> old (a timer fires then, records or not).</summary>
    public static CommitStrategy Interval(TimeSpan interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        return new(null, interval);
    }

    /// <summary>Commit after <paramref name="records"/> records or <paramref name="interval"/>, whichever comes first.</summary>
    public static CommitStrategy FirstOf(int records, TimeSpan interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(records, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        return new(records, interval);
    }

    public override string ToString() => (RecordCount, TimeInterval) switch
    {
        (null, null) => "Manual",
        (1, _) => "Auto",
        ({ } n, null) => $"EveryN({n})",
        (null, { } t) => $"Interval({t})",
        ({ } n, { } t) => $"FirstOf({n}, {t})",
    };
}

public sealed class OffsetTrackerOptions
{
    public CommitStrategy CommitStrategy { get; set; } = CommitStrategy.Auto;

    public OffsetResetPolicy ResetPolicy { get; set; } = OffsetResetPolicy.Earliest;

    /// <summary>The clock for <see cref="CommitStrategy.Interval"/> (tests pass a manual one); null: <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? TimeProvider { get; set; }
}
