using System.Diagnostics;
using System.Net;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;

namespace Cairn.Bench;

/// <summary>Bounds of one measured phase: whichever of the byte total or the time cap comes first.</summary>
public sealed record Limits(long TotalBytes, TimeSpan TimeCap, int InFlight, Warmup Warmup, TimeSpan ResponseTimeout);

/// <summary>
/// Unmeasured requests before a phase (same pipelined loop): until at least <paramref name="MinRequests"/> and
/// <paramref name="MinTime"/>, at most <paramref name="MaxRequests"/> or <paramref name="MaxTime"/>. Long enough on the
/// first round for tiered JIT to reach optimized code in both the bench and the broker.
/// </summary>
public sealed record Warmup(int MinRequests, TimeSpan MinTime, int MaxRequests, TimeSpan MaxTime)
{
    public static Warmup Short { get; } = new(3, TimeSpan.Zero, 3, TimeSpan.FromSeconds(5));
    public static Warmup Jit { get; } = new(40, TimeSpan.FromSeconds(0.5), 400, TimeSpan.FromSeconds(2));
}

/// <summary>A failure of the system under test, with what was sent and what came back.</summary>
public sealed class BenchFailure(string message) : Exception(message);

public sealed class PhaseResult
{
    public required string Scenario { get; init; }
    public required int RecordSize { get; init; }
    public int Round { get; init; }
    public long Bytes { get; set; }
    public long Records { get; set; }
    public int Requests { get; set; }
    public TimeSpan Elapsed { get; set; }
    public List<double> LatenciesMs { get; } = [];
    public string? StopReason { get; set; }
    public string? Error { get; set; }

    public double MBps => Elapsed.TotalSeconds > 0 ? Bytes / 1e6 / Elapsed.TotalSeconds : 0;
    public double RecordsPerSecond => Elapsed.TotalSeconds > 0 ? Records / Elapsed.TotalSeconds : 0;
    public double? Percentile(double p)
    {
        if (LatenciesMs.Count == 0) return null;
        var sorted = LatenciesMs.Order().ToArray();
        int rank = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}

/// <summary>One record size's produce request, encoded once and re-sent as is (the broker assigns offsets on its side).</summary>
public sealed class ProducePayload
{
    public required int RecordSize { get; init; }
    public required int RecordsPerBatch { get; init; }
    public required int BatchBytes { get; init; }
    public required byte[] Batch { get; init; }

    public static ProducePayload Build(int recordSize, int targetBatchBytes)
    {
        var value = new byte[recordSize];
        new Random(recordSize).NextBytes(value); // incompressible, deterministic
        using var builder = new RecordBatchBuilder(CompressionCodec.None, targetBatchBytes + 1024)
        {
            ProducerId = -1, ProducerEpoch = -1, BaseSequence = -1, // not idempotent: the same bytes may be appended again
        };
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        int perRecordEstimate = recordSize + 16;
        while (builder.UncompressedSizeInBytes + perRecordEstimate <= targetBatchBytes)
            builder.Append(now, ReadOnlySpan<byte>.Empty, hasKey: false, value, hasValue: true);
        var batch = builder.Build();
        return new ProducePayload { RecordSize = recordSize, RecordsPerBatch = builder.Count, BatchBytes = batch.Length, Batch = batch };
    }

    /// <summary>The request body (ProduceRequest encoded with the project codec) for one topic, partition 0.</summary>
    public byte[] RequestBody(string topic, short acks, short version) => PipelinedConnection.Encode(new ProduceRequest
    {
        Acks = acks,
        TimeoutMs = 30_000,
        TopicData =
        [
            new ProduceRequest.TopicProduceData
            {
                Name = topic,
                PartitionData = [new ProduceRequest.TopicProduceData.PartitionProduceData { Index = 0, Records = new MemoryRecords(Batch) }],
            },
        ],
    }, version);
}

public static class Workloads
{
    /// <summary>
    /// Sends the same produce request over and over with up to <see cref="Limits.InFlight"/> outstanding; every
    /// response is decoded and checked. Latency is per request, from the start of its send to its response.
    /// </summary>
    public static async Task<PhaseResult> ProduceAsync(IPEndPoint endPoint, string scenario, ProducePayload payload, byte[] body,
        short version, Limits limits, List<long>? baseOffsets, CancellationToken ct)
    {
        var result = new PhaseResult { Scenario = scenario, RecordSize = payload.RecordSize };
        await using var conn = await PipelinedConnection.ConnectAsync(endPoint, "cairn-bench-produce", ct);

        void Complete(Response r, bool measured)
        {
            using (r)
            {
                var decoded = r.Read<ProduceResponse>(version);
                foreach (var t in decoded.Responses)
                foreach (var p in t.PartitionResponses)
                {
                    if (p.ErrorCode != 0)
                        throw new BenchFailure($"Produce v{version} to {t.Name}-{p.Index}: error {(ErrorCode)p.ErrorCode} ({p.ErrorCode})" +
                                               (p.ErrorMessage is null ? "" : $": {p.ErrorMessage}"));
                    baseOffsets?.Add(p.BaseOffset);
                }
                if (decoded.Responses.Count == 0) throw new BenchFailure($"Produce v{version}: response has no topics");
                if (!measured) return;
                result.Requests++;
                result.Bytes += payload.BatchBytes;
                result.Records += payload.RecordsPerBatch;
                result.LatenciesMs.Add(r.LatencyMs);
            }
        }

        ValueTask<Task<Response>> Send() => conn.SendAsync(ApiKey.Produce, version, body, ct);
        await Drive(limits, _ => Send(), (r, _) => Complete(r, measured: false), WarmupStop(limits.Warmup), ct);

        var sw = Stopwatch.StartNew();
        long sent = 0;
        await Drive(limits, _ => { sent += payload.BatchBytes; return Send(); }, (r, _) => Complete(r, measured: true), requests =>
            sent >= limits.TotalBytes ? "bytes" : sw.Elapsed >= limits.TimeCap ? "time" : null, ct, reason => result.StopReason = reason);
        result.Elapsed = sw.Elapsed;
        return result;
    }

    /// <summary>
    /// The pipelined loop: request i is sent while at most <see cref="Limits.InFlight"/> - 1 earlier ones are outstanding;
    /// responses are completed in order. <paramref name="stop"/> is asked, with the number sent so far, before each send.
    /// </summary>
    private static async Task Drive(Limits limits, Func<int, ValueTask<Task<Response>>> send, Action<Response, int> complete, Func<int, string?> stop,
        CancellationToken ct, Action<string>? stopped = null)
    {
        var inflight = new Queue<(Task<Response> Task, int Index)>();
        int sent = 0;
        while (true)
        {
            if (stop(sent) is { } reason) { stopped?.Invoke(reason); break; }
            if (inflight.Count >= limits.InFlight)
            {
                var (task, index) = inflight.Dequeue();
                complete(await task.WaitAsync(limits.ResponseTimeout, ct), index);
            }
            inflight.Enqueue((await send(sent), sent));
            sent++;
        }
        while (inflight.Count > 0)
        {
            var (task, index) = inflight.Dequeue();
            complete(await task.WaitAsync(limits.ResponseTimeout, ct), index);
        }
    }

    private static Func<int, string?> WarmupStop(Warmup w)
    {
        var sw = Stopwatch.StartNew();
        return sent => sent >= w.MaxRequests || sw.Elapsed >= w.MaxTime ? "warmup" :
            sent >= w.MinRequests && sw.Elapsed >= w.MinTime ? "warmup" : null;
    }

    /// <summary>FetchRequest for one partition at <paramref name="offset"/>, partition and response limits both <paramref name="maxBytes"/>.</summary>
    public static byte[] FetchBody(string topic, long offset, int maxBytes, short version) => PipelinedConnection.Encode(new FetchRequest
    {
        ReplicaId = -1,
        MaxWaitMs = 500,
        MinBytes = 1,
        MaxBytes = maxBytes,
        IsolationLevel = 0,
        SessionId = 0,
        SessionEpoch = -1, // sessionless full fetch
        Topics =
        [
            new FetchRequest.FetchTopic
            {
                Topic = topic,
                Partitions = [new FetchRequest.FetchTopic.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = maxBytes }],
            },
        ],
    }, version);

    /// <summary>
    /// Fetches the batches at the given base offsets (those the produce responses reported, in order), pipelined.
    /// Against the broker each response is decoded and must start with the batch asked for; its bytes and records
    /// are counted. Against the baseline (<paramref name="baselineRecordsPerChunk"/> set) the response body is the chunk.
    /// </summary>
    public static async Task<PhaseResult> FetchAsync(IPEndPoint endPoint, string scenario, int recordSize, string topic, IReadOnlyList<long> offsets,
        int maxBytes, short version, Limits limits, int? baselineRecordsPerChunk, CancellationToken ct)
    {
        var result = new PhaseResult { Scenario = scenario, RecordSize = recordSize };
        await using var conn = await PipelinedConnection.ConnectAsync(endPoint, "cairn-bench-fetch", ct);

        void Complete(Response r, long offset, bool measured)
        {
            using (r)
            {
                long bytes, records;
                if (baselineRecordsPerChunk is { } perChunk)
                {
                    bytes = r.Body.Length;
                    records = perChunk;
                }
                else
                {
                    (bytes, records) = CheckFetch(r.Read<FetchResponse>(version), topic, offset, version, checkCrc: !measured);
                }
                if (!measured) return;
                result.Requests++;
                result.Bytes += bytes;
                result.Records += records;
                result.LatenciesMs.Add(r.LatencyMs);
            }
        }

        ValueTask<Task<Response>> Send(int i) => conn.SendAsync(ApiKey.Fetch, version, FetchBody(topic, offsets[i], maxBytes, version), ct);
        var warmupStop = WarmupStop(limits.Warmup);
        await Drive(limits, i => Send(i % offsets.Count), (r, i) => Complete(r, offsets[i % offsets.Count], measured: false), warmupStop, ct);

        var sw = Stopwatch.StartNew();
        await Drive(limits, Send, (r, i) => Complete(r, offsets[i], measured: true), requests =>
            requests >= offsets.Count ? "end of log" : result.Bytes >= limits.TotalBytes ? "bytes" : sw.Elapsed >= limits.TimeCap ? "time" : null,
            ct, reason => result.StopReason = reason);
        result.Elapsed = sw.Elapsed;
        return result;
    }

    /// <summary>Checks a broker fetch response (the CRC only during warm-up, to keep the client cost equal to the baseline's) and returns the size and record count of the batch that was asked for.</summary>
    private static (long Bytes, long Records) CheckFetch(FetchResponse response, string topic, long offset, short version, bool checkCrc)
    {
        string where = $"Fetch v{version} {topic}-0 at offset {offset}";
        if (response.ErrorCode != 0) throw new BenchFailure($"{where}: top-level error {(ErrorCode)response.ErrorCode} ({response.ErrorCode})");
        if (response.Responses.Count != 1 || response.Responses[0].Partitions.Count != 1)
            throw new BenchFailure($"{where}: expected one topic with one partition, got {response.Responses.Count} topics");
        var p = response.Responses[0].Partitions[0];
        if (p.ErrorCode != 0) throw new BenchFailure($"{where}: partition error {(ErrorCode)p.ErrorCode} ({p.ErrorCode}), high watermark {p.HighWatermark}");
        if (p.Records is not MemoryRecords { Length: > 0 } records)
            throw new BenchFailure($"{where}: no records (high watermark {p.HighWatermark}, log start {p.LogStartOffset})");
        var span = records.Bytes.Span;
        if (!RecordBatchHeader.TryRead(span, out var h) || h.Magic != 2)
            throw new BenchFailure($"{where}: {span.Length} record bytes do not start with a v2 batch header");
        if (h.BaseOffset != offset) throw new BenchFailure($"{where}: first batch has base offset {h.BaseOffset}");
        if (h.TotalSize > span.Length)
            throw new BenchFailure($"{where}: first batch ({h.TotalSize} bytes) truncated to {span.Length} bytes (max_bytes too small?)");
        if (checkCrc && !RecordBatchHeader.IsCrcValid(span[..h.TotalSize])) throw new BenchFailure($"{where}: batch CRC mismatch");
        return (h.TotalSize, h.RecordCount);
    }
}
