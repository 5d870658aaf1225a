using System.Diagnostics;
using System.Numerics;

namespace Cairn.Bench.RealClient;

/// <summary>
/// A fixed-bucket latency histogram in microseconds, laid out like HdrHistogram with 2 significant digits: values below
/// 128 µs have a bucket each, larger values fall into 64 sub-buckets per power of two (at most 1/64 relative error).
/// Recording is one Interlocked.Increment on a preallocated array: no allocation per message, safe from the delivery
/// report threads of several producers at once.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int Linear = 128;
    private const int SubBuckets = 64;
    private const int MaxShift = 32; // up to ~2^38 µs: far beyond any phase's time cap

    private readonly long[] _counts = new long[Linear + MaxShift * SubBuckets];
    private long _count;
    private long _maxMicros;

    public long Count => Volatile.Read(ref _count);
    public long MaxMicros => Volatile.Read(ref _maxMicros);

    /// <summary>Records the time from <paramref name="startTimestamp"/> (Stopwatch.GetTimestamp) to now.</summary>
    public void RecordSince(long startTimestamp) =>
        RecordMicros((long)((Stopwatch.GetTimestamp() - startTimestamp) * 1_000_000.0 / Stopwatch.Frequency));

    public void RecordMicros(long micros)
    {
        if (micros < 0) micros = 0;
        Interlocked.Increment(ref _counts[IndexOf(micros)]);
        Interlocked.Increment(ref _count);
        long max;
        while (micros > (max = Volatile.Read(ref _maxMicros)) && Interlocked.CompareExchange(ref _maxMicros, micros, max) != max) { }
    }

    private static int IndexOf(long micros)
    {
        if (micros < Linear) return (int)micros;
        int msb = 63 - BitOperations.LeadingZeroCount((ulong)micros); // >= 7
        int shift = Math.Min(msb - 6, MaxShift);
        long top = Math.Min(micros >> shift, 2 * SubBuckets - 1); // in [64, 127]
        return Linear + (shift - 1) * SubBuckets + (int)(top - SubBuckets);
    }

    /// <summary>The upper end of a bucket, in µs: a percentile is never reported lower than it was.</summary>
    private static long UpperOf(int index)
    {
        if (index < Linear) return index;
        int shift = (index - Linear) / SubBuckets + 1;
        long top = (index - Linear) % SubBuckets + SubBuckets;
        return ((top + 1) << shift) - 1;
    }

    /// <summary>The value below or at which <paramref name="quantile"/> of the recorded values lie, in milliseconds; null when empty.</summary>
    public double? PercentileMs(double quantile)
    {
        long total = Count;
        if (total == 0) return null;
        long rank = Math.Max(1, (long)Math.Ceiling(quantile * total));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank) return Math.Min(UpperOf(i), MaxMicros) / 1000.0;
        }
        return MaxMicros / 1000.0;
    }

    /// <summary>Adds another histogram's counts (pooling producers or rounds).</summary>
    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        _count += other._count;
        _maxMicros = Math.Max(_maxMicros, other._maxMicros);
    }
}
