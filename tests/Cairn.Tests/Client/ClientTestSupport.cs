using System.Text;
using Cairn.Client;
using Cairn.Protocol.Records;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Client;

/// <summary>One in-process broker per test (xunit makes a class instance per test), and clients on it.</summary>
public abstract class ClientTestBase : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _owned = [];

    protected BrokerHarness Broker { get; private set; } = null!;
    protected KafkaAdminClient Admin { get; private set; } = null!;

    protected virtual Cairn.Broker.BrokerOptions Configure(Cairn.Broker.BrokerOptions options) => options with
    {
        DefaultPartitions = 1,
        OffsetStore = Cairn.Broker.OffsetStoreKind.Memory,
        Groups = options.Groups with { InitialRebalanceDelay = TimeSpan.Zero },
    };

    public virtual async Task InitializeAsync()
    {
        Broker = await BrokerHarness.StartAsync(Configure);
        Admin = Own(new KafkaAdminClient(ClientOptions));
    }

    public virtual async Task DisposeAsync()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            try { await _owned[i].DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15)); } catch (Exception) { }
        }
        await Broker.DisposeAsync();
    }

    protected T Own<T>(T disposable) where T : IAsyncDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    protected KafkaClientOptions ClientOptions => new()
    {
        BootstrapServers = $"127.0.0.1:{Broker.Port}",
        ClientId = "cairn-client-tests",
        RequestTimeout = TimeSpan.FromSeconds(10),
        Retries = 3,
        RetryBackoff = TimeSpan.FromMilliseconds(20),
    };

    protected KafkaProducer Producer(ProducerOptions? options = null) => Own(new KafkaProducer(ClientOptions, options ?? new ProducerOptions { Linger = TimeSpan.Zero }));

    protected KafkaConsumer Consumer(ConsumerOptions? options = null) =>
        Own(new KafkaConsumer(ClientOptions, options ?? new ConsumerOptions { MaxWait = TimeSpan.FromMilliseconds(200), AutoOffsetReset = AutoOffsetReset.Earliest }));

    protected async Task<string> CreateTopicAsync(string name, int partitions = 1, IReadOnlyDictionary<string, string?>? configs = null)
    {
        await Admin.CreateTopicAsync(name, partitions, 1, configs);
        return name;
    }

    /// <summary>Reads <paramref name="count"/> records, failing (instead of hanging) after <paramref name="timeout"/>.</summary>
    protected static async Task<List<ConsumeResult>> ConsumeAsync(KafkaConsumer consumer, int count, TimeSpan? timeout = null, bool skipEof = true)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        var results = new List<ConsumeResult>();
        while (results.Count < count)
        {
            var r = await consumer.ConsumeAsync(cts.Token);
            if (r.IsPartitionEof && skipEof) continue;
            results.Add(r);
        }
        return results;
    }

    protected static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);
    protected static string? Text(ReadOnlyMemory<byte>? m) => m is { } v ? Encoding.UTF8.GetString(v.Span) : null;

    /// <summary>The raw batches of a partition, as a broker returns them (to look at batch headers).</summary>
    protected async Task<List<RecordBatchSlice>> ReadBatchesAsync(string topic, int partition = 0)
    {
        using var wire = await Broker.ConnectAsync();
        var response = await wire.SendAsync<Cairn.Protocol.Messages.FetchRequest, Cairn.Protocol.Messages.FetchResponse>(new()
        {
            ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 64 << 20, SessionEpoch = -1,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = 0, PartitionMaxBytes = 64 << 20 }] }],
        }, 12);
        var payload = response.Responses.Single().Partitions.Single().Records;
        var bytes = new byte[payload?.Length ?? 0];
        payload?.CopyTo(bytes);
        var batches = new List<RecordBatchSlice>();
        var iterator = new RecordBatchIterator(bytes);
        while (iterator.MoveNext()) batches.Add(iterator.Current);
        return batches;
    }
}

/// <summary>Keeps every log line (level, category, message) for assertions.</summary>
public sealed class CapturingLoggerFactory : Microsoft.Extensions.Logging.ILoggerFactory, Microsoft.Extensions.Logging.ILoggerProvider
{
    public System.Collections.Concurrent.ConcurrentQueue<(Microsoft.Extensions.Logging.LogLevel Level, string Category, string Message)> Lines { get; } = new();

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
    public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider) { }
    public void Dispose() { }

    private sealed class Logger(CapturingLoggerFactory owner, string category) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;
        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue((logLevel, category, formatter(state, exception)));
    }
}
