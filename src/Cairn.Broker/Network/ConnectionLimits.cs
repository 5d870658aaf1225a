namespace Cairn.Broker.Network;

/// <summary>
/// Limits of the Kafka listener (Kafka's setting names). Defaults are the broker's defaults except
/// <see cref="MaxConnections"/>, which the broker derives from the open file limit (<see cref="BrokerOptions.MaxConnections"/>).
/// </summary>
internal sealed record ConnectionLimits
{
    /// <summary>max.connections: open connections at most; more are closed at once after accept.</summary>
    public int MaxConnections { get; init; } = int.MaxValue;

    /// <summary>max.connections.per.ip: open connections from one address at most (Kafka's default: unlimited).</summary>
    public int MaxConnectionsPerIp { get; init; } = int.MaxValue;

    /// <summary>queued.max.request.bytes: bytes of request frames being received or handled, across connections; 0 or less: unlimited.</summary>
    public long QueuedMaxRequestBytes { get; init; } = BrokerOptions.DefaultQueuedMaxRequestBytes;

    /// <summary>connections.max.idle.ms: a connection with nothing received and no request in flight this long is closed; infinite: never.</summary>
    public TimeSpan IdleTimeout { get; init; } = BrokerOptions.DefaultConnectionsMaxIdle;

    /// <summary>request.frame.timeout.ms: a frame must be received whole this long after its first byte; infinite: no limit.</summary>
    public TimeSpan FrameTimeout { get; init; } = BrokerOptions.DefaultRequestFrameTimeout;
}

/// <summary>Why a connection was refused: the <c>reason</c> label of cairn_connections_refused_total.</summary>
internal enum RefusedReason { MaxConnections, MaxConnectionsPerIp }

/// <summary>Why a connection was closed by a clock: the <c>reason</c> label of cairn_connections_timed_out_total.</summary>
internal enum TimeoutReason { Idle, FrameTimeout }

/// <summary>The rate-limited warning lines of a server (<see cref="RateLimitedLog"/> slots).</summary>
internal enum ServerWarning { AcceptFailed, Refused }
