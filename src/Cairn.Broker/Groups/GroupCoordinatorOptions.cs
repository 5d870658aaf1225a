namespace Cairn.Broker.Groups;

/// <summary>Group coordinator settings, named after Kafka's broker configs.</summary>
public sealed record GroupCoordinatorOptions
{
    /// <summary>group.min.session.timeout.ms</summary>
    public TimeSpan MinSessionTimeout { get; init; } = TimeSpan.FromSeconds(6);
    /// <summary>group.max.session.timeout.ms</summary>
    public TimeSpan MaxSessionTimeout { get; init; } = TimeSpan.FromMinutes(30);
    /// <summary>group.initial.rebalance.delay.ms: how long the first rebalance of an empty group waits for more members.</summary>
    public TimeSpan InitialRebalanceDelay { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>group.max.size</summary>
    public int MaxGroupSize { get; init; } = int.MaxValue;
    /// <summary>offsets.retention.minutes: how long an empty group's offsets are kept.</summary>
    public TimeSpan OffsetsRetention { get; init; } = TimeSpan.FromDays(7);
    /// <summary>offsets.retention.check.interval.ms</summary>
    public TimeSpan OffsetsRetentionCheckInterval { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>offset.metadata.max.bytes</summary>
    public int MaxOffsetMetadataBytes { get; init; } = 4096;
}
