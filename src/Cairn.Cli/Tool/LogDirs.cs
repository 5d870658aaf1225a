using System.Buffers.Binary;
using System.Net.Sockets;
using Cairn.Client;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Cli.Tool;

/// <summary>
/// Partition sizes on disk from DescribeLogDirs. Cairn.Client has no API for it yet, so this sends the one request
/// itself over a short-lived connection per broker (ApiVersions first, to pick a version both sides know).
/// Sizes are best effort: a broker without DescribeLogDirs, or any failure, leaves its partitions unknown.
/// </summary>
internal static class LogDirs
{
    /// <summary>Each partition's size as its leader reports it (another replica's when the leader does not say).</summary>
    public static async Task<Dictionary<TopicPartition, long>> PartitionSizesAsync(
        IReadOnlyList<BrokerDescription> brokers, IReadOnlyCollection<TopicDescription> topics, TimeSpan timeout, Action<string>? debug, CancellationToken cancellationToken)
    {
        var sizes = new Dictionary<TopicPartition, long>();
        if (topics.Count == 0) return sizes;
        var request = new DescribeLogDirsRequest
        {
            Topics = topics.Select(t => new DescribeLogDirsRequest.DescribableLogDirTopic { Topic = t.Name, Partitions = t.Partitions.Select(p => p.Partition).ToList() }).ToList(),
        };
        // Only brokers holding a replica of something asked for.
        var nodes = topics.SelectMany(t => t.Partitions).SelectMany(p => p.Replicas.Append(p.Leader)).ToHashSet();
        var perBroker = await Task.WhenAll(brokers.Where(b => nodes.Contains(b.NodeId)).Select(async b =>
        {
            try
            {
                return (b.NodeId, Sizes: await DescribeAsync(b.Host, b.Port, request, timeout, cancellationToken));
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                debug?.Invoke($"DescribeLogDirs on broker {b.NodeId} ({b.Host}:{b.Port}) failed: {e.Message}");
                return (b.NodeId, Sizes: (Dictionary<TopicPartition, long>?)null);
            }
        }));
        var byNode = perBroker.Where(x => x.Sizes is not null).ToDictionary(x => x.NodeId, x => x.Sizes!);
        foreach (var t in topics)
            foreach (var p in t.Partitions)
            {
                var tp = new TopicPartition(t.Name, p.Partition);
                if (byNode.TryGetValue(p.Leader, out var leaderSizes) && leaderSizes.TryGetValue(tp, out var size)) sizes[tp] = size;
                else
                    foreach (var other in byNode.Values)
                        if (other.TryGetValue(tp, out size)) { sizes[tp] = size; break; }
            }
        return sizes;
    }

    private static async Task<Dictionary<TopicPartition, long>?> DescribeAsync(string host, int port, DescribeLogDirsRequest request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(host, port, cts.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);

        // ApiVersions v0: every broker understands it, and its answer lists the versions of everything else.
        var versions = await RoundTripAsync<ApiVersionsRequest, ApiVersionsResponse>(stream, ApiKey.ApiVersions, 0, 1, new ApiVersionsRequest(), cts.Token);
        var brokerRange = versions.ApiKeys.FirstOrDefault(a => a.ApiKey == (short)ApiKey.DescribeLogDirs);
        if (brokerRange is null) return null;
        var ours = MessageCatalog.Request(ApiKey.DescribeLogDirs)!.Versions.Intersect(MessageCatalog.Response(ApiKey.DescribeLogDirs)!.Versions)
            .Intersect(new VersionRange(brokerRange.MinVersion, brokerRange.MaxVersion));
        if (ours.IsEmpty) return null;
        var response = await RoundTripAsync<DescribeLogDirsRequest, DescribeLogDirsResponse>(stream, ApiKey.DescribeLogDirs, ours.Max, 2, request, cts.Token);
        if (response.ErrorCode != 0) return null;
        var sizes = new Dictionary<TopicPartition, long>();
        foreach (var dir in response.Results)
        {
            if (dir.ErrorCode != 0) continue;
            foreach (var t in dir.Topics)
                foreach (var p in t.Partitions)
                    if (!p.IsFutureKey) sizes[new TopicPartition(t.Name, p.PartitionIndex)] = p.PartitionSize;
        }
        return sizes;
    }

    private static async Task<TResponse> RoundTripAsync<TRequest, TResponse>(NetworkStream stream, ApiKey key, short version, int correlationId, TRequest body, CancellationToken cancellationToken)
        where TRequest : class, new() where TResponse : class, new()
    {
        var header = new RequestHeader(key, version, correlationId, "cairn-cli");
        using (var writer = new KafkaWriter(256))
        {
            writer.Advance(4);
            header.Write(writer);
            MessageSerializer.Write(writer, body, version);
            writer.PatchInt32(0, writer.Position - 4);
            await stream.WriteAsync(writer.WrittenMemory, cancellationToken);
        }
        var sizeBytes = new byte[4];
        await stream.ReadExactlyAsync(sizeBytes, cancellationToken);
        int size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
        if (size < 4 || size > 64 * 1024 * 1024) throw new InvalidDataException($"{key} response of {size} bytes");
        var frame = new byte[size];
        await stream.ReadExactlyAsync(frame, cancellationToken);
        var reader = new KafkaReader(frame);
        if (header.ReadResponseHeader(reader) != correlationId) throw new InvalidDataException($"{key} response with an unexpected correlation id");
        return MessageSerializer.Read<TResponse>(reader, version);
    }
}
