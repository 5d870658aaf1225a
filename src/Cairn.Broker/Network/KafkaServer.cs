using System.Net;
using System.Net.Sockets;
using Cairn.Broker.Handlers;
using Cairn.Broker.Metrics;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>Accepts TCP connections and runs one <see cref="KafkaConnection"/> loop per connection.</summary>
public sealed class KafkaServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly ILogger _logger;
    private readonly int _maxRequestBytes;
    private readonly BrokerMetrics? _metrics;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<long, Task> _connections = new();
    private Task? _acceptLoop;
    private long _nextConnectionId;

    public KafkaServer(IPEndPoint endpoint, HandlerRegistry handlers, int maxRequestBytes, ILogger logger, BrokerMetrics? metrics = null)
    {
        _metrics = metrics;
        Handlers = handlers;
        _logger = logger;
        _maxRequestBytes = maxRequestBytes;
        _listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(endpoint);
        LocalEndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }
    /// <summary>Set before <see cref="Start"/>; handlers need the bound port, so they are built after binding.</summary>
    public HandlerRegistry Handlers { get; set; }
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
            var connection = new KafkaConnection(id, socket, Handlers, _maxRequestBytes, _logger, _metrics);
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
