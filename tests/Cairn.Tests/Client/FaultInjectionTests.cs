using System.Net;
using System.Net.Sockets;
using Cairn.Client;
using Cairn.Protocol.Messages;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Client;

/// <summary>A loopback TCP proxy that can swallow the broker's answers and cut every connection.</summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<Socket> _sockets = [];
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
        lock (_sockets)
        {
            foreach (var s in _sockets) { try { s.Shutdown(SocketShutdown.Both); } catch (Exception) { } s.Dispose(); }
            _sockets.Clear();
        }
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
                lock (_sockets) { _sockets.Add(client); _sockets.Add(upstream); }
                _ = PumpAsync(client, upstream, fromBroker: false);
                _ = PumpAsync(upstream, client, fromBroker: true);
            }
        }
        catch (Exception) { }
    }

    private async Task PumpAsync(Socket from, Socket to, bool fromBroker)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (n == 0) break;
                if (fromBroker && Blackhole) continue;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception) { }
        try { to.Shutdown(SocketShutdown.Both); } catch (Exception) { }
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
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await LogEndAsync(tp.Topic, tp.Partition) < 2 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.False(pending.IsCompleted);
        _proxy.SeverAll();
        _proxy.Blackhole = false;
        return await pending.WaitAsync(TimeSpan.FromSeconds(20));
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

    [Fact]
    public async Task Connections_cut_again_and_again_lose_nothing_and_reorder_nothing_with_idempotence()
    {
        var logs = new CapturingLoggerFactory();
        await using var producer = new KafkaProducer(Options with { LoggerFactory = logs }, new ProducerOptions
        {
            Idempotent = true, Linger = TimeSpan.FromMilliseconds(2), BatchSizeBytes = 2048, MaxInFlightPerConnection = 5,
        });
        const int count = 3000;
        using var chaos = new CancellationTokenSource();
        var cutting = Task.Run(async () =>
        {
            while (!chaos.IsCancellationRequested)
            {
                await Task.Delay(Random.Shared.Next(20, 60));
                _proxy.SeverAll();
            }
        });
        var sends = new List<Task<DeliveryResult>>();
        for (int i = 0; i < count; i++)
        {
            sends.Add(producer.ProduceAsync(new TopicPartition("chaos", i % 3), Message.FromStrings(null, i.ToString("D5"))));
            if (i % 100 == 0) await Task.Delay(5);
        }
        var results = await Task.WhenAll(sends).WaitAsync(TimeSpan.FromSeconds(60));
        chaos.Cancel();
        await cutting;
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
        Assert.True(logs.Lines.Count(l => l.Message.StartsWith("Connected to")) > 2);
    }
}
