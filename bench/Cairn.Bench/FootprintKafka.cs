using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;

namespace Cairn.Bench;

/// <summary>What a produce run sent and had acknowledged.</summary>
internal sealed record ProduceTotals(long Requests, long BatchBytes, TimeSpan Elapsed, string StopReason)
{
    public double MBps => Elapsed.TotalSeconds > 0 ? BatchBytes / 1e6 / Elapsed.TotalSeconds : 0;
}

/// <summary>The Kafka calls of the footprint benchmark, over <see cref="PipelinedConnection"/> and the project's codecs.</summary>
internal static class FootprintKafka
{
    private const short ApiVersionsVersion = 3;
    private const short MetadataVersion = 12;
    private const short CreateTopicsVersion = 7;
    private const short DeleteTopicsVersion = 6;
    private const short ProduceVersion = 9;
    private const short ListOffsetsVersion = 7;
    private const string ClientId = "cairn-bench-footprint";

    private static async Task<TResponse> CallAsync<TRequest, TResponse>(PipelinedConnection conn, ApiKey key, short version, TRequest request,
        TimeSpan timeout, CancellationToken ct) where TRequest : class, new() where TResponse : class, new()
    {
        var sent = await conn.SendAsync(key, version, PipelinedConnection.Encode(request, version), ct);
        using var response = await sent.WaitAsync(timeout, ct);
        return response.Read<TResponse>(version);
    }

    /// <summary>
    /// Waits until the broker answers ApiVersions and then a Metadata request for all topics that lists every topic of
    /// <paramref name="expected"/> with its partition count and no error. The broker accepts connections only once its logs are
    /// open, so the first answer normally is the complete one.
    /// </summary>
    public static async Task WaitReadyAsync(IPEndPoint endPoint, IReadOnlyDictionary<string, int> expected, TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        string last = "no answer";
        while (clock.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                await using var conn = await PipelinedConnection.ConnectAsync(endPoint, ClientId, ct);
                var versions = await CallAsync<ApiVersionsRequest, ApiVersionsResponse>(conn, ApiKey.ApiVersions, ApiVersionsVersion,
                    new ApiVersionsRequest { ClientSoftwareName = "cairn-bench", ClientSoftwareVersion = "1.0" }, timeout - clock.Elapsed, ct);
                if (versions.ErrorCode != 0) throw new BenchFailure($"ApiVersions v3: error {(ErrorCode)versions.ErrorCode}");
                var metadata = await CallAsync<MetadataRequest, MetadataResponse>(conn, ApiKey.Metadata, MetadataVersion,
                    new MetadataRequest { Topics = null, AllowAutoTopicCreation = false }, timeout - clock.Elapsed, ct);
                if (MetadataProblem(metadata, expected) is not { } problem) return;
                last = problem;
            }
            catch (Exception e) when (e is IOException or SocketException or TimeoutException)
            {
                last = Bench.Describe(e);
            }
            await Task.Delay(10, ct);
        }
        throw new BenchFailure($"broker at {endPoint} not ready within {timeout.TotalSeconds:0} s: {last}");
    }

    private static string? MetadataProblem(MetadataResponse metadata, IReadOnlyDictionary<string, int> expected)
    {
        var byName = metadata.Topics.Where(t => t.Name is not null).ToDictionary(t => t.Name!, StringComparer.Ordinal);
        foreach (var (name, partitions) in expected)
        {
            if (!byName.TryGetValue(name, out var t)) return $"Metadata lists {byName.Count} topics, not {name}";
            if (t.ErrorCode != 0) return $"Metadata: {name} has error {(ErrorCode)t.ErrorCode}";
            if (t.Partitions.Count != partitions) return $"Metadata: {name} has {t.Partitions.Count} partitions, expected {partitions}";
            if (t.Partitions.FirstOrDefault(p => p.ErrorCode != 0) is { } bad)
                return $"Metadata: {name}-{bad.PartitionIndex} has error {(ErrorCode)bad.ErrorCode}";
        }
        return null;
    }

    /// <summary>Creates the topics, <paramref name="perRequest"/> to a CreateTopics request; any error fails the bench.</summary>
    public static async Task CreateTopicsAsync(IPEndPoint endPoint, IReadOnlyList<string> names, int partitions,
        IReadOnlyDictionary<string, string> configs, int perRequest, CancellationToken ct)
    {
        await using var conn = await PipelinedConnection.ConnectAsync(endPoint, ClientId, ct);
        foreach (var chunk in names.Chunk(perRequest))
        {
            var response = await CallAsync<CreateTopicsRequest, CreateTopicsResponse>(conn, ApiKey.CreateTopics, CreateTopicsVersion, new CreateTopicsRequest
            {
                TimeoutMs = 300_000,
                Topics = chunk.Select(n => new CreateTopicsRequest.CreatableTopic
                {
                    Name = n,
                    NumPartitions = partitions,
                    ReplicationFactor = 1,
                    Configs = configs.Select(kv => new CreateTopicsRequest.CreatableTopic.CreatableTopicConfig { Name = kv.Key, Value = kv.Value }).ToList(),
                }).ToList(),
            }, TimeSpan.FromMinutes(5), ct);
            foreach (var name in chunk)
            {
                var r = response.Topics.FirstOrDefault(t => t.Name == name) ?? throw new BenchFailure($"CreateTopics v{CreateTopicsVersion}: no result for {name}");
                if (r.ErrorCode != 0)
                    throw new BenchFailure($"CreateTopics v{CreateTopicsVersion} {name} ({partitions} partitions): error {(ErrorCode)r.ErrorCode} {r.ErrorMessage}");
            }
        }
    }

    public static async Task DeleteTopicsAsync(IPEndPoint endPoint, IReadOnlyList<string> names, CancellationToken ct)
    {
        await using var conn = await PipelinedConnection.ConnectAsync(endPoint, ClientId, ct);
        var response = await CallAsync<DeleteTopicsRequest, DeleteTopicsResponse>(conn, ApiKey.DeleteTopics, DeleteTopicsVersion, new DeleteTopicsRequest
        {
            TimeoutMs = 60_000,
            Topics = names.Select(n => new DeleteTopicsRequest.DeleteTopicState { Name = n }).ToList(),
        }, TimeSpan.FromMinutes(2), ct);
        if (response.Responses.FirstOrDefault(r => r.ErrorCode != 0) is { } bad)
            throw new BenchFailure($"DeleteTopics v{DeleteTopicsVersion} {bad.Name}: error {(ErrorCode)bad.ErrorCode} {bad.ErrorMessage}");
    }

    /// <summary>The latest offset (log end) of partitions 0..<paramref name="partitions"/>-1 of <paramref name="topic"/>.</summary>
    public static async Task<long[]> LogEndOffsetsAsync(IPEndPoint endPoint, string topic, int partitions, CancellationToken ct)
    {
        await using var conn = await PipelinedConnection.ConnectAsync(endPoint, ClientId, ct);
        var response = await CallAsync<ListOffsetsRequest, ListOffsetsResponse>(conn, ApiKey.ListOffsets, ListOffsetsVersion, new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics =
            [
                new ListOffsetsRequest.ListOffsetsTopic
                {
                    Name = topic,
                    Partitions = Enumerable.Range(0, partitions).Select(p => new ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition
                    {
                        PartitionIndex = p, Timestamp = -1, // latest
                    }).ToList(),
                },
            ],
        }, TimeSpan.FromMinutes(1), ct);
        var ends = new long[partitions];
        Array.Fill(ends, -1);
        foreach (var p in response.Topics.SelectMany(t => t.Partitions))
        {
            if (p.ErrorCode != 0) throw new BenchFailure($"ListOffsets v{ListOffsetsVersion} {topic}-{p.PartitionIndex}: error {(ErrorCode)p.ErrorCode}");
            if (p.PartitionIndex >= 0 && p.PartitionIndex < partitions) ends[p.PartitionIndex] = p.Offset;
        }
        return ends;
    }

    /// <summary>A Produce request (acks=1) carrying <paramref name="batch"/> once for each of <paramref name="partitions"/>.</summary>
    public static byte[] ProduceBody(string topic, IEnumerable<int> partitions, byte[] batch) => PipelinedConnection.Encode(new ProduceRequest
    {
        Acks = 1,
        TimeoutMs = 30_000,
        TopicData =
        [
            new ProduceRequest.TopicProduceData
            {
                Name = topic,
                PartitionData = partitions.Select(p => new ProduceRequest.TopicProduceData.PartitionProduceData { Index = p, Records = new MemoryRecords(batch) }).ToList(),
            },
        ],
    }, ProduceVersion);

    /// <summary>
    /// Sends request i = 0, 1, ... (body i % bodies.Count) over <paramref name="connections"/> connections (connection c sends
    /// i = c, c + connections, ...), each with up to <paramref name="inFlight"/> outstanding, until <paramref name="maxRequests"/>
    /// are sent or <paramref name="timeCap"/> passes. Every response is decoded; any partition error fails the run.
    /// </summary>
    public static async Task<ProduceTotals> ProduceAsync(IPEndPoint endPoint, IReadOnlyList<(byte[] Body, long BatchBytes)> bodies, long maxRequests,
        int connections, int inFlight, TimeSpan timeCap, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        long requests = 0, bytes = 0;
        int timedOut = 0;

        async Task RunConnection(int c)
        {
            await using var conn = await PipelinedConnection.ConnectAsync(endPoint, ClientId, ct);
            var pending = new Queue<(Task<Response> Response, long Bytes)>();
            async Task CompleteOldest()
            {
                var (task, batchBytes) = pending.Dequeue();
                using var r = await task.WaitAsync(TimeSpan.FromMinutes(1), ct);
                var decoded = r.Read<ProduceResponse>(ProduceVersion);
                foreach (var p in decoded.Responses.SelectMany(t => t.PartitionResponses.Select(p => (t.Name, p))))
                    if (p.p.ErrorCode != 0)
                        throw new BenchFailure($"Produce v{ProduceVersion} {p.Name}-{p.p.Index}: error {(ErrorCode)p.p.ErrorCode} {p.p.ErrorMessage}");
                Interlocked.Increment(ref requests);
                Interlocked.Add(ref bytes, batchBytes);
            }
            for (long i = c; i < maxRequests; i += connections)
            {
                if (clock.Elapsed >= timeCap) { Interlocked.Exchange(ref timedOut, 1); break; }
                if (pending.Count >= inFlight) await CompleteOldest();
                var (body, batchBytes) = bodies[(int)(i % bodies.Count)];
                pending.Enqueue((await conn.SendAsync(ApiKey.Produce, ProduceVersion, body, ct), batchBytes));
            }
            while (pending.Count > 0) await CompleteOldest();
        }

        await Task.WhenAll(Enumerable.Range(0, connections).Select(c => Task.Run(() => RunConnection(c), ct)));
        return new ProduceTotals(requests, bytes, clock.Elapsed, timedOut != 0 ? "time" : "count");
    }
}

/// <summary>Memory and resources of a process, from /proc/PID/status and /proc/PID/fd (Linux).</summary>
internal readonly record struct ProcessSample(long RssKb, long HwmKb, int Threads, int OpenFds)
{
    public static ProcessSample? Read(int pid)
    {
        try
        {
            long rss = -1, hwm = -1;
            int threads = -1;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kb(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kb(line);
                else if (line.StartsWith("Threads:", StringComparison.Ordinal)) threads = (int)Kb(line);
            }
            int fds = Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Count();
            return rss < 0 ? null : new ProcessSample(rss, hwm, threads, fds);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // the process is gone, or this is not Linux
        }
    }

    /// <summary>User + system CPU seconds the process used so far (/proc/PID/stat utime and stime, in 1/100 s clock ticks).</summary>
    public static double? CpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name (which may hold spaces) in parentheses: state is field 3, utime 14, stime 15.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture)
                    + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / 100.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private static long Kb(string line) =>
        long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim().ToString().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
}
