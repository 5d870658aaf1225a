using Cairn.Broker.Metrics;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>Why a request was refused before any handler saw it: the bounded <c>reason</c> label of the malformed-request metric.</summary>
internal enum MalformedReason { FrameSize, Header, UnknownApi, UnsupportedVersion, Body, FrameTimeout }

/// <summary>
/// Reports requests the broker cannot understand (or, <see cref="MalformedReason.FrameTimeout"/>, that never finished
/// arriving). Every one is counted; at most one warning line per reason per interval is written, and the next line says
/// how many were left out (<see cref="RateLimitedLog"/>), so a client (or an attacker) sending garbage cannot flood the
/// log. Shared by all connections of a server.
/// </summary>
internal sealed class MalformedRequestLog(ILogger logger, BrokerMetrics? metrics, TimeProvider? time = null)
{
    public static readonly TimeSpan Interval = RateLimitedLog.Interval;

    private readonly RateLimitedLog _log = new(logger, Enum.GetValues<MalformedReason>().Length, time);

    /// <summary>Counts one malformed request; writes <paramref name="template"/> as a warning unless one of the same reason was written within the interval.</summary>
    public void Report(MalformedReason reason, string template, params object?[] args)
    {
        metrics?.MalformedRequest(reason);
        _log.Warn((int)reason, template, args);
    }
}
