using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Tests.Client;

/// <summary>
/// A scripted broker for client tests: answers ApiVersions with the APIs given handlers (and their versions), Metadata
/// with itself as node 1 (unless a handler is given), and whatever else the test registers. A handler returning null
/// sends no answer. Every request is recorded.
/// </summary>
public sealed class FakeBroker : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Dictionary<ApiKey, (VersionRange Versions, Func<object, short, object?> Handle, Type Request)> _handlers = [];
    private readonly List<Socket> _sockets = [];
    private readonly Task _accepting;
    private readonly CancellationTokenSource _stop = new();

    public FakeBroker()
    {
        _listener.Start();
        On<MetadataRequest, MetadataResponse>(new VersionRange(0, 12), (_, _) => new MetadataResponse
        {
            Brokers = [new() { NodeId = 1, Host = "127.0.0.1", Port = Port }], ControllerId = 1, ClusterId = "fake",
        });
        _accepting = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public ConcurrentQueue<(ApiKey Key, short Version, object Request)> Received { get; } = new();

    public FakeBroker On<TRequest, TResponse>(VersionRange versions, Func<TRequest, short, TResponse?> handle)
        where TRequest : class, new() where TResponse : class, new()
    {
        _handlers[MessageCatalog.Of<TRequest>().ApiKey] = (versions, (r, v) => handle((TRequest)r, v), typeof(TRequest));
        return this;
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_sockets) _sockets.Add(socket);
                _ = Task.Run(() => ServeAsync(socket));
            }
        }
        catch (Exception) { }
    }

    private async Task ServeAsync(Socket socket)
    {
        try
        {
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var size = new byte[4];
            while (true)
            {
                await stream.ReadExactlyAsync(size, _stop.Token);
                var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
                await stream.ReadExactlyAsync(frame, _stop.Token);
                var reader = new KafkaReader(frame);
                var header = RequestHeader.Read(reader);
                using var writer = new KafkaWriter();
                writer.Advance(4);
                header.WriteResponseHeader(writer);
                if (header.ApiKey == ApiKey.ApiVersions)
                {
                    // Kept as sent (software name and version) when it is a version Cairn can decode.
                    Received.Enqueue((header.ApiKey, header.ApiVersion, header.ApiVersion <= MessageCatalog.Request(ApiKey.ApiVersions)!.Versions.Max
                        ? MessageSerializer.Read<ApiVersionsRequest>(reader, header.ApiVersion) : new ApiVersionsRequest()));
                    var versions = new ApiVersionsResponse
                    {
                        ApiKeys = _handlers.Select(h => new ApiVersionsResponse.ApiVersion { ApiKey = (short)h.Key, MinVersion = h.Value.Versions.Min, MaxVersion = h.Value.Versions.Max })
                            .Append(new() { ApiKey = (short)ApiKey.ApiVersions, MinVersion = 0, MaxVersion = 3 }).ToList(),
                    };
                    if (header.ApiVersion > 3)
                    {
                        versions.ErrorCode = (short)ErrorCode.UnsupportedVersion;
                        MessageSerializer.Write(writer, versions, 0);
                    }
                    else MessageSerializer.Write(writer, versions, header.ApiVersion);
                }
                else
                {
                    var (range, handle, requestType) = _handlers[header.ApiKey];
                    var read = typeof(MessageSerializer).GetMethods().First(m => m.Name == "Read" && m.GetParameters()[0].ParameterType == typeof(KafkaReader))
                        .MakeGenericMethod(requestType);
                    var request = read.Invoke(null, [reader, header.ApiVersion])!;
                    Received.Enqueue((header.ApiKey, header.ApiVersion, request));
                    var response = handle(request, header.ApiVersion);
                    if (response is null) continue;
                    var write = typeof(MessageSerializer).GetMethod("Write")!.MakeGenericMethod(response.GetType());
                    write.Invoke(null, [writer, response, header.ApiVersion]);
                }
                writer.PatchInt32(0, writer.Position - 4);
                await stream.WriteAsync(writer.WrittenMemory, _stop.Token);
            }
        }
        catch (Exception) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_sockets) foreach (var s in _sockets) s.Dispose();
        try { await _accepting; } catch (Exception) { }
    }
}
