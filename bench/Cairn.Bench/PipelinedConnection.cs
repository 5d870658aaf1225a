using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Bench;

/// <summary>One response frame (after the size prefix), in a pooled buffer; Dispose returns the buffer.</summary>
public sealed class Response : IDisposable
{
    private byte[]? _buffer;

    internal Response(byte[] buffer, int length, int bodyOffset, long sentTimestamp, long receivedTimestamp)
    {
        _buffer = buffer;
        Length = length;
        BodyOffset = bodyOffset;
        SentTimestamp = sentTimestamp;
        ReceivedTimestamp = receivedTimestamp;
    }

    /// <summary>Frame length (header + body), i.e. the size prefix value.</summary>
    public int Length { get; }
    public int BodyOffset { get; }
    public long SentTimestamp { get; }
    public long ReceivedTimestamp { get; }
    public double LatencyMs => Stopwatch.GetElapsedTime(SentTimestamp, ReceivedTimestamp).TotalMilliseconds;

    public ReadOnlyMemory<byte> Body => (_buffer ?? throw new ObjectDisposedException(nameof(Response))).AsMemory(BodyOffset, Length - BodyOffset);

    public T Read<T>(short version) where T : class, new() => MessageSerializer.Read<T>(Body, version);

    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is not null) ArrayPool<byte>.Shared.Return(b);
    }
}

/// <summary>
/// A minimal pipelined Kafka connection: requests get increasing correlation ids and are written in order;
/// a reader loop matches responses (which Kafka returns in request order) to them. The caller bounds the
/// number in flight: <see cref="SendAsync"/> returns once the request is on the wire, with a task for the response.
/// </summary>
public sealed class PipelinedConnection : IAsyncDisposable
{
    private sealed record Pending(RequestHeader Header, long SentTimestamp, TaskCompletionSource<Response> Completion);

    private readonly Socket _socket;
    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _readLoop;
    private readonly KafkaWriter _header = new(256);
    private readonly string _clientId;
    private int _nextCorrelationId;
    private Exception? _failure;

    private PipelinedConnection(Socket socket, string clientId)
    {
        _socket = socket;
        _clientId = clientId;
        _readLoop = Task.Run(ReadLoopAsync);
    }

    public static async Task<PipelinedConnection> ConnectAsync(IPEndPoint endPoint, string clientId = "cairn-bench", CancellationToken ct = default)
    {
        if (!IPAddress.IsLoopback(endPoint.Address)) throw new ArgumentException($"only loopback addresses are allowed, got {endPoint}");
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.SendBufferSize = 4 * 1024 * 1024;
        socket.ReceiveBufferSize = 4 * 1024 * 1024;
        try
        {
            await socket.ConnectAsync(endPoint, ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new PipelinedConnection(socket, clientId);
    }

    /// <summary>
    /// Writes one request (header encoded here, <paramref name="body"/> encoded by the caller, typically once and reused)
    /// and returns when it has been sent. The returned task completes with its response.
    /// </summary>
    public async ValueTask<Task<Response>> SendAsync(ApiKey apiKey, short version, ReadOnlyMemory<byte> body, CancellationToken ct = default)
    {
        await _sendLock.WaitAsync(ct);
        try
        {
            if (_failure is not null) throw new IOException("connection failed", _failure);
            var header = new RequestHeader(apiKey, version, ++_nextCorrelationId, _clientId);
            _header.Reset();
            _header.Advance(4);
            header.Write(_header);
            _header.PatchInt32(0, _header.Position - 4 + body.Length);

            var completion = new TaskCompletionSource<Response>(TaskCreationOptions.RunContinuationsAsynchronously);
            long sent = Stopwatch.GetTimestamp();
            // Queued before the bytes leave, so the reader always finds the request its response belongs to.
            if (!_pending.Writer.TryWrite(new Pending(header, sent, completion))) throw new IOException("connection closed");

            if (!MemoryMarshal.TryGetArray(_header.WrittenMemory, out var headerSegment) || !MemoryMarshal.TryGetArray(body, out var bodySegment))
                throw new InvalidOperationException("request buffers must be array-backed");
            var segments = new List<ArraySegment<byte>>(2) { headerSegment };
            if (bodySegment.Count > 0) segments.Add(bodySegment);
            int total = headerSegment.Count + bodySegment.Count;
            int n = await _socket.SendAsync(segments, SocketFlags.None);
            if (n != total)
            {
                // A stream socket's gathered send completes fully or fails; be explicit rather than corrupt the stream.
                throw new IOException($"short send: {n} of {total} bytes");
            }
            return completion.Task;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Fail(e);
            throw;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Sends one request encoded with the project's codec and awaits its decoded response (not pipelined; for setup calls).</summary>
    public async Task<TResponse> CallAsync<TRequest, TResponse>(ApiKey apiKey, short version, TRequest request, CancellationToken ct = default)
        where TRequest : class, new() where TResponse : class, new()
    {
        var body = Encode(request, version);
        var task = await SendAsync(apiKey, version, body, ct);
        using var response = await task.WaitAsync(TimeSpan.FromSeconds(30), ct);
        return response.Read<TResponse>(version);
    }

    /// <summary>Encodes a request body once into its own array (so it can be re-sent any number of times).</summary>
    public static byte[] Encode<T>(T request, short version) where T : class, new()
    {
        using var w = new KafkaWriter(1024);
        MessageSerializer.Write(w, request, version);
        return w.WrittenSpan.ToArray();
    }

    private async Task ReadLoopAsync()
    {
        var sizeBuffer = new byte[4];
        try
        {
            while (true)
            {
                if (!await ReceiveExactlyAsync(sizeBuffer)) throw new IOException("connection closed by peer");
                int size = BinaryPrimitives.ReadInt32BigEndian(sizeBuffer);
                if (size < 4 || size > 256 * 1024 * 1024) throw new IOException($"response frame size {size} is out of range");
                var buffer = ArrayPool<byte>.Shared.Rent(size);
                try
                {
                    if (!await ReceiveExactlyAsync(buffer.AsMemory(0, size))) throw new IOException("connection closed by peer mid-frame");
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }
                long received = Stopwatch.GetTimestamp();
                if (!_pending.Reader.TryRead(out var pending))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw new IOException("response received with no request in flight");
                }
                var reader = new KafkaReader(buffer.AsMemory(0, size));
                int correlationId;
                try
                {
                    correlationId = pending.Header.ReadResponseHeader(reader);
                }
                catch (Exception e)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    pending.Completion.TrySetException(e);
                    throw;
                }
                if (correlationId != pending.Header.CorrelationId)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    var e = new IOException($"{pending.Header.ApiKey} response correlation id {correlationId}, expected {pending.Header.CorrelationId}");
                    pending.Completion.TrySetException(e);
                    throw e;
                }
                pending.Completion.TrySetResult(new Response(buffer, size, reader.Position, pending.SentTimestamp, received));
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private async ValueTask<bool> ReceiveExactlyAsync(Memory<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int n = await _socket.ReceiveAsync(destination, SocketFlags.None, _closing.Token);
            if (n == 0) return false;
            destination = destination[n..];
        }
        return true;
    }

    private void Fail(Exception e)
    {
        if (Interlocked.CompareExchange(ref _failure, e, null) is null)
        {
            _pending.Writer.TryComplete();
            try { _socket.Shutdown(SocketShutdown.Both); } catch { }
        }
        while (_pending.Reader.TryRead(out var p))
            p.Completion.TrySetException(new IOException($"{p.Header.ApiKey} request {p.Header.CorrelationId} failed: {_failure!.Message}", _failure));
    }

    public async ValueTask DisposeAsync()
    {
        _closing.Cancel();
        Fail(new ObjectDisposedException(nameof(PipelinedConnection)));
        _socket.Dispose();
        try { await _readLoop.WaitAsync(TimeSpan.FromSeconds(5)); } catch { }
        _header.Dispose();
        _closing.Dispose();
    }
}
