using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Broker.Handlers;
using Cairn.Broker.Network;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker;

/// <summary>A running single-node broker: the logs, the handlers and the network listener.</summary>
public sealed class KafkaBroker : IAsyncDisposable
{
    private readonly KafkaServer _server;
    private readonly ILogger _logger;

    private KafkaBroker(BrokerContext context, KafkaServer server, ILogger logger)
    {
        Context = context;
        _server = server;
        _logger = logger;
    }

    public BrokerContext Context { get; }
    public System.Net.IPEndPoint LocalEndPoint => _server.LocalEndPoint;
    public int ActiveConnections => _server.ActiveConnections;

    public static async Task<KafkaBroker> StartAsync(BrokerOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        var logger = loggerFactory.CreateLogger("Cairn.Broker");
        var dataDir = Path.GetFullPath(options.DataDir);
        Directory.CreateDirectory(dataDir);
        options = options with { DataDir = dataDir };
        LogManager? logsOpened = null;
        GroupCoordinator? coordinator = null;
        try
        {
            if (LogConfig.TryFromBrokerProperties(options.LogSettings, out var defaults, out var configError) != Protocol.ErrorCode.None)
                throw new ArgumentException(configError);
            var storage = new StorageOptions
            {
                DataDirectory = dataDir,
                DefaultConfig = defaults,
                FlushOnAck = options.FlushOnAck,
            };
            if (options.LogSettings.TryGetValue("log.retention.check.interval.ms", out var interval))
                storage.RetentionCheckInterval = TimeSpan.FromMilliseconds(long.Parse(interval, System.Globalization.CultureInfo.InvariantCulture));

            var logs = logsOpened = await LogManager.OpenAsync(storage, loggerFactory, cancellationToken);
            var clusterId = LoadOrCreateClusterId(dataDir);
            var groupLogger = loggerFactory.CreateLogger("Cairn.Groups");
            coordinator = await GroupCoordinator.StartAsync(CreateGroupStore(options, clusterId, dataDir, groupLogger), logs, options.Groups,
                TimeProvider.System, groupLogger, cancellationToken);
            var server = new KafkaServer(options.ListenEndPoint, null!, options.MaxRequestBytes, logger);
            var context = new BrokerContext(options, logs, clusterId,
                options.AdvertisedHost ?? options.ListenHost, options.AdvertisedPort ?? server.LocalEndPoint.Port, loggerFactory)
            {
                Groups = coordinator,
            };
            HandlerRegistry? registry = null;
            registry = new HandlerRegistry(
            [
                new ApiVersionsHandler(() => registry!),
                new MetadataHandler(context),
                new ProduceHandler(context),
                new FetchHandler(context),
                new ListOffsetsHandler(context),
                new CreateTopicsHandler(context),
                new DeleteTopicsHandler(context),
                new CreatePartitionsHandler(context),
                new DescribeConfigsHandler(context),
                new DescribeClusterHandler(context),
                new DeleteRecordsHandler(context),
                new InitProducerIdHandler(context),
                new FindCoordinatorHandler(context),
                new JoinGroupHandler(context),
                new SyncGroupHandler(context),
                new HeartbeatHandler(context),
                new LeaveGroupHandler(context),
                new OffsetCommitHandler(context),
                new OffsetFetchHandler(context),
                new ListGroupsHandler(context),
                new DescribeGroupsHandler(context),
                new DeleteGroupsHandler(context),
                new OffsetDeleteHandler(context),
            ]);
            server.Handlers = registry;
            server.Start();
            logger.LogInformation("Cairn broker {NodeId} (cluster {ClusterId}) listening on {Endpoint}, advertised as {Host}:{Port}, data in {DataDir}, {Topics} topics",
                options.NodeId, clusterId, server.LocalEndPoint, context.AdvertisedHost, context.AdvertisedPort, dataDir, logs.Topics.Count());
            return new KafkaBroker(context, server, logger);
        }
        catch (Exception) when (logsOpened is not null)
        {
            if (coordinator is not null) await coordinator.DisposeAsync();
            await logsOpened.DisposeAsync();
            throw;
        }
    }

    private static IGroupStore CreateGroupStore(BrokerOptions options, string clusterId, string dataDir, ILogger logger) => options.OffsetStore switch
    {
        OffsetStoreKind.Memory => new InMemoryGroupStore(clusterId, logger: logger),
        OffsetStoreKind.Postgres => new PostgresGroupStore(clusterId,
            options.OffsetStoreConnection ?? throw new ArgumentException("offset.store=postgres needs offset.store.connection (a PostgreSQL connection string)"), logger),
        _ => SqliteGroupStore.ForDataDir(clusterId, dataDir, logger),
    };

    private static string LoadOrCreateClusterId(string dataDir)
    {
        var path = Path.Combine(dataDir, "cluster-id");
        if (File.Exists(path)) return File.ReadAllText(path).Trim();
        // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
        var id = Convert.ToBase64String(Guid.NewGuid().ToByteArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var temp = path + ".tmp";
        File.WriteAllText(temp, id);
        File.Move(temp, path, overwrite: true);
        return id;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await Context.Groups.DisposeAsync();
        await Context.Logs.DisposeAsync();
        _logger.LogInformation("logs flushed and closed");
    }
}
