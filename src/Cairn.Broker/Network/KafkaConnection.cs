using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Cairn.Broker.Handlers;
using Cairn.Broker.Metrics;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>
/// One client connection. Frames are handled one at a time, so responses go out in request order (Kafka likewise mutes
/// a connection while a request is in flight). Small frames are parsed in place from a pooled read buffer that the
/// connection holds only while requests flow (it is returned when the socket has nothing more to read); a frame larger than it is received straight into a buffer of its
/// own size (<see cref="NativeFrameBuffer"/>, freed when the request is done), so produce payloads are copied from the
/// socket once. Every frame's size is reserved in the server's <see cref="RequestMemoryBudget"/> before its body is read
/// and released once its response is sent. Two clocks run outside requests: connections.max.idle.ms while waiting for
/// the next frame, and request.frame.timeout.ms from a frame's first byte until its last. Either is armed only when a
/// receive has to wait, so pipelined requests whose bytes have already arrived cost no timer updates.
/// </summary>
internal sealed class KafkaConnection(
    long id, Socket socket, HandlerRegistry handlers, int maxRequestBytes, ILogger logger, MalformedRequestLog malformed, BrokerMetrics? metrics = null,
    ConnectionLimits? limits = null, RequestMemoryBudget? budget = null)
{
    private const int ReadBufferSize = 64 * 1024;
    private const int MinimumFrameSize = 8; // api key, version, correlation id
    private const int ResponseBufferSize = 4096;
    private const int ResponseBufferKeepLimit = 4 * 1024 * 1024;

    private readonly ConnectionInfo _info = new(id, socket.RemoteEndPoint?.ToString() ?? "unknown",
        "/" + ((socket.RemoteEndPoint as System.Net.IPEndPoint)?.Address.ToString() ?? "unknown"));
    private readonly ConnectionLimits _limits = limits ?? new ConnectionLimits();
    private byte[]? _buffer;
    private int _start;
    private int _end;
    private KafkaWriter? _response;
    private CancellationTokenSource? _deadline;
    private long _frameStarted;
    private TimeoutReason? _armed;

    public async Task RunAsync(CancellationToken stopping)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _deadline = deadline;
        var reading = deadline.Token;
        try
        {
            socket.Blocking = false; // for TryReceiveWaiting; receives that wait are asynchronous either way
            while (!stopping.IsCancellationRequested)
            {
                if (_start == _end && !TryReceiveWaiting())
                {
                    // Nothing buffered, none waiting in the socket, no request in flight: wait for the next byte without
                    // holding a read or response buffer (a zero-byte receive, as Kestrel does), so thousands of idle
                    // connections cost no buffer memory.
                    ReturnBuffers();
                    var waiting = socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, reading);
                    if (!waiting.IsCompleted) Arm(TimeoutReason.Idle, _limits.IdleTimeout);
                    await waiting;
                    Disarm();
                }
                _frameStarted = Stopwatch.GetTimestamp();
                if (!await FillAsync(4, reading)) return;
                int size = BinaryPrimitives.ReadInt32BigEndian(_buffer!.AsSpan(_start));
                if (size < MinimumFrameSize || size > maxRequestBytes)
                {
                    malformed.Report(MalformedReason.FrameSize, "connection {Id} from {Remote}: frame size {Size} outside [{Min}, {Max}], closing",
                        id, _info.RemoteEndPoint, size, MinimumFrameSize, maxRequestBytes);
                    return;
                }
                long reserved = 0;
                NativeFrameBuffer? large = null;
                try
                {
                    if (budget is not null)
                    {
                        var reserving = budget.ReserveAsync(size, stopping);
                        if (reserving.IsCompleted) reserving.GetAwaiter().GetResult();
                        else
                        {
                            // Waiting for the budget is the broker's doing, not the client's: the frame clock starts afresh after it.
                            Disarm();
                            await reserving;
                            _frameStarted = Stopwatch.GetTimestamp();
                        }
                        reserved = size;
                    }
                    ReadOnlyMemory<byte> frame;
                    if (size + 4 <= ReadBufferSize)
                    {
                        if (!await FillAsync(4 + size, reading)) return;
                        frame = _buffer.AsMemory(_start + 4, size);
                        _start += 4 + size;
                    }
                    else
                    {
                        large = new NativeFrameBuffer(size);
                        var body = large.Memory;
                        int have = _end - _start - 4;
                        _buffer.AsSpan(_start + 4, have).CopyTo(body.Span);
                        _start = _end = 0;
                        ReturnBuffer();
                        while (have < size)
                        {
                            int n = await ReceiveAsync(body[have..], reading);
                            if (n == 0) return;
                            have += n;
                        }
                        frame = body;
                    }
                    Disarm();
                    if (!await ProcessAsync(frame, stopping)) return;
                }
                finally
                {
                    ((IDisposable?)large)?.Dispose();
                    budget?.Release(reserved);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
        catch (Exception e) when (_armed is { } reason && deadline.IsCancellationRequested && e is OperationCanceledException or SocketException)
        {
            TimedOut(reason);
        }
        catch (SocketException e)
        {
            logger.LogDebug("connection {Id} from {Remote}: {Error}", id, _info.RemoteEndPoint, e.SocketErrorCode);
        }
        catch (Exception e)
        {
            // Client input and socket failures are handled above and in ProcessAsync; what still gets here is a broker bug.
            logger.LogError(e, "connection {Id} from {Remote} failed, closing", id, _info.RemoteEndPoint);
        }
        finally
        {
            _deadline = null;
            ReturnBuffers();
            socket.Dispose();
        }
    }

    private void TimedOut(TimeoutReason reason)
    {
        metrics?.ConnectionTimedOut(reason);
        if (reason == TimeoutReason.Idle)
        {
            // Kafka closes idle connections silently; clients reconnect when they need to.
            logger.LogDebug("connection {Id} from {Remote}: idle for {Idle}, closing", id, _info.RemoteEndPoint, _limits.IdleTimeout);
            return;
        }
        malformed.Report(MalformedReason.FrameTimeout, "connection {Id} from {Remote}: request frame not completed within {Timeout} (request.frame.timeout.ms), closing",
            id, _info.RemoteEndPoint, _limits.FrameTimeout);
    }

    /// <summary>Starts the clock of <paramref name="reason"/>: reads are cancelled when it runs out (infinite: never).</summary>
    private void Arm(TimeoutReason reason, TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            Disarm();
            return;
        }
        _armed = reason;
        _deadline!.CancelAfter(timeout);
    }

    private void Disarm()
    {
        if (_armed is null) return;
        _deadline!.CancelAfter(Timeout.InfiniteTimeSpan);
        _armed = null;
    }

    /// <summary>
    /// Receives part of the current frame. The frame clock (request.frame.timeout.ms from the frame's first byte) is
    /// armed only when the receive has to wait: a frame whose bytes are already in the socket costs no timer update.
    /// </summary>
    private ValueTask<int> ReceiveAsync(Memory<byte> into, CancellationToken reading)
    {
        var receiving = socket.ReceiveAsync(into, SocketFlags.None, reading);
        if (!receiving.IsCompleted && _armed is null && _limits.FrameTimeout != Timeout.InfiniteTimeSpan)
        {
            // Cancelling the token after the receive started still cancels it.
            var left = _limits.FrameTimeout - Stopwatch.GetElapsedTime(_frameStarted);
            Arm(TimeoutReason.FrameTimeout, left > TimeSpan.Zero ? left : TimeSpan.FromTicks(1));
        }
        return receiving;
    }

    /// <summary>
    /// While requests flow the read buffer is kept: after a request, whatever the client has sent meanwhile (pipelined
    /// requests) is read into it at once, without a receive that waits. False when nothing is waiting, or no buffer is held.
    /// </summary>
    private bool TryReceiveWaiting()
    {
        if (_buffer is null) return false;
        _start = _end = 0;
        // The socket is non-blocking (KafkaServer sets it): this returns WouldBlock at once when nothing has arrived.
        int n = socket.Receive(_buffer, SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock) return false;
        if (error != SocketError.Success) throw new SocketException((int)error);
        _end = n; // 0: the peer closed; the next read sees that too
        return true;
    }

    private void ReturnBuffers()
    {
        ReturnBuffer();
        _response?.Dispose();
        _response = null;
    }

    private void ReturnBuffer()
    {
        if (_buffer is null) return;
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
        _start = _end = 0;
    }

    /// <summary>Makes at least <paramref name="count"/> bytes (at most the read buffer's size) available at _start; false when the peer closed.</summary>
    private async ValueTask<bool> FillAsync(int count, CancellationToken reading)
    {
        _buffer ??= ArrayPool<byte>.Shared.Rent(ReadBufferSize);
        if (_end - _start >= count) return true;
        if (_buffer.Length - _start < count)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < count)
        {
            int n = await ReceiveAsync(_buffer.AsMemory(_end), reading);
            if (n == 0) return false;
            _end += n;
        }
        return true;
    }

    /// <summary>
    /// Handles one frame; false means the connection must be closed. Only a request that cannot be understood (bad
    /// header, unknown API or version, undecodable body) or that takes no response closes it, each with one log line
    /// (rate-limited for the former: <see cref="MalformedRequestLog"/>).
    /// A handler that fails, or a response that cannot be written, is answered by the error response for the same
    /// request (<see cref="ErrorPolicy"/>) with one warning line.
    /// </summary>
    private async ValueTask<bool> ProcessAsync(ReadOnlyMemory<byte> frame, CancellationToken stopping)
    {
        long started = Stopwatch.GetTimestamp();
        metrics?.BytesReceived(frame.Length + 4);
        var reader = new KafkaReader(frame);
        RequestHeader header;
        try
        {
            header = RequestHeader.Read(reader);
        }
        catch (MalformedMessageException e)
        {
            malformed.Report(MalformedReason.Header, "connection {Id} from {Remote}: malformed request header ({Error}), closing", id, _info.RemoteEndPoint, e.Message);
            return false;
        }
        var body = frame[reader.Position..];

        var handler = handlers.Get(header.ApiKey);
        if (handler is null)
        {
            malformed.Report(MalformedReason.UnknownApi, "connection {Id} from {Remote}: unknown API key {Key}, closing", id, _info.RemoteEndPoint, (short)header.ApiKey);
            return false;
        }

        try
        {
            object? response;
            short responseVersion = header.ApiVersion;
            var context = new RequestContext(header, _info);
            if (!handler.Versions.Contains(header.ApiVersion))
            {
                if (header.ApiKey != ApiKey.ApiVersions)
                {
                    malformed.Report(MalformedReason.UnsupportedVersion, "connection {Id} from {Remote}: {Api} v{Version} is not supported (serving {Range}), closing",
                        id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, handler.Versions);
                    return false;
                }
                // A client newer than us: answer in v0 with UNSUPPORTED_VERSION and our ranges so it can pick one.
                response = ApiVersionsHandler.UnsupportedVersionResponse(handlers);
                responseVersion = 0;
            }
            else
            {
                try
                {
                    response = await handler.HandleAsync(context, reader, stopping);
                }
                catch (MalformedMessageException e)
                {
                    // The body cannot be decoded: truncated, a bad length, or null (-1) in a field that is not nullable in
                    // this version (NullFieldException). Kafka does not answer such a request: RequestContext.parseRequest
                    // turns the parse failure into an InvalidRequestException and the SocketServer closes the connection,
                    // so clients see a disconnect, not INVALID_REQUEST. Cairn does the same, with one rate-limited warning.
                    malformed.Report(MalformedReason.Body, "connection {Id} from {Remote}: malformed {Api} v{Version} request ({Error}), closing",
                        id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, e.Message);
                    return false;
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    return false;
                }
                catch (Exception e)
                {
                    response = ErrorResponseFor(handler, context, body, e);
                    if (response is null) return false;
                }
            }
            if (response is null) return true;

            if (!WriteFrame(handler, context, body, response, responseVersion)) return false;
            var pending = _response!.WrittenMemory;
            metrics?.BytesSent(pending.Length);
            while (!pending.IsEmpty)
            {
                int sent = await socket.SendAsync(pending, SocketFlags.None, stopping);
                pending = pending[sent..];
            }
            if (_response.Position > ResponseBufferKeepLimit)
            {
                // Do not pin a huge buffer to an idle connection after one large fetch.
                _response.Dispose();
                _response = null;
            }
            return true;
        }
        finally
        {
            metrics?.RequestCompleted(header.ApiKey, started);
        }
    }

    /// <summary>
    /// The error response for a request whose handling failed, logged with one warning line; null (after one line)
    /// when there is none to send: the request takes no response (acks=0, so closing is how the client learns of
    /// it, as in Kafka) or no response could be built for it.
    /// </summary>
    private object? ErrorResponseFor(IApiHandler handler, RequestContext context, ReadOnlyMemory<byte> body, Exception failure)
    {
        var header = context.Header;
        var error = ErrorPolicy.CodeFor(header.ApiKey, failure);
        object? response;
        try
        {
            response = handler.ErrorResponse(context, new KafkaReader(body), error);
        }
        catch (MalformedMessageException e)
        {
            // The handler read the body before failing, so this is rare; it is still the client's bytes, not a broker bug.
            malformed.Report(MalformedReason.Body, "connection {Id} from {Remote}: malformed {Api} v{Version} request ({Error}), closing",
                id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, e.Message);
            return null;
        }
        catch (Exception e)
        {
            logger.LogError(failure, "connection {Id} from {Remote}: {Api} v{Version} request {CorrelationId} from client {ClientId} failed and no error response could be built ({BuildError}), closing",
                id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, header.CorrelationId, header.ClientId, e.Message);
            return null;
        }
        if (response is null)
        {
            logger.LogWarning(failure, "connection {Id} from {Remote}: {Api} v{Version} request {CorrelationId} from client {ClientId} failed and takes no response, closing",
                id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, header.CorrelationId, header.ClientId);
            return null;
        }
        logger.LogWarning(failure, "connection {Id} from {Remote}: {Api} v{Version} request {CorrelationId} from client {ClientId} failed, answering {Error}",
            id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, header.CorrelationId, header.ClientId, error);
        return response;
    }

    /// <summary>
    /// Writes the response frame into the response buffer; nothing reaches the socket before it is complete. Records
    /// that cannot be read (a failing segment file) fail only the partition holding them, and the frame is written
    /// again without them; any other failure to write is answered with the error response. False: nothing can be sent.
    /// </summary>
    private bool WriteFrame(IApiHandler handler, RequestContext context, ReadOnlyMemory<byte> body, object response, short version)
    {
        var header = context.Header;
        bool replaced = false;
        // Each pass either succeeds, takes one unreadable payload out of the response, or replaces the response once: it ends.
        _response ??= new KafkaWriter(ResponseBufferSize);
        while (true)
        {
            _response.Reset();
            _response.Advance(4);
            header.WriteResponseHeader(_response);
            Exception failure;
            try
            {
                handler.WriteResponse(_response, response, version);
                _response.PatchInt32(0, _response.Position - 4);
                return true;
            }
            catch (RecordsUnreadableException e)
            {
                if (ErrorResponses.FailPartHolding(response, e.Records, ErrorPolicy.UnreadableRecords))
                {
                    logger.LogWarning(e.InnerException, "connection {Id} from {Remote}: {Api} v{Version} request {CorrelationId} from client {ClientId}: stored records could not be read, answering {Error} for their partition",
                        id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, header.CorrelationId, header.ClientId, ErrorPolicy.UnreadableRecords);
                    continue;
                }
                failure = e;
            }
            catch (Exception e)
            {
                failure = e;
            }
            if (replaced)
            {
                logger.LogError(failure, "connection {Id} from {Remote}: {Api} v{Version} request {CorrelationId} from client {ClientId}: the error response could not be written, closing",
                    id, _info.RemoteEndPoint, header.ApiKey, header.ApiVersion, header.CorrelationId, header.ClientId);
                return false;
            }
            var errorResponse = ErrorResponseFor(handler, context, body, failure);
            if (errorResponse is null) return false;
            response = errorResponse;
            replaced = true;
        }
    }
}
