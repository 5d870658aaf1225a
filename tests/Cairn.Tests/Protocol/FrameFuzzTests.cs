using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Tests.Broker;
using Cairn.Testing;
using Xunit.Abstractions;

namespace Cairn.Tests.Protocol;

/// <summary>
/// Issue 10, item 5: 100,000 mutated request frames (<see cref="FuzzFrames"/>) of every API and version the broker
/// serves, sent over parallel connections at a broker process. Afterwards the broker must have logged nothing at error
/// level and no handler exception (a request answered with UNKNOWN_SERVER_ERROR after a handler threw), still answer
/// ApiVersions and Metadata, return the records written before byte for byte, and have kept its resident memory under a
/// bound throughout. Auto-creation is off and generated CreateTopics/CreatePartitions ask for at most
/// <see cref="FuzzFrames.MaxPartitionsPerRequest"/> partitions, so the topics the frames create stay few. Bounded by count and time; the seed is in every failure message
/// (CAIRN_FUZZ_SEED replays another one, CAIRN_FUZZ_FRAMES changes the count).
/// </summary>
public sealed partial class FrameFuzzTests(ITestOutputHelper output)
{
    private const int DefaultSeed = 20_261_202;
    private const int DefaultFrames = 100_000;
    private const int Connections = 12;
    /// <summary>Stops sending after this even if fewer frames went out (a slow machine must not fail the test).</summary>
    private static readonly TimeSpan SendBudget = TimeSpan.FromSeconds(150);
    /// <summary>A request still unanswered after this (a long poll or rebalance a mutation asked for) is given up on; the connection is dropped.</summary>
    private static readonly TimeSpan ResponseTimeout = TimeSpan.FromMilliseconds(750);
    /// <summary>
    /// Resident memory bound. Frames are at most a few KB and the outer size is only ever off by a little, so this is the
    /// broker's baseline plus room for the topics and groups the frames create; it does not test queued.max.request.bytes.
    /// </summary>
    private const long RssBoundBytes = 384L * 1024 * 1024;

    [GeneratedRegex(@"^(\[stderr\] )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (fail|crit): ")]
    private static partial Regex ErrorLevel();

    [GeneratedRegex(@" warn: .* failed, answering ")]
    private static partial Regex HandlerFailure();

    private sealed class Tally
    {
        public long Sent, Answered, Closed, TimedOut, Reconnects;
        public readonly ConcurrentDictionary<ApiKey, long> ByApi = new();
    }

    [Fact]
    public async Task Mutated_frames_of_every_api_and_version_leave_the_broker_serving_with_records_intact_and_no_error_line()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("CAIRN_FUZZ_SEED"), out var s) ? s : DefaultSeed;
        int frames = int.TryParse(Environment.GetEnvironmentVariable("CAIRN_FUZZ_FRAMES"), out var n) ? n : DefaultFrames;
        string replay = $"seed {seed}, {frames} frames (CAIRN_FUZZ_SEED={seed} replays; frame i has correlation id i)";

        var errors = new ConcurrentQueue<string>();
        var handlerFailures = new ConcurrentQueue<string>();
        long warnings = 0;
        await using var broker = await BrokerProcess.StartAsync(new Cairn.Testing.BrokerOptions
        {
            AutoCreateTopics = false,
            DefaultPartitions = 1,
            AdminListen = "none",
            Settings = new Dictionary<string, string>
            {
                ["group.initial.rebalance.delay.ms"] = "0",
                ["group.max.session.timeout.ms"] = "10000",
            },
            Output = line =>
            {
                if (ErrorLevel().IsMatch(line) || line.Contains("Unhandled exception", StringComparison.Ordinal) ||
                    line.Contains("Fatal error", StringComparison.Ordinal))
                    errors.Enqueue(line);
                else if (HandlerFailure().IsMatch(line)) handlerFailures.Enqueue(line);
                if (line.Contains(" warn: ", StringComparison.Ordinal)) Interlocked.Increment(ref warnings);
            },
        });
        int pid = broker.Pid ?? throw new InvalidOperationException("no broker pid");

        // The records that must survive, in a topic whose name no frame contains (FuzzFrames refuses any that would).
        string protectedTopic = "protected-" + Guid.NewGuid().ToString("N");
        var batches = new[] { Batches.Build(40, "keep"), Batches.Build(25, "gz", codec: CompressionCodec.Gzip), Batches.Build(10, "zs", codec: CompressionCodec.Zstd) };
        ApiVersionsResponse served;
        using (var client = await WireClient.ConnectAsync(broker.Port))
        {
            served = await client.SendAsync<ApiVersionsRequest, ApiVersionsResponse>(new(), 0);
            foreach (var topic in new[] { protectedTopic, "x" }) // "x" is the name every generated request uses: produce and fetch reach a log
            {
                var created = await client.SendAsync<CreateTopicsRequest, CreateTopicsResponse>(
                    new() { Topics = [new() { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 10_000 }, 4);
                Assert.Equal(0, created.Topics.Single().ErrorCode);
            }
            foreach (var batch in batches)
            {
                var produced = await client.SendAsync<ProduceRequest, ProduceResponse>(new()
                {
                    Acks = -1,
                    TimeoutMs = 10_000,
                    TopicData = [new() { Name = protectedTopic, PartitionData = [new() { Index = 0, Records = new MemoryRecords(batch) }] }],
                }, 8);
                Assert.Equal(0, produced.Responses.Single().PartitionResponses.Single().ErrorCode);
            }
        }
        var before = await ReadAllAsync(broker.Port, protectedTopic);
        Assert.Equal(75, Batches.ReadAll(new MemoryRecords(before)).Count);

        var generator = new FuzzFrames(served.ApiKeys.Select(a => ((ApiKey)a.ApiKey, a.MinVersion, a.MaxVersion)), seed, protectedTopic);
        Assert.True(frames >= generator.Count, $"{frames} frames cannot cover the {generator.Count} base requests");
        var tally = new Tally();
        long next = -1;
        long peakRss = 0;
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peakRss = Math.Max(peakRss, Rss(pid));
                try { await Task.Delay(200, stop.Token); } catch (OperationCanceledException) { }
            }
        });
        var workers = Enumerable.Range(0, Connections).Select(_ => Task.Run(async () =>
        {
            Socket? socket = null;
            try
            {
                while (clock.Elapsed < SendBudget && broker.IsRunning)
                {
                    long i = Interlocked.Increment(ref next);
                    if (i >= frames) break;
                    var frame = generator.Get(i);
                    if (socket is null)
                    {
                        socket = await ConnectAsync(broker.Port);
                        Interlocked.Increment(ref tally.Reconnects);
                    }
                    var outcome = await ExchangeAsync(socket, frame);
                    Interlocked.Increment(ref tally.Sent);
                    tally.ByApi.AddOrUpdate(frame.ApiKey, 1, (_, c) => c + 1);
                    if (outcome == Outcome.Answered) Interlocked.Increment(ref tally.Answered);
                    else if (outcome == Outcome.Closed) Interlocked.Increment(ref tally.Closed);
                    else Interlocked.Increment(ref tally.TimedOut);
                    if (outcome != Outcome.Answered || frame.EndsMidFrame)
                    {
                        socket.Dispose();
                        socket = null;
                    }
                }
            }
            finally
            {
                socket?.Dispose();
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var sending = clock.Elapsed;
        await stop.CancelAsync();
        await sampler;
        peakRss = Math.Max(peakRss, Rss(pid));

        output.WriteLine($"{replay}: sent {tally.Sent} frames in {sending.TotalSeconds:F1} s over {Connections} connections " +
            $"({tally.Answered} answered, {tally.Closed} closed by the broker, {tally.TimedOut} unanswered after {ResponseTimeout.TotalMilliseconds} ms, {tally.Reconnects} connections)");
        output.WriteLine($"{generator.Covered.Count()} API versions covered: {string.Join(", ", tally.ByApi.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}");
        output.WriteLine($"peak RSS {peakRss / (1024 * 1024)} MiB (bound {RssBoundBytes / (1024 * 1024)} MiB); {warnings} warning lines; {handlerFailures.Count} handler failures answered with an error");
        foreach (var kind in handlerFailures.Select(FailureKind).GroupBy(k => k).OrderByDescending(g => g.Count()))
            output.WriteLine($"handler failure x{kind.Count()}: {kind.Key}");

        Assert.True(broker.IsRunning, $"{replay}: the broker exited ({broker.ExitCode}).\n{broker.RecentOutput()}");
        Assert.True(errors.IsEmpty, $"{replay}: {errors.Count} error-level line(s), e.g.:\n{string.Join('\n', errors.Take(10))}");
        // Bad input gets a Kafka error or one warning, never an exception (issue 10, item 4): a handler that threw is a bug too.
        Assert.True(handlerFailures.IsEmpty, $"{replay}: {handlerFailures.Count} request(s) made a handler throw, e.g.:\n{string.Join('\n', handlerFailures.Take(5))}");
        Assert.True(tally.Sent >= Math.Min(frames, generator.Count), $"{replay}: only {tally.Sent} frames sent");
        Assert.True(peakRss < RssBoundBytes, $"{replay}: broker RSS reached {peakRss / (1024 * 1024)} MiB, bound {RssBoundBytes / (1024 * 1024)} MiB");

        using (var client = await WireClient.ConnectAsync(broker.Port))
        {
            var versions = await client.SendAsync<ApiVersionsRequest, ApiVersionsResponse>(new() { ClientSoftwareName = "fuzz", ClientSoftwareVersion = "1" }, 3);
            Assert.Equal(0, versions.ErrorCode);
            var metadata = await client.SendAsync<MetadataRequest, MetadataResponse>(new() { Topics = [new() { Name = protectedTopic }] }, 9);
            Assert.Equal(0, metadata.Topics.Single().ErrorCode);
        }
        var after = await ReadAllAsync(broker.Port, protectedTopic);
        Assert.True(before.AsSpan().SequenceEqual(after), $"{replay}: the protected topic's {before.Length} bytes came back as {after.Length} different bytes");
    }

    [GeneratedRegex(@": (\w+) v\d+ request -?\d+ from client .* failed, answering \w+ ([\w.]+): (.{0,60})")]
    private static partial Regex FailureLine();

    /// <summary>"Api Exception: message" of a handler failure warning, for the report.</summary>
    private static string FailureKind(string line) =>
        FailureLine().Match(line) is { Success: true } m ? $"{m.Groups[1].Value} {m.Groups[2].Value}: {m.Groups[3].Value}" : line[..Math.Min(line.Length, 200)];

    private enum Outcome { Answered, Closed, TimedOut }

    private static async Task<Socket> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port);
        return socket;
    }

    /// <summary>Sends one frame and waits (bounded) for its response or for the broker to close the connection.</summary>
    private static async Task<Outcome> ExchangeAsync(Socket socket, FuzzFrame frame)
    {
        using var timeout = new CancellationTokenSource(ResponseTimeout);
        try
        {
            ReadOnlyMemory<byte> pending = frame.Bytes;
            while (!pending.IsEmpty) pending = pending[await socket.SendAsync(pending, SocketFlags.None, timeout.Token)..];
            if (frame.EndsMidFrame) socket.Shutdown(SocketShutdown.Send);
            var size = new byte[4];
            if (!await ReadExactlyAsync(socket, size, timeout.Token)) return Outcome.Closed;
            var body = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
            return await ReadExactlyAsync(socket, body, timeout.Token) ? Outcome.Answered : Outcome.Closed;
        }
        catch (SocketException)
        {
            return Outcome.Closed;
        }
        catch (OperationCanceledException)
        {
            return Outcome.TimedOut;
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0) return false;
            buffer = buffer[n..];
        }
        return true;
    }

    /// <summary>Every byte of partition 0 of <paramref name="topic"/>, as Fetch returns it.</summary>
    private static async Task<byte[]> ReadAllAsync(int port, string topic)
    {
        using var client = await WireClient.ConnectAsync(port);
        var fetched = await client.SendAsync<FetchRequest, FetchResponse>(new()
        {
            MaxWaitMs = 0,
            MaxBytes = 1 << 20,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        }, 12);
        var partition = fetched.Responses.Single().Partitions.Single();
        Assert.Equal(0, partition.ErrorCode);
        var bytes = new byte[partition.Records!.Length];
        partition.Records.CopyTo(bytes);
        return bytes;
    }

    /// <summary>VmRSS of a process, in bytes; 0 once it is gone.</summary>
    private static long Rss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { }
        return 0;
    }
}
