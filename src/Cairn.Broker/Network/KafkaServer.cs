using System.Net;
using System.Net.Sockets;
using Cairn.Broker.Handlers;
using Cairn.Broker.Metrics;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>Accepts TCP connections and runs one <see cref="KafkaConnection"/> loop per connection.</summary>
internal sealed class KafkaServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly ILogger _logger;
    private readonly int _maxRequestBytes;
    private readonly MalformedRequestLog _malformed;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<long, Task> _connections = new();
    private Task? _acceptLoop;
    private long _nextConnectionId;

    /// <summary>
    /// Serves on <paramref name="listener"/>, a socket from <see cref="BindExclusive"/>: the broker binds before it builds
    /// what the handlers need (they need the bound port), and the server takes ownership of the socket.
    /// </summary>
    public KafkaServer(Socket listener, HandlerRegistry handlers, int maxRequestBytes, ILogger logger, BrokerMetrics? metrics = null)
    {
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

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException e)
            {
                _logger.LogWarning("accept failed: {Error}", e.SocketErrorCode);
                continue;
            }
            socket.NoDelay = true;
            long id = Interlocked.Increment(ref _nextConnectionId);
            var connection = new KafkaConnection(id, socket, Handlers, _maxRequestBytes, _logger, _malformed, Metrics);
            lock (_connections) _connections[id] = RunConnectionAsync(id, connection);
        }
    }

    private async Task RunConnectionAsync(long id, KafkaConnection connection)
    {
        await Task.Yield();
        try
        {
            await connection.RunAsync(_stopping.Token);
        }
        finally
        {
            lock (_connections) _connections.Remove(id);
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
