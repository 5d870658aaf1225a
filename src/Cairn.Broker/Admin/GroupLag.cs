using Cairn.Admin.Model;
using Cairn.Broker.Groups;

namespace Cairn.Broker.Admin;

/// <summary>Lag arithmetic shared by the JSON API, the metrics and the lag sampler.</summary>
internal static class GroupLag
{
    /// <summary>
    /// How old the first unconsumed record is: now minus the timestamp of the record at the committed offset;
    /// 0 when the group is caught up (or the record's timestamp is in the future).
    /// </summary>
    public static double LagSeconds(PartitionLag lag, DateTimeOffset now) =>
        lag.Lag > 0 && lag.CommittedRecordTimestamp is { } ts ? Math.Max(0, (now - ts).TotalSeconds) : 0;

    /// <summary>Records still to consume after <paramref name="committed"/>; the command line's lag uses the same <see cref="LagMath"/>.</summary>
    public static long Records(long committed, long logStart, long logEnd) => LagMath.Records(committed, logStart, logEnd);

    /// <summary>A group's total lag in records and its largest lag in seconds.</summary>
    public static (long Records, double Seconds) Totals(IReadOnlyList<PartitionLag> lags, DateTimeOffset now)
    {
        long records = 0;
        double seconds = 0;
        foreach (var l in lags)
        {
            records += l.Lag;
            seconds = Math.Max(seconds, LagSeconds(l, now));
        }
        return (records, seconds);
    }
}
