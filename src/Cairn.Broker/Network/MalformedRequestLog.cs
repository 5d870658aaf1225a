using Cairn.Broker.Metrics;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>Why a request was refused before any handler saw it: the bounded <c>reason</c> label of the malformed-request metric.</summary>
internal enum MalformedReason { FrameSize, Header, UnknownApi, UnsupportedVersion, Body }

/// <summary>
/// Reports requests the broker cannot understand. Every one is counted; at most one warning line per reason per
/// interval is written, and the next line says how many were left out, so a client (or an attacker) sending garbage
/// cannot flood the log. Shared by all connections of a server.
/// </summary>
internal sealed class MalformedRequestLog(ILogger logger, BrokerMetrics? metrics, TimeProvider? time = null)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly object _lock = new();
    private readonly (long LastLogged, long Suppressed)[] _byReason = new (long, long)[Enum.GetValues<MalformedReason>().Length];

    /// <summary>Counts one malformed request; writes <paramref name="template"/> as a warning unless one of the same reason was written within the interval.</summary>
    public void Report(MalformedReason reason, string template, params object?[] args)
    {
        metrics?.MalformedRequest(reason);
        long suppressed;
        lock (_lock)
        {
            ref var state = ref _byReason[(int)reason];
            long now = _time.GetTimestamp();
            if (state.LastLogged != 0 && _time.GetElapsedTime(state.LastLogged, now) < Interval)
            {
                state.Suppressed++;
                return;
            }
            suppressed = state.Suppressed;
            state = (now, 0);
        }
        if (suppressed == 0)
        {
            logger.LogWarning(template, args);
            return;
        }
        logger.LogWarning(template + " ({Suppressed} similar lines left out)", [.. args, suppressed]);
    }
}
