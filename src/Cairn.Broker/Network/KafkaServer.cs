using System.Net;
using System.Net.Sockets;
using Cairn.Broker.Handlers;
using Cairn.Broker.Metrics;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>
/// Accepts TCP connections and runs one <see cref="KafkaConnection"/> loop per connection, within the listener's
/// <see cref="ConnectionLimits"/>: connections over max.connections or max.connections.per.ip are closed at once after
/// accept (as Kafka does), and a failing accept (out of descriptors or socket buffers) backs off instead of spinning.
/// </summary>
internal sealed class KafkaServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly ILogger _logger;
    private readonly int _maxRequestBytes;
    private readonly MalformedRequestLog _malformed;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<long, Task> _connections = new();
    private readonly Dictionary<IPAddress, int> _perAddress = new();
    private readonly ConnectionLimits _limits;
    private readonly RequestMemoryBudget? _budget;
    private readonly RateLimitedLog _warnings;
    private Task? _acceptLoop;
    private long _nextConnectionId;

    /// <summary>
    /// Serves on <paramref name="listener"/>, a socket from <see cref="BindExclusive"/>: the broker binds before it builds
    /// what the handlers need (they need the bound port), and the server takes ownership of the socket.
    /// </summary>
    public KafkaServer(Socket listener, HandlerRegistry handlers, int maxRequestBytes, ILogger logger, BrokerMetrics? metrics = null, ConnectionLimits? limits = null)
    {
        _limits = limits ?? new ConnectionLimits();
        if (_limits.QueuedMaxRequestBytes > 0)
        {
            if (_limits.QueuedMaxRequestBytes < maxRequestBytes)
                throw new ArgumentException($"queued.max.request.bytes ({_limits.QueuedMaxRequestBytes}) must be at least max.request.bytes ({maxRequestBytes})");
            _budget = new RequestMemoryBudget(_limits.QueuedMaxRequestBytes);
            if (metrics is not null) metrics.QueuedRequestBytes = () => _budget.InUse;
        }
        _warnings = new RateLimitedLog(logger, Enum.GetValues<ServerWarning>().Length);
        Metrics = metrics;
        Handlers = handlers;
        _logger = logger;
        _maxRequestBytes = maxRequestBytes;
        _malformed = new MalformedRequestLog(logger, metrics);
        _listener = listener;
        LocalEndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    /// <summary>
    /// Binds a listening socket that no other process can share. Not SocketOptionName.ReuseAddress: on Linux .NET maps it
    /// to SO_REUSEADDR and SO_REUSEPORT, and SO_REUSEPORT lets a second broker listen on the same port (the kernel then
    /// spreads connections across both). SO_REUSEADDR alone still allows a restart while old connections sit in TIME_WAIT.
    /// Throws <see cref="IOException"/> "cannot listen on HOST:PORT: reason".
    /// </summary>
    internal static Socket BindExclusive(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (OperatingSystem.IsLinux())
                socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            else if (OperatingSystem.IsWindows())
                socket.ExclusiveAddressUse = true;
            socket.Bind(endpoint);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"cannot listen on {endpoint}: {ListenError(e)}", e);
        }
    }

    private const int SolSocket = 1, SoReuseAddr = 2; // <sys/socket.h> on Linux

    /// <summary>The reason a bind failed, in the words of the C library (and Kafka's "Address already in use").</summary>
    internal static string ListenError(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use",
        SocketError.AccessDenied => "permission denied",
        SocketError.AddressNotAvailable => "address not available on this machine",
        _ => e.Message.ToLowerInvariant(),
    };

    public IPEndPoint LocalEndPoint { get; }
    public HandlerRegistry Handlers { get; }
    public BrokerMetrics? Metrics { get; }
    public int ActiveConnections { get { lock (_connections) return _connections.Count; } }

    public void Start()
    {
        _listener.Listen(512);
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>First and longest pause after a failed accept; the pause doubles from the first to the longest, and a successful accept resets it.</summary>
    internal static readonly TimeSpan AcceptBackoffMin = TimeSpan.FromMilliseconds(10), AcceptBackoffMax = TimeSpan.FromSeconds(1);

    private async Task AcceptLoopAsync()
    {
        var backoff = TimeSpan.Zero;
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                continue; // the client gave up while queued: that connection is gone, the next one is not affected
            }
            catch (SocketException e)
            {
                // EMFILE/ENFILE (TooManyOpenSockets), ENOBUFS/ENOMEM (NoBufferSpaceAvailable) and the like: retrying at
                // once fails again at once (and the pending connection stays queued), so pause, and say so at most once
                // a second.
                backoff = backoff == TimeSpan.Zero ? AcceptBackoffMin : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, AcceptBackoffMax.Ticks));
                _warnings.Warn((int)ServerWarning.AcceptFailed, "accept failed: {Error} ({Message}), {Connections} connections open; retrying in {Backoff} ms",
                    e.SocketErrorCode, e.Message, ActiveConnections, (int)backoff.TotalMilliseconds);
                try { await Task.Delay(backoff, _stopping.Token); }
                catch (OperationCanceledException) { break; }
                continue;
            }
            backoff = TimeSpan.Zero;
            Admit(socket);
        }
    }

    /// <summary>Runs a connection for <paramref name="socket"/>, or closes it at once when a connection limit is reached.</summary>
    private void Admit(Socket socket)
    {
        var address = (socket.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        RefusedReason? refused = null;
        int open;
        long id = Interlocked.Increment(ref _nextConnectionId);
        lock (_connections)
        {
            open = _connections.Count;
            _perAddress.TryGetValue(address, out int fromAddress);
            if (open >= _limits.MaxConnections) refused = RefusedReason.MaxConnections;
            else if (fromAddress >= _limits.MaxConnectionsPerIp) refused = RefusedReason.MaxConnectionsPerIp;
            else
            {
                _perAddress[address] = fromAddress + 1;
                // Registered before it runs so that the count is right for the next accept; started below, outside the lock.
                _connections[id] = Task.CompletedTask;
            }
        }
        if (refused is { } reason)
        {
            socket.Dispose();
            Metrics?.ConnectionRefused(reason);
            _warnings.Warn((int)ServerWarning.Refused, "connection from {Remote} refused: {Limit} ({Max}) reached, {Connections} connections open",
                address, reason == RefusedReason.MaxConnections ? "max.connections" : "max.connections.per.ip",
                reason == RefusedReason.MaxConnections ? _limits.MaxConnections : _limits.MaxConnectionsPerIp, open);
            return;
        }
        try
        {
            socket.NoDelay = true;
        }
        catch (SocketException) { } // reset already: the connection's first read will say so
        var connection = new KafkaConnection(id, socket, Handlers, _maxRequestBytes, _logger, _malformed, Metrics, _limits, _budget);
        var running = RunConnectionAsync(id, address, connection);
        lock (_connections)
        {
            if (_connections.ContainsKey(id)) _connections[id] = running;
        }
    }

    private async Task RunConnectionAsync(long id, IPAddress address, KafkaConnection connection)
    {
        await Task.Yield();
        try
        {
            await connection.RunAsync(_stopping.Token);
        }
        finally
        {
            lock (_connections)
            {
                _connections.Remove(id);
                if (_perAddress.TryGetValue(address, out int n) && n > 1) _perAddress[address] = n - 1;
                else _perAddress.Remove(address);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _listener.Dispose();
        if (_acceptLoop is not null) await _acceptLoop;
        Task[] running;
        lock (_connections) running = _connections.Values.ToArray();
        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }
}
