using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Bench.RealClient;

internal sealed record NullBrokerOptions
{
    /// <summary>Partitions of a topic created without a count: CreateTopics with num_partitions -1, or auto-creation.</summary>
    public int DefaultPartitions { get; init; } = 1;
    /// <summary>
    /// Kafka's auto.create.topics.enable: Metadata for an unknown topic creates it (when the request allows it, v4+).
    /// Off by default: unknown topics answer UNKNOWN_TOPIC_OR_PARTITION until AddTopic or CreateTopics makes them.
    /// </summary>
    public bool AutoCreateTopics { get; init; }
    /// <summary>When set, every Produce appends its records bytes to this file (FileStream, no buffering) before acking.</summary>
    public string? SinkFile { get; init; }
    /// <summary>With <see cref="SinkFile"/>: fsync (Flush(true)) before each acknowledgement (baseline for acks=all + log.flush.on.ack).</summary>
    public bool FsyncOnAck { get; init; }
    /// <summary>A v2 record batch replayed for fetches of partitions nothing was produced to (may be empty: such fetches wait and return no records).</summary>
    public ReadOnlyMemory<byte> FetchBatch { get; init; }
    /// <summary>How long a group waits for more joins after the last new member joined before it completes a rebalance.</summary>
    public TimeSpan JoinWindow { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>Port to listen on (127.0.0.1 only); 0 picks a free one.</summary>
    public int Port { get; init; }
}

/// <summary>
/// The real client's own ceiling: a minimal in-process Kafka endpoint (one broker, node 0, on 127.0.0.1) that speaks
/// the protocol correctly but stores nothing. Produce assigns offsets from a per-partition counter and acknowledges
/// (optionally after appending the records to a sink file); Fetch replays one cached batch with its base offset set to
/// the fetch offset; a small in-memory group coordinator lets consumer groups run. One task per connection reads whole
/// frames into a pooled buffer (read-ahead for small frames, exact reads for large ones, so produce frames are never
/// copied) and answers in order, batching the responses of the requests already buffered into one send.
/// </summary>
internal sealed partial class NullBroker : IAsyncDisposable
{
    private const int MaxFrameBytes = 100 * 1024 * 1024;
    private const int FlushThreshold = 256 * 1024;
    /// <summary>Frames above this size are read exactly to their end; smaller ones (and frame headers) with read-ahead.</summary>
    private const int ExactReadBytes = 64 * 1024;

    private readonly NullBrokerOptions _options;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, Task> _connections = new();
    private readonly ConcurrentDictionary<string, Topic> _topics = new(StringComparer.Ordinal);
    private readonly NullGroupCoordinator _groups;
    private readonly FileStream? _sink;
    private readonly Lock _sinkLock = new();
    private readonly int _port;
    private readonly ReplayBatch? _replayBatch;
    private Task _acceptLoop = Task.CompletedTask;
    private Exception? _error;
    private long _producedBatches, _producedBytes, _fetchedBytes;

    private NullBroker(NullBrokerOptions options)
    {
        if (options.DefaultPartitions < 1) throw new ArgumentOutOfRangeException(nameof(options), "DefaultPartitions must be at least 1");
        if (options.FsyncOnAck && options.SinkFile is null) throw new ArgumentException("FsyncOnAck needs a SinkFile", nameof(options));
        _options = options;
        _replayBatch = ReplayBatch.Of(options.FetchBatch);
        _groups = new NullGroupCoordinator(options.JoinWindow, _stop.Token);
        if (options.SinkFile is not null)
            _sink = new FileStream(options.SinkFile, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0, FileOptions.None);
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, options.Port));
        _listener.Listen(512);
        _port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        BootstrapServers = $"127.0.0.1:{_port}";
    }

    /// <summary>Listens on 127.0.0.1 (ephemeral port) and accepts any number of connections until disposed.</summary>
    public static NullBroker Start(NullBrokerOptions options)
    {
        var broker = new NullBroker(options);
        broker._acceptLoop = Task.Run(broker.AcceptLoopAsync);
        return broker;
    }

    public string BootstrapServers { get; }
    public int Port => _port;
    public long ProducedBatches => Interlocked.Read(ref _producedBatches);
    /// <summary>Bytes of record batches acknowledged (records fields of Produce requests).</summary>
    public long ProducedBytes => Interlocked.Read(ref _producedBytes);
    /// <summary>Bytes of record batches returned by Fetch.</summary>
    public long FetchedBytes => Interlocked.Read(ref _fetchedBytes);
    /// <summary>The first error a connection was closed for (malformed or unsupported request, or a failure here), if any.</summary>
    public Exception? Error => Volatile.Read(ref _error);

    /// <summary>Creates a topic (as CreateTopics does); adding an existing topic with the same count is a no-op.</summary>
    public void AddTopic(string name, int partitions)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        var topic = _topics.GetOrAdd(name, n => new Topic(n, partitions));
        if (topic.Partitions.Length != partitions)
            throw new ArgumentException($"topic {name} already exists with {topic.Partitions.Length} partitions");
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            socket.NoDelay = true;
            socket.SendBufferSize = 4 * 1024 * 1024;
            socket.ReceiveBufferSize = 4 * 1024 * 1024;
            _connections[socket] = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var connection = new Connection(socket);
        try
        {
            await connection.RunAsync(this, _stop.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
        }
        finally
        {
            connection.Dispose();
            socket.Dispose();
            _connections.TryRemove(socket, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Dispose();
        try { await _acceptLoop; } catch { }
        foreach (var socket in _connections.Keys)
        {
            try { socket.Shutdown(SocketShutdown.Both); } catch { }
            socket.Dispose();
        }
        try { await Task.WhenAll(_connections.Values).WaitAsync(TimeSpan.FromSeconds(10)); } catch { }
        _groups.Dispose();
        _sink?.Dispose();
        _stop.Dispose();
    }

    /// <summary>One client connection: frames are read whole into one buffer and answered in order.</summary>
    private sealed class Connection(Socket socket) : IDisposable
    {
        // Small to start (idle connections stay cheap); both grow to the largest frame the connection carries.
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        private readonly KafkaWriter _out = new(4 * 1024);
        private int _start, _end;

        public KafkaWriter Output => _out;

        public async Task RunAsync(NullBroker broker, CancellationToken ct)
        {
            while (true)
            {
                // FillAsync sends the responses written so far before it blocks on the socket; big batches go out at FlushThreshold.
                if (_end - _start < 4 && !await FillAsync(4, ct)) return;
                int size = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start, 4));
                if (size < 10 || size > MaxFrameBytes) throw new MalformedMessageException($"request frame size {size} is out of range");
                int total = size + 4;
                if (_end - _start < total && !await FillAsync(total, ct)) return;

                var frame = _buffer.AsMemory(_start + 4, size);
                await broker.HandleAsync(this, frame, ct);
                _start += total;
                if (_start == _end) _start = _end = 0;
                if (_out.Position >= FlushThreshold) await FlushAsync(ct);
            }
        }

        /// <summary>Sends the responses written so far.</summary>
        public async ValueTask FlushAsync(CancellationToken ct)
        {
            if (_out.Position == 0) return;
            var pending = _out.WrittenMemory;
            while (!pending.IsEmpty)
            {
                int n = await socket.SendAsync(pending, SocketFlags.None, ct);
                if (n <= 0) throw new IOException("send failed");
                pending = pending[n..];
            }
            _out.Reset();
        }

        /// <summary>
        /// Receives until <paramref name="needed"/> bytes from the current frame start are buffered; false when the peer
        /// closed. A frame whose size is known is read exactly to its end (no read-ahead), so a large frame lands at
        /// the start of the buffer and is never moved; while the size is unknown it reads ahead as far as the buffer goes.
        /// </summary>
        private async ValueTask<bool> FillAsync(int needed, CancellationToken ct)
        {
            if (_buffer.Length - _start < needed)
            {
                int length = _end - _start;
                if (needed > _buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
                    _buffer.AsSpan(_start, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(_buffer);
                    _buffer = bigger;
                }
                else
                {
                    _buffer.AsSpan(_start, length).CopyTo(_buffer);
                }
                _start = 0;
                _end = length;
            }
            await FlushAsync(ct);
            int limit = needed > ExactReadBytes ? _start + needed : _buffer.Length;
            while (_end - _start < needed)
            {
                int n = await socket.ReceiveAsync(_buffer.AsMemory(_end, limit - _end), SocketFlags.None, ct);
                if (n == 0)
                {
                    if (_end != _start) throw new IOException("connection closed mid-frame");
                    return false;
                }
                _end += n;
            }
            return true;
        }

        public void Dispose()
        {
            var buffer = Interlocked.Exchange(ref _buffer, []);
            if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
            _out.Dispose();
        }
    }

    /// <summary>Writes one response frame (size, header, body) after those already buffered on the connection.</summary>
    private static void WriteResponse<T>(Connection connection, RequestHeader header, T body, short version) where T : class, new()
    {
        var w = connection.Output;
        int start = w.Position;
        w.Advance(4);
        header.WriteResponseHeader(w);
        MessageSerializer.Write(w, body, version);
        w.PatchInt32(start, w.Position - start - 4);
    }

    private sealed class Topic(string name, int partitions)
    {
        public string Name { get; } = name;
        public Partition[] Partitions { get; } = Enumerable.Range(0, partitions).Select(_ => new Partition()).ToArray();
    }

    private sealed class Partition
    {
        /// <summary>Next offset to assign (the high-water mark of what was produced).</summary>
        public long NextOffset;
        /// <summary>Copy of a batch recently produced here, replayed by Fetch; null until something is produced.</summary>
        public ReplayBatch? Replay;
        public long ReplayCopiedAt;
    }

    /// <summary>A whole v2 record batch kept for replay, with its record count.</summary>
    private sealed record ReplayBatch(byte[] Bytes, int RecordCount)
    {
        public static ReplayBatch? Of(ReadOnlyMemory<byte> batch)
        {
            if (batch.IsEmpty) return null;
            var span = batch.Span;
            if (span.Length < 61 || span[16] != 2 || BinaryPrimitives.ReadInt32BigEndian(span[8..]) + 12 != span.Length)
                throw new ArgumentException("FetchBatch must be exactly one magic v2 record batch");
            int count = BinaryPrimitives.ReadInt32BigEndian(span[57..]);
            if (count < 1) throw new ArgumentException("FetchBatch holds no records");
            return new ReplayBatch(batch.ToArray(), count);
        }
    }
}
