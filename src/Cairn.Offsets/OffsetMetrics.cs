using System.Diagnostics.Metrics;

namespace Cairn.Offsets;

/// <summary>
/// The "Cairn.Offsets" meter. Instruments (tag <c>cairn.offsets.store</c>: the store's name):
/// <list type="bullet">
/// <item><c>cairn.offsets.commits</c> (counter, {commit}): successful commits.</item>
/// <item><c>cairn.offsets.commit.errors</c> (counter, {commit}): failed commits.</item>
/// <item><c>cairn.offsets.commit.duration</c> (histogram, s): how long each commit took, successful or not.</item>
/// <item><c>cairn.offsets.hook.errors</c> (counter, {error}): post-commit hooks that threw.</item>
/// </list>
/// Recorded by <see cref="InstrumentedOffsetStore"/>.
/// </summary>
public static class OffsetMetrics
{
    public const string MeterName = "Cairn.Offsets";
    public const string StoreTag = "cairn.offsets.store";

    public static Meter Meter { get; } = new(MeterName, typeof(OffsetMetrics).Assembly.GetName().Version?.ToString());

    internal static Counter<long> Commits { get; } =
        Meter.CreateCounter<long>("cairn.offsets.commits", "{commit}", "Offsets committed");

    internal static Counter<long> CommitErrors { get; } =
        Meter.CreateCounter<long>("cairn.offsets.commit.errors", "{commit}", "Offset commits that failed");

    internal static Histogram<double> CommitDuration { get; } =
        Meter.CreateHistogram<double>("cairn.offsets.commit.duration", "s", "Time taken by an offset commit");

    internal static Counter<long> HookErrors { get; } =
        Meter.CreateCounter<long>("cairn.offsets.hook.errors", "{error}", "Post-commit hooks that threw");
}
