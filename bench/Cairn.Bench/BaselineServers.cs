using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Bench;

/// <summary>
/// Shared plumbing of the two trivial baseline servers: listens on 127.0.0.1 (ephemeral port), serves one
/// connection at a time, each request frame handled serially (as the broker does per connection).
/// </summary>
public abstract class BaselineServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private Task? _acceptLoop;
    private Exception? _error;

    protected BaselineServer()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(4);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    public IPEndPoint EndPoint { get; }
    /// <summary>The first exception a connection ended with (other than the client closing), for the report.</summary>
    public Exception? Error => _error;

    public void Start() => _acceptLoop = Task.Run(AcceptLoopAsync);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token); }
            catch { return; }
            client.NoDelay = true;
            client.SendBufferSize = 4 * 1024 * 1024;
            client.ReceiveBufferSize = 4 * 1024 * 1024;
            try
            {
                await ServeAsync(client, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
            catch (Exception e)
            {
                _error ??= e;
            }
            finally
            {
                client.Dispose();
            }
        }
    }

    protected abstract Task ServeAsync(Socket client, CancellationToken ct);

    /// <summary>Reads one request frame (size prefix included at [0..4)) into <paramref name="buffer"/>; null when the peer closed.</summary>
    protected static async ValueTask<int?> ReadFrameAsync(Socket s, Ref<byte[]> buffer, CancellationToken ct)
    {
        if (!await ReceiveExactlyAsync(s, buffer.Value.AsMemory(0, 4), ct)) return null;
        int size = BinaryPrimitives.ReadInt32BigEndian(buffer.Value);
        if (size < 8 || size > 64 * 1024 * 1024) throw new IOException($"request frame size {size} out of range");
        if (buffer.Value.Length < size + 4)
        {
            var bigger = new byte[size + 4];
            buffer.Value.AsSpan(0, 4).CopyTo(bigger);
            buffer.Value = bigger;
        }
        if (!await ReceiveExactlyAsync(s, buffer.Value.AsMemory(4, size), ct)) return null;
        return size + 4;
    }

    protected static async ValueTask<bool> ReceiveExactlyAsync(Socket s, Memory<byte> destination, CancellationToken ct)
    {
        while (!destination.IsEmpty)
        {
            int n = await s.ReceiveAsync(destination, SocketFlags.None, ct);
            if (n == 0) return false;
            destination = destination[n..];
        }
        return true;
    }

    protected static async ValueTask SendAllAsync(Socket s, List<ArraySegment<byte>> segments)
    {
        int total = 0;
        foreach (var seg in segments) total += seg.Count;
        int n = await s.SendAsync(segments, SocketFlags.None);
        if (n != total) throw new IOException($"short send: {n} of {total}");
    }

    public virtual async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        if (_acceptLoop is not null) { try { await _acceptLoop.WaitAsync(TimeSpan.FromSeconds(5)); } catch { } }
        _stop.Dispose();
    }

    protected sealed class Ref<T>(T value) { public T Value = value; }
}

/// <summary>
/// Baseline for produce: reads each frame, appends it (size prefix included) to a file with a plain FileStream,
/// optionally fsyncs (FileStream.Flush(true)), and acknowledges it with a small ProduceResponse.
/// It parses only the request header, for the correlation id and version.
/// </summary>
public sealed class FileSinkServer(string path, bool fsync) : BaselineServer
{
    public string Path { get; } = path;
    public long BytesWritten { get; private set; }

    protected override async Task ServeAsync(Socket client, CancellationToken ct)
    {
        var buffer = new Ref<byte[]>(new byte[2 * 1024 * 1024]);
        using var file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0, FileOptions.None);
        using var response = new KafkaWriter(256);
        var ack = new ProduceResponse
        {
            Responses =
            [
                new ProduceResponse.TopicProduceResponse
                {
                    Name = "sink",
                    PartitionResponses = [new ProduceResponse.TopicProduceResponse.PartitionProduceResponse { Index = 0 }],
                },
            ],
        };
        var partition = ack.Responses[0].PartitionResponses[0];
        long frames = 0;
        var segments = new List<ArraySegment<byte>>(1);
        while (true)
        {
            int? length = await ReadFrameAsync(client, buffer, ct);
            if (length is null) return;
            var header = RequestHeader.Read(new KafkaReader(buffer.Value.AsMemory(4, length.Value - 4)));
            file.Write(buffer.Value, 0, length.Value);
            if (fsync) file.Flush(flushToDisk: true);
            BytesWritten += length.Value;

            partition.BaseOffset = frames++;
            response.Reset();
            response.Advance(4);
            header.WriteResponseHeader(response);
            if (header.ApiKey == ApiKey.Produce) MessageSerializer.Write(response, ack, header.ApiVersion);
            response.PatchInt32(0, response.Position - 4);
            segments.Clear();
            segments.Add(new ArraySegment<byte>(response.WrittenSpan.ToArray()));
            await SendAllAsync(client, segments);
        }
    }
}

/// <summary>
/// Baseline for fetch: answers each (tiny) request frame with the next <c>chunkSize</c> bytes of a file,
/// read with pread and sent after a response header, cycling through the file.
/// </summary>
public sealed class FileChunkServer(string path, int chunkSize) : BaselineServer
{
    protected override async Task ServeAsync(Socket client, CancellationToken ct)
    {
        var buffer = new Ref<byte[]>(new byte[64 * 1024]);
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < chunkSize) throw new InvalidOperationException($"{path} holds {fileLength} bytes, less than one chunk of {chunkSize}");
        var chunk = new byte[chunkSize];
        using var header = new KafkaWriter(64);
        long position = 0;
        var segments = new List<ArraySegment<byte>>(2);
        while (true)
        {
            int? length = await ReadFrameAsync(client, buffer, ct);
            if (length is null) return;
            var request = RequestHeader.Read(new KafkaReader(buffer.Value.AsMemory(4, length.Value - 4)));
            if (position + chunkSize > fileLength) position = 0;
            int filled = 0;
            while (filled < chunkSize)
            {
                int n = RandomAccess.Read(handle, chunk.AsSpan(filled), position + filled);
                if (n <= 0) throw new IOException($"unexpected end of {path}");
                filled += n;
            }
            position += chunkSize;

            header.Reset();
            header.Advance(4);
            request.WriteResponseHeader(header);
            header.PatchInt32(0, header.Position - 4 + chunkSize);
            segments.Clear();
            segments.Add(new ArraySegment<byte>(header.WrittenSpan.ToArray()));
            segments.Add(new ArraySegment<byte>(chunk));
            await SendAllAsync(client, segments);
        }
    }
}
