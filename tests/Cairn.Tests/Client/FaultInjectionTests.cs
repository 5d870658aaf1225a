using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Cairn.Client;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Client;

/// <summary>
/// A loopback TCP proxy that can swallow the broker's answers and cut every connection: at once, or right after it
/// has passed a request of a given kind to the broker (so that request is in flight when its connection dies).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    /// <summary>A client connection and its connection to the broker.</summary>
    private sealed class Link(Socket client, Socket upstream)
    {
        public Socket Client { get; } = client;
        public Socket Upstream { get; } = upstream;
        /// <summary>Set just before a request is passed on and the link cut: no answer to it may reach the client.</summary>
        public volatile bool Muted;
    }

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<Link> _links = [];
    private readonly List<(ApiKey Key, TaskCompletionSource Cut)> _armed = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public TcpProxy()
    {
        _listener.Start();
        _accepting = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public int TargetPort { get; set; }
    /// <summary>While set, bytes from the broker are read and dropped.</summary>
    public volatile bool Blackhole;

    public void SeverAll()
    {
        lock (_links)
        {
            foreach (var link in _links)
            {
                link.Muted = true;
                foreach (var s in new[] { link.Client, link.Upstream })
                {
                    try { s.Shutdown(SocketShutdown.Both); } catch (Exception) { }
                    s.Dispose();
                }
            }
            _links.Clear();
        }
    }

    /// <summary>
    /// Cuts every connection and stops the blackhole in one step: a connection opened after the cut gets the broker's
    /// answers, a connection from before it gets none.
    /// </summary>
    public void SeverAllAndStopBlackhole()
    {
        lock (_links)
        {
            SeverAll();
            Blackhole = false;
        }
    }

    /// <summary>
    /// Arms a cut: the next request with <paramref name="apiKey"/> a client sends is passed to the broker, then every
    /// connection is cut before any answer to it can reach the client. The task completes when that has happened.
    /// </summary>
    public Task CutAfterNextRequestAsync(ApiKey apiKey)
    {
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_armed) _armed.Add((apiKey, cut));
        return cut.Task;
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try { await upstream.ConnectAsync(IPAddress.Loopback, TargetPort, _stop.Token); }
                catch (Exception) { client.Dispose(); upstream.Dispose(); continue; }
                var link = new Link(client, upstream);
                lock (_links) _links.Add(link);
                _ = PumpRequestsAsync(link);
                _ = PumpAnswersAsync(link);
            }
        }
        catch (Exception) { }
    }

    private async Task PumpRequestsAsync(Link link)
    {
        var buffer = new byte[64 * 1024];
        var scanner = new RequestScanner();
        var keys = new List<ApiKey>();
        try
        {
            while (true)
            {
                int n = await link.Client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0) break;
                keys.Clear();
                scanner.Scan(buffer.AsSpan(0, n), keys);
                TaskCompletionSource? cut = null;
                lock (_armed)
                {
                    int at = _armed.FindIndex(a => keys.Contains(a.Key));
                    if (at >= 0) { cut = _armed[at].Cut; _armed.RemoveAt(at); }
                }
                if (cut is not null) link.Muted = true; // before the broker can have the request, so its answer is lost
                await link.Upstream.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
                if (cut is not null)
                {
                    SeverAll();
                    cut.TrySetResult();
                    break;
                }
            }
        }
        catch (Exception) { }
        try { link.Upstream.Shutdown(SocketShutdown.Both); } catch (Exception) { }
    }

    private async Task PumpAnswersAsync(Link link)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await link.Upstream.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0) break;
                if (Blackhole || link.Muted) continue;
                await link.Client.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception) { }
        try { link.Client.Shutdown(SocketShutdown.Both); } catch (Exception) { }
    }

    /// <summary>Follows the request frames of one connection (size, then api key) across the chunks it is read in.</summary>
    private sealed class RequestScanner
    {
        private readonly byte[] _head = new byte[6];
        private int _filled;
        private long _rest;

        public void Scan(ReadOnlySpan<byte> chunk, List<ApiKey> keys)
        {
            while (chunk.Length > 0)
            {
                if (_rest > 0)
                {
                    int skip = (int)Math.Min(_rest, chunk.Length);
                    _rest -= skip;
                    chunk = chunk[skip..];
                    continue;
                }
                int take = Math.Min(_head.Length - _filled, chunk.Length);
                chunk[..take].CopyTo(_head.AsSpan(_filled));
                _filled += take;
                chunk = chunk[take..];
                if (_filled < _head.Length) return;
                keys.Add((ApiKey)BinaryPrimitives.ReadInt16BigEndian(_head.AsSpan(4)));
                _rest = BinaryPrimitives.ReadInt32BigEndian(_head) - 2L; // the size counts the api key just read
                _filled = 0;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        SeverAll();
        try { await _accepting; } catch (Exception) { }
    }
}

public sealed class FaultInjectionTests : IAsyncLifetime
{
    private readonly TcpProxy _proxy = new();
    private BrokerHarness _broker = null!;

    public async Task InitializeAsync()
    {
        // Clients learn the proxy's address from the metadata, so all their traffic crosses it.
        _broker = await BrokerHarness.StartAsync(o => o with { AdvertisedPort = _proxy.Port, DefaultPartitions = 3, OffsetStore = Cairn.Broker.OffsetStoreKind.Memory });
        _proxy.TargetPort = _broker.Port;
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _broker.DisposeAsync();
    }

    private KafkaClientOptions Options => new()
    {
        BootstrapServers = $"127.0.0.1:{_proxy.Port}", RequestTimeout = TimeSpan.FromSeconds(10), Retries = 20, RetryBackoff = TimeSpan.FromMilliseconds(20),
    };

    private async Task<long> LogEndAsync(string topic, int partition)
    {
        using var wire = await _broker.ConnectAsync(); // straight to the broker, around the proxy
        var response = await wire.SendAsync<ListOffsetsRequest, ListOffsetsResponse>(new()
        {
            ReplicaId = -1, Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, Timestamp = -1 }] }],
        }, 7);
        return response.Topics[0].Partitions[0].Offset;
    }

    private async Task<List<string>> ValuesAsync(string topic, int partition)
    {
        using var wire = await _broker.ConnectAsync();
        var response = await wire.SendAsync<FetchRequest, FetchResponse>(new()
        {
            ReplicaId = -1, MaxBytes = 64 << 20, SessionEpoch = -1,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, PartitionMaxBytes = 64 << 20 }] }],
        }, 12);
        return Batches.ReadAll(response.Responses[0].Partitions[0].Records).Select(r => System.Text.Encoding.UTF8.GetString(r.Value!.Value.Span)).ToList();
    }

    /// <summary>The broker appends a batch but its answer is lost; the producer sends the batch again.</summary>
    private async Task<DeliveryResult> LoseOneAnswerAsync(KafkaProducer producer, TopicPartition tp, string value)
    {
        _proxy.Blackhole = true;
        var pending = producer.ProduceAsync(tp, Message.FromStrings("k", value));
        // Polls the broker around the proxy; the timeout only bounds the wait.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        long logEnd;
        while ((logEnd = await LogEndAsync(tp.Topic, tp.Partition)) < 2 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(2, logEnd); // appended once so far
        Assert.False(pending.IsCompleted);
        _proxy.SeverAllAndStopBlackhole(); // the reconnection that follows gets its answers
        return await pending.WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task An_idempotent_producer_retrying_a_batch_whose_answer_was_lost_writes_it_once()
    {
        await using var producer = new KafkaProducer(Options, new ProducerOptions { Idempotent = true, Linger = TimeSpan.Zero });
        var tp = new TopicPartition("exactly-once", 0);
        Assert.Equal(0, (await producer.ProduceAsync(tp, Message.FromStrings("k", "first"))).Offset);
        var retried = await LoseOneAnswerAsync(producer, tp, "second");
        Assert.Equal(1, retried.Offset); // the broker recognised the duplicate and answered with the original offset
        Assert.Equal(["first", "second"], await ValuesAsync("exactly-once", 0));
    }

    [Fact]
    public async Task Without_idempotence_the_same_retry_duplicates()
    {
        // The control experiment: shows the scenario above really resends an appended batch.
        await using var producer = new KafkaProducer(Options, new ProducerOptions { Linger = TimeSpan.Zero, Acks = Acks.All });
        var tp = new TopicPartition("at-least-once", 0);
        await producer.ProduceAsync(tp, Message.FromStrings("k", "first"));
        var retried = await LoseOneAnswerAsync(producer, tp, "second");
        Assert.Equal(2, retried.Offset);
        Assert.Equal(["first", "second", "second"], await ValuesAsync("at-least-once", 0));
    }

    /// <summary>Counts delivered records and lets a test wait, without polling, until a condition on the count holds.</summary>
    private sealed class DeliveryCounter
    {
        private int _count;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count => Volatile.Read(ref _count);

        public void Add()
        {
            Interlocked.Increment(ref _count);
            Interlocked.Exchange(ref _changed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }

        public async Task WaitUntilAsync(Func<int, bool> condition, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                var changed = Volatile.Read(ref _changed).Task; // taken before the count is read: no change is missed
                if (condition(Count)) return;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) throw new TimeoutException($"{Count} records delivered; the condition did not hold within {timeout}");
                await changed.WaitAsync(left);
            }
        }
    }

    [Fact]
    public async Task Connections_cut_again_and_again_lose_nothing_and_reorder_nothing_with_idempotence()
    {
        var logs = new CapturingLoggerFactory();
        await using var producer = new KafkaProducer(Options with { LoggerFactory = logs }, new ProducerOptions
        {
            Idempotent = true, Linger = TimeSpan.FromMilliseconds(2), BatchSizeBytes = 2048, MaxInFlightPerConnection = 5,
        });
        // Cuts are tied to the producer's progress, not to the clock, so a slow machine sees the same faults as a fast
        // one: the first Metadata and InitProducerId requests lose their answers; then the records go in 30 rounds of
        // 100, and each round cuts the connections once or twice: right after a Produce request reached the broker
        // (appended or not, its answer is lost), that and the handshake of the reconnection, or at a random moment
        // (a produce in flight, a linger wait, a reconnection, or nothing). Before the next round at least one record
        // gets through (or all are through), so the faults never starve the producer's retries.
        var wait = TimeSpan.FromSeconds(60); // bounds each wait; under load rounds are slower, never fewer
        var startup = new[] { _proxy.CutAfterNextRequestAsync(ApiKey.Metadata), _proxy.CutAfterNextRequestAsync(ApiKey.InitProducerId) };
        const int count = 3000, rounds = 30, perRound = count / rounds;
        var delivered = new DeliveryCounter();
        var sends = new List<Task<DeliveryResult>>();
        int produceCuts = 0;
        for (int round = 0; round < rounds; round++)
        {
            var cuts = new List<Task>();
            if (round % 3 != 1)
            {
                cuts.Add(_proxy.CutAfterNextRequestAsync(ApiKey.Produce)); // armed first: this round's records need a Produce request
                produceCuts++;
            }
            if (round % 3 == 2) cuts.Add(_proxy.CutAfterNextRequestAsync(ApiKey.ApiVersions)); // the reconnection after the cut above
            for (int i = round * perRound; i < (round + 1) * perRound; i++)
            {
                var send = producer.ProduceAsync(new TopicPartition("chaos", i % 3), Message.FromStrings(null, i.ToString("D5")));
                _ = send.ContinueWith(_ => delivered.Add(), TaskScheduler.Default);
                sends.Add(send);
            }
            if (round % 3 == 1)
            {
                await Task.Delay(Random.Shared.Next(0, 40));
                _proxy.SeverAll();
            }
            await Task.WhenAll(cuts).WaitAsync(wait);
            int before = delivered.Count, produced = sends.Count;
            await delivered.WaitUntilAsync(n => n > before || n == produced, wait);
        }
        await Task.WhenAll(startup).WaitAsync(wait);
        var results = await Task.WhenAll(sends).WaitAsync(wait);
        for (int p = 0; p < 3; p++)
        {
            var values = await ValuesAsync("chaos", p);
            var expected = Enumerable.Range(0, count).Where(i => i % 3 == p).Select(i => i.ToString("D5")).ToList();
            Assert.Equal(expected, values); // each once, in order
            Assert.Equal(Enumerable.Range(0, expected.Count).Select(i => (long)i), results.Where(r => r.Partition == p).Select(r => r.Offset));
        }
        // The cuts did hit requests in flight: connections were lost and batches sent again.
        Assert.Contains(logs.Lines, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Warning && l.Message.Contains("lost"));
        Assert.Contains(logs.Lines, l => l.Message.StartsWith("Retrying"));
        // Each cut Produce request went over a connection of its own, and was sent again over a new one.
        Assert.True(logs.Lines.Count(l => l.Message.StartsWith("Connected to")) > produceCuts);
    }
}
