using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Broker.Handlers;
using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;
using Cairn.Storage;
using Cairn.Tests.Groups;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Handlers;

/// <summary>
/// What handlers run against, without a broker or a socket: real logs in a temp directory and a group coordinator over
/// an in-memory store, on a manual clock, seen through the same views the broker's composition root gives them.
/// </summary>
internal sealed class HandlerFixture : IAsyncDisposable
{
    public static readonly TimeSpan InitialRebalanceDelay = TimeSpan.FromSeconds(3);
    public const int DefaultPartitions = 2;

    private readonly string _dataDir;

    private HandlerFixture(string dataDir, LogManager logs, GroupCoordinator coordinator, ManualTimeProvider clock)
    {
        _dataDir = dataDir;
        Logs = logs;
        Coordinator = coordinator;
        Clock = clock;
        Topics = new LogTopicCatalog(logs, autoCreateTopics: true, DefaultPartitions);
        Groups = new CoordinatorServices(coordinator);
    }

    public ClusterIdentity Cluster { get; } = new(7, "handler-tests-cluster", "broker.example", 19092);
    public LogManager Logs { get; }
    public GroupCoordinator Coordinator { get; }
    public ManualTimeProvider Clock { get; }
    public LogTopicCatalog Topics { get; }
    public CoordinatorServices Groups { get; }

    public static async Task<HandlerFixture> StartAsync()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cairn-handlers-" + Guid.NewGuid().ToString("N"));
        var logs = LogManager.Open(new StorageOptions { DataDirectory = dataDir, RunBackgroundTasks = false });
        var clock = new ManualTimeProvider();
        var coordinator = await GroupCoordinator.StartAsync(new InMemoryGroupStore("handler-tests-cluster"), logs,
            new GroupCoordinatorOptions { InitialRebalanceDelay = InitialRebalanceDelay, OffsetsRetentionCheckInterval = TimeSpan.FromDays(3650) },
            clock, NullLogger.Instance);
        return new HandlerFixture(dataDir, logs, coordinator, clock);
    }

    /// <summary>Calls <paramref name="handler"/> with a decoded request at <paramref name="version"/>, as the connection would.</summary>
    public static async Task<TResponse?> CallAsync<TRequest, TResponse>(ApiHandler<TRequest, TResponse> handler, TRequest request, short version,
        string clientId = "handler-tests")
        where TRequest : class, new() where TResponse : class, new()
    {
        return await handler.HandleDecodedAsync(ContextFor<TRequest>(version, clientId), request, CancellationToken.None);
    }

    /// <summary>
    /// <see cref="CallAsync"/>, with a failure answered as the connection answers it: the error policy picks the code and
    /// the handler builds its error response from the request's bytes.
    /// </summary>
    public static async Task<TResponse?> CallUnderErrorPolicyAsync<TRequest, TResponse>(ApiHandler<TRequest, TResponse> handler, TRequest request,
        short version, string clientId = "handler-tests")
        where TRequest : class, new() where TResponse : class, new()
    {
        var context = ContextFor<TRequest>(version, clientId);
        try
        {
            return await handler.HandleDecodedAsync(context, request, CancellationToken.None);
        }
        catch (Exception failure)
        {
            using var body = new KafkaWriter();
            MessageSerializer.Write(body, request, version);
            var error = ErrorPolicy.CodeFor(context.Header.ApiKey, failure);
            return (TResponse?)((IApiHandler)handler).ErrorResponse(context, new KafkaReader(body.WrittenMemory), error);
        }
    }

    private static RequestContext ContextFor<TRequest>(short version, string clientId) where TRequest : class, new() =>
        new(new RequestHeader(MessageCatalog.Of<TRequest>().ApiKey, version, 1, clientId), new ConnectionInfo(1, "127.0.0.1:40000", "/127.0.0.1"));

    public async ValueTask DisposeAsync()
    {
        await Coordinator.DisposeAsync();
        await Logs.DisposeAsync();
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A fresh <see cref="HandlerFixture"/> per test, with one topic, "orders", of two partitions.</summary>
public abstract class HandlerTestBase : IAsyncLifetime
{
    private HandlerFixture? _fixture;

    private protected HandlerFixture F => _fixture ?? throw new InvalidOperationException("the fixture starts in InitializeAsync");

    public async Task InitializeAsync()
    {
        _fixture = await HandlerFixture.StartAsync();
        Assert.True(_fixture.Logs.CreateTopic("orders", 2).Succeeded);
    }

    public async Task DisposeAsync()
    {
        if (_fixture is not null) await _fixture.DisposeAsync();
    }
}
