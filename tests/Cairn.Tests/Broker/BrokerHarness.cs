using System.Buffers.Binary;
using System.Net.Sockets;
using Cairn.Broker;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;
using Microsoft.Extensions.Logging.Abstractions;
using Record = Cairn.Protocol.Records.Record;

namespace Cairn.Tests.Broker;

/// <summary>An in-process broker on an ephemeral loopback port with its own temp data directory.</summary>
public sealed class BrokerHarness : IAsyncDisposable
{
    private BrokerHarness(KafkaBroker broker, string dataDir) { Broker = broker; DataDir = dataDir; }

    public KafkaBroker Broker { get; private set; }
    public string DataDir { get; }
    public int Port => Broker.LocalEndPoint.Port;

    public static async Task<BrokerHarness> StartAsync(Func<BrokerOptions, BrokerOptions>? configure = null, string? dataDir = null)
    {
        dataDir ??= Path.Combine(Path.GetTempPath(), "cairn-test-" + Guid.NewGuid().ToString("N"));
        var options = new BrokerOptions { ListenPort = 0, DataDir = dataDir };
        if (configure is not null) options = configure(options);
        var broker = await KafkaBroker.StartAsync(options, NullLoggerFactory.Instance);
        return new BrokerHarness(broker, dataDir);
    }

    public Task<WireClient> ConnectAsync() => WireClient.ConnectAsync(Port);

    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A bare Kafka connection speaking through the project's own codecs: one request, one response.</summary>
public sealed class WireClient : IDisposable
{
    private readonly Socket _socket;
    private int _correlationId;

    private WireClient(Socket socket) => _socket = socket;

    public static async Task<WireClient> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port);
        return new WireClient(socket);
    }

    public async Task<TResponse> SendAsync<TRequest, TResponse>(TRequest request, short version, TimeSpan? timeout = null)
        where TRequest : class, new() where TResponse : class, new()
    {
        var header = await SendOnlyAsync(request, version);
        var frame = await ReadFrameAsync(timeout ?? TimeSpan.FromSeconds(30));
        var reader = new KafkaReader(frame);
        Assert.Equal(header.CorrelationId, header.ReadResponseHeader(reader));
        var response = MessageSerializer.Read<TResponse>(reader, version);
        Assert.Equal(frame.Length, reader.Position);
        return response;
    }

    public async Task<RequestHeader> SendOnlyAsync<TRequest>(TRequest request, short version) where TRequest : class, new()
    {
        var key = MessageCatalog.Of<TRequest>().ApiKey;
        var header = new RequestHeader(key, version, ++_correlationId, "cairn-tests");
        using var writer = new KafkaWriter();
        writer.Advance(4);
        header.Write(writer);
        MessageSerializer.Write(writer, request, version);
        writer.PatchInt32(0, writer.Position - 4);
        await SendRawAsync(writer.WrittenMemory);
        return header;
    }

    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty) bytes = bytes[await _socket.SendAsync(bytes)..];
    }

    public async Task<byte[]> ReadFrameAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var size = new byte[4];
        await ReadExactlyAsync(size, cts.Token);
        var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        await ReadExactlyAsync(frame, cts.Token);
        return frame;
    }

    /// <summary>True when the broker closed the connection (reads end) within the timeout.</summary>
    public async Task<bool> IsClosedByPeerAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[1];
        try
        {
            return await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0;
        }
        catch (SocketException) { return true; }
        catch (OperationCanceledException) { return false; }
    }

    private async Task ReadExactlyAsync(Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0) throw new IOException("connection closed by broker");
            buffer = buffer[n..];
        }
    }

    public void Dispose() => _socket.Dispose();
}

public static class Batches
{
    public static byte[] Build(int count, string prefix = "v", long firstTimestamp = 1_700_000_000_000, CompressionCodec codec = CompressionCodec.None,
        long producerId = -1, short producerEpoch = -1, int baseSequence = -1)
    {
        using var builder = new RecordBatchBuilder(codec) { ProducerId = producerId, ProducerEpoch = producerEpoch, BaseSequence = baseSequence };
        for (int i = 0; i < count; i++)
            builder.Append(firstTimestamp + i, System.Text.Encoding.UTF8.GetBytes("k" + i), System.Text.Encoding.UTF8.GetBytes(prefix + i));
        return builder.Build();
    }

    public static List<Record> ReadAll(RecordsPayload? payload)
    {
        var records = new List<Record>();
        if (payload is null) return records;
        var bytes = new byte[payload.Length];
        payload.CopyTo(bytes);
        var iterator = new RecordBatchIterator(bytes);
        while (iterator.MoveNext()) records.AddRange(RecordBatch.ReadRecords(iterator.Current.Bytes));
        return records;
    }
}
