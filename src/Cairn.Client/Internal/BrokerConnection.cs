using System.Buffers.Binary;
using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;
using Microsoft.Extensions.Logging;

namespace Cairn.Client.Internal;

/// <summary>The body of one response (after its header): a slice of a frame array owned by nobody else.</summary>
internal readonly record struct ResponseFrame(ReadOnlyMemory<byte> Body, short Version)
{
    public T Read<T>() where T : class, new()
    {
        var reader = new KafkaReader(Body);
        var message = MessageSerializer.Read<T>(reader, Version);
        return message;
    }
}

/// <summary>
/// One TCP connection to one broker. Requests are pipelined: each gets the next correlation id and is written in
/// order; a reader loop matches the responses, which Kafka sends in request order, to the waiting requests.
/// A request that times out fails the whole connection (a later response cannot overtake it), so every request
/// in flight fails with a retriable error and the owner opens a new connection on next use.
/// </summary>
internal sealed class BrokerConnection : IAsyncDisposable
{
    private const int MaxResponseBytes = 1024 * 1024 * 1024;

    private sealed class Pending(RequestHeader header, TaskCompletionSource<ResponseFrame> completion)
    {
        public RequestHeader Header { get; } = header;
        public TaskCompletionSource<ResponseFrame> Completion { get; } = completion;
    }

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly BufferedStream _input;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Queue<Pending> _pending = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly ILogger _logger;
    private readonly string _clientId;
    private readonly TimeSpan _requestTimeout;
    private readonly short[] _versions = new short[128];
    private Task _readLoop = Task.CompletedTask;
    private int _nextCorrelationId;
    private Exception? _failure;

    private BrokerConnection(Socket socket, int nodeId, string host, int port, string clientId, TimeSpan requestTimeout, ILogger logger)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _input = new BufferedStream(_stream, 64 * 1024);
        NodeId = nodeId;
        Host = host;
        Port = port;
        _clientId = clientId;
        _requestTimeout = requestTimeout;
        _logger = logger;
        Array.Fill(_versions, (short)-1);
    }

    public int NodeId { get; }
    public string Host { get; }
    public int Port { get; }
    public string EndPoint => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
    public bool IsAlive => Volatile.Read(ref _failure) is null;
    /// <summary>Requests written whose responses have not arrived yet.</summary>
    public int InFlight { get { lock (_pending) return _pending.Count; } }

    /// <summary>The broker's advertised version range per API key (from ApiVersions).</summary>
    public IReadOnlyDictionary<ApiKey, VersionRange> BrokerVersions { get; private set; } = new Dictionary<ApiKey, VersionRange>();

    /// <summary>Opens the socket and negotiates API versions (ApiVersions, answered with response header v0).</summary>
    public static async Task<BrokerConnection> ConnectAsync(int nodeId, string host, int port, string clientId, TimeSpan requestTimeout,
        IReadOnlyDictionary<ApiKey, short>? maxVersions, ILogger logger, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(requestTimeout);
        try
        {
            await socket.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            socket.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            var endpoint = host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}";
            throw new KafkaException(ErrorCode.NetworkException, e switch
            {
                OperationCanceledException => $"connecting to {endpoint} timed out after {requestTimeout.TotalMilliseconds:0} ms",
                SocketException { SocketErrorCode: SocketError.ConnectionRefused } => $"cannot connect to {endpoint}: connection refused",
                _ => $"cannot connect to {endpoint}: {e.Message}",
            }, e);
        }
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        var connection = new BrokerConnection(socket, nodeId, host, port, clientId, requestTimeout, logger);
        connection._readLoop = Task.Run(connection.ReadLoopAsync);
        try
        {
            await connection.NegotiateVersionsAsync(maxVersions, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return connection;
    }

    private async Task NegotiateVersionsAsync(IReadOnlyDictionary<ApiKey, short>? maxVersions, CancellationToken cancellationToken)
    {
        var declared = MessageCatalog.Request(ApiKey.ApiVersions)!.Versions;
        short version = declared.Max;
        if (maxVersions is not null && maxVersions.TryGetValue(ApiKey.ApiVersions, out var cap)) version = Math.Min(version, cap);
        var request = new ApiVersionsRequest { ClientSoftwareName = CairnVersion.SoftwareName, ClientSoftwareVersion = CairnVersion.SoftwareVersion };
        var frame = await SendAsync(ApiKey.ApiVersions, version, w => MessageSerializer.Write(w, request, version), _requestTimeout, cancellationToken).ConfigureAwait(false);
        // A broker that does not know our version answers with a v0 body carrying UNSUPPORTED_VERSION and its ranges.
        var errorCode = (ErrorCode)BinaryPrimitives.ReadInt16BigEndian(frame.Body.Span);
        var response = errorCode == ErrorCode.UnsupportedVersion
            ? MessageSerializer.Read<ApiVersionsResponse>(frame.Body, 0)
            : frame.Read<ApiVersionsResponse>();
        if (errorCode != ErrorCode.None && errorCode != ErrorCode.UnsupportedVersion)
            throw KafkaException.FromCode(errorCode, $"ApiVersions to {EndPoint}");

        var ranges = new Dictionary<ApiKey, VersionRange>();
        foreach (var api in response.ApiKeys) ranges[(ApiKey)api.ApiKey] = new VersionRange(api.MinVersion, api.MaxVersion);
        BrokerVersions = ranges;
        foreach (var (key, brokerRange) in ranges)
        {
            if ((uint)key >= (uint)_versions.Length) continue;
            var request1 = MessageCatalog.Request(key);
            var response1 = MessageCatalog.Response(key);
            if (request1 is null || response1 is null) continue;
            var common = request1.Versions.Intersect(response1.Versions).Intersect(brokerRange);
            if (maxVersions is not null && maxVersions.TryGetValue(key, out var max)) common = common.Intersect(new VersionRange(0, max));
            if (!common.IsEmpty) _versions[(int)key] = common.Max;
        }
    }

    /// <summary>The highest version of <paramref name="key"/> both sides support, or -1 when there is none.</summary>
    public short GetVersion(ApiKey key) => (uint)key < (uint)_versions.Length ? _versions[(int)key] : (short)-1;

    /// <summary>
    /// Sends one request and waits for its response. <paramref name="writeBody"/> encodes the body; the header is
    /// written here. <paramref name="timeout"/> bounds the wait for the response (on expiry the connection fails).
    /// Cancelling stops the wait; a request already written is still answered, and the answer is discarded.
    /// </summary>
    public async Task<ResponseFrame> SendAsync(ApiKey apiKey, short version, Action<KafkaWriter> writeBody, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var completion = new TaskCompletionSource<ResponseFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
        await WriteAsync(apiKey, version, writeBody, completion, cancellationToken).ConfigureAwait(false);
        try
        {
            return await completion.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var e = new KafkaException(ErrorCode.RequestTimedOut, $"{apiKey} request to {EndPoint} timed out after {timeout.TotalMilliseconds:0} ms");
            Fail(e);
            throw e;
        }
    }

    /// <summary>Writes a request that gets no response (Produce with acks=0).</summary>
    public Task SendWithoutResponseAsync(ApiKey apiKey, short version, Action<KafkaWriter> writeBody, CancellationToken cancellationToken) =>
        WriteAsync(apiKey, version, writeBody, null, cancellationToken);

    private async Task WriteAsync(ApiKey apiKey, short version, Action<KafkaWriter> writeBody, TaskCompletionSource<ResponseFrame>? completion, CancellationToken cancellationToken)
    {
        ThrowIfFailed(apiKey);
        using var writer = new KafkaWriter(512);
        writer.Advance(4);
        // Correlation id 0 for now: it is patched in under the write lock, so encoding happens outside it.
        var placeholder = new RequestHeader(apiKey, version, 0, _clientId);
        placeholder.Write(writer);
        writeBody(writer);
        writer.PatchInt32(0, writer.Position - 4);

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfFailed(apiKey);
            int correlationId = ++_nextCorrelationId;
            if (correlationId == int.MaxValue) _nextCorrelationId = 0;
            writer.PatchInt32(8, correlationId); // size (4) + api key (2) + api version (2)
            if (completion is not null)
            {
                lock (_pending) _pending.Enqueue(new Pending(placeholder with { CorrelationId = correlationId }, completion));
            }
            try
            {
                // Not cancellable: a frame cut in the middle would corrupt the stream for every later request.
                await _stream.WriteAsync(writer.WrittenMemory, _closing.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                var failure = new KafkaException(ErrorCode.NetworkException, $"sending {apiKey} to {EndPoint} failed: {e.Message}", e);
                Fail(failure);
                throw failure;
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void ThrowIfFailed(ApiKey apiKey)
    {
        if (Volatile.Read(ref _failure) is { } failure)
            throw new KafkaException(ErrorCode.NetworkException, $"connection to {EndPoint} is closed ({failure.Message}); {apiKey} not sent", failure);
    }

    private async Task ReadLoopAsync()
    {
        var sizeBuffer = new byte[4];
        var token = _closing.Token;
        try
        {
            while (true)
            {
                await _input.ReadExactlyAsync(sizeBuffer, token).ConfigureAwait(false);
                int size = BinaryPrimitives.ReadInt32BigEndian(sizeBuffer);
                if (size < 4 || size > MaxResponseBytes) throw NotKafka(size);
                // A fresh array per response: decoded messages (records, keys, values) are slices of it.
                var frame = GC.AllocateUninitializedArray<byte>(size);
                await _input.ReadExactlyAsync(frame, token).ConfigureAwait(false);

                Pending? pending;
                lock (_pending) _pending.TryDequeue(out pending);
                if (pending is null) throw new InvalidDataException($"response from {EndPoint} with no request waiting for it");
                var reader = new KafkaReader(frame);
                int correlationId = pending.Header.ReadResponseHeader(reader);
                if (correlationId != pending.Header.CorrelationId)
                    throw new InvalidDataException($"{pending.Header.ApiKey} response from {EndPoint} has correlation id {correlationId}, expected {pending.Header.CorrelationId}");
                pending.Completion.TrySetResult(new ResponseFrame(frame.AsMemory(reader.Position), pending.Header.ApiVersion));
            }
        }
        catch (Exception e)
        {
            bool closing = token.IsCancellationRequested;
            var reason = e switch
            {
                EndOfStreamException => "closed by the broker",
                _ when closing => "closed",
                _ => e.Message,
            };
            // A peer that is not a Kafka broker fails every request with that diagnosis, not as a lost connection.
            Fail(e is KafkaException { Error: ErrorCode.UnknownServerError } notKafka && !closing ? notKafka
                : new KafkaException(ErrorCode.NetworkException, $"connection to {EndPoint} {reason}", closing ? null : e));
        }
    }

    /// <summary>
    /// The error for a response size no Kafka broker sends: most often the address is some other service's, such as
    /// Cairn's admin HTTP port, which answers a Kafka request with "HTTP/1.1 400" (the size 0x48545450 is "HTTP").
    /// Not retriable: asking the same address again gets the same answer.
    /// </summary>
    private KafkaException NotKafka(int size) => new(ErrorCode.UnknownServerError, size == 0x48545450
        ? $"{EndPoint} answered like HTTP; is this the admin port?"
        : $"{EndPoint} did not answer like a Kafka broker (its response announced {size} bytes)");

    /// <summary>Marks the connection failed, closes the socket and fails every request waiting for an answer.</summary>
    public void Fail(Exception reason)
    {
        if (Interlocked.CompareExchange(ref _failure, reason, null) is null)
        {
            if (!_closing.IsCancellationRequested)
                _logger.LogWarning("Connection to broker {NodeId} at {EndPoint} lost: {Reason}", NodeId, EndPoint, reason.Message);
            try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception) { }
            try { _socket.Close(); } catch (Exception) { }
        }
        List<Pending> failed;
        lock (_pending)
        {
            failed = [.. _pending];
            _pending.Clear();
        }
        var failure = _failure!;
        foreach (var p in failed)
            p.Completion.TrySetException(failure is KafkaException { Error: ErrorCode.NetworkException or ErrorCode.RequestTimedOut }
                ? new KafkaException(ErrorCode.NetworkException, $"{p.Header.ApiKey} request to {EndPoint} failed: {failure.Message}", failure)
                : failure);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_closing.IsCancellationRequested) _closing.Cancel();
        Fail(new KafkaException(ErrorCode.NetworkException, $"connection to {EndPoint} closed by the client"));
        try { await _readLoop.ConfigureAwait(false); } catch (Exception) { }
        _input.Dispose();
        _stream.Dispose();
        _socket.Dispose();
    }
}
