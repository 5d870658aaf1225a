using System.Net.Sockets;
using Cairn.Broker.Admin;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Broker.Handlers;
using Cairn.Broker.Metrics;
using Cairn.Broker.Network;
using Cairn.Broker.Services;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker;

/// <summary>
/// A running single-node broker, and its composition root: <see cref="StartAsync"/> binds the listener, opens the logs,
/// starts the group coordinator over its store, builds the handlers over narrow views of those, and only then serves.
/// </summary>
public sealed class KafkaBroker : IAsyncDisposable
{
    private readonly KafkaServer _server;
    private readonly LogManager _logs;
    private readonly GroupCoordinator _groups;
    private readonly ILogger _logger;
    private AdminServer? _admin;
    private LagSampler? _lagSampler;
    private readonly MetricsExport? _export;
    private volatile bool _ready;

    private KafkaBroker(ClusterIdentity cluster, LogManager logs, GroupCoordinator groups, KafkaServer server, BrokerMetrics metrics, MetricsExport? export, ILogger logger)
    {
        Cluster = cluster;
        _logs = logs;
        _groups = groups;
        _server = server;
        Metrics = metrics;
        _export = export;
        _logger = logger;
    }

    internal ClusterIdentity Cluster { get; }
    /// <summary>The partition logs; for tests that change topics behind the protocol's back.</summary>
    internal LogManager Logs => _logs;
    public System.Net.IPEndPoint LocalEndPoint => _server.LocalEndPoint;
    public int ActiveConnections => _server.ActiveConnections;
    /// <summary>The broker's instruments (meter "Cairn.Broker").</summary>
    internal BrokerMetrics Metrics { get; }
    /// <summary>Where the admin HTTP server listens (the actual port when configured with port 0); null when it is off.</summary>
    public System.Net.IPEndPoint? AdminEndPoint => _admin?.LocalEndPoint;
    /// <summary>The lag sampler behind the dashboard's charts; null when the admin server is off.</summary>
    internal LagSampler? LagSampler => _lagSampler;

    public static async Task<KafkaBroker> StartAsync(BrokerOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        var logger = loggerFactory.CreateLogger("Cairn.Broker");
        var dataDir = Path.GetFullPath(options.DataDir);
        try
        {
            Directory.CreateDirectory(dataDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot create data directory {dataDir}: {CreateDirectoryError(dataDir, e)}", e);
        }
        options = options with { DataDir = dataDir };
        // Before anything opens files: connections and segments share this limit.
        long fdLimit = FileDescriptorLimit.RaiseToHardLimit(logger);
        var limits = ConnectionLimitsOf(options, fdLimit);
        Socket? listener = null;
        LogManager? logs = null;
        GroupCoordinator? coordinator = null;
        KafkaServer? server = null;
        BrokerMetrics? metrics = null;
        MetricsExport? export = null;
        KafkaBroker? broker = null;
        try
        {
            // Bind first: a taken port is the likeliest start-up failure and must not wait for (or be hidden by) the logs.
            listener = KafkaServer.BindExclusive(options.ListenEndPoint);
            var bound = (System.Net.IPEndPoint)listener.LocalEndPoint!;
            logs = await OpenLogsAsync(options, fdLimit, loggerFactory, cancellationToken);
            var cluster = new ClusterIdentity(options.NodeId, LoadOrCreateClusterId(dataDir),
                options.AdvertisedHost ?? options.ListenHost, options.AdvertisedPort ?? bound.Port);
            var groupLogger = loggerFactory.CreateLogger("Cairn.Groups");
            coordinator = await GroupCoordinator.StartAsync(CreateGroupStore(options, cluster.ClusterId, dataDir, groupLogger), logs, options.Groups,
                TimeProvider.System, groupLogger, cancellationToken);
            // The gauge reads the server once it exists; until then no connection can have been accepted.
            metrics = new BrokerMetrics(logs, new GroupMetricsSource(coordinator, logs), () => server?.ActiveConnections ?? 0, options.Admin.MaxMetricSeries);
            var storeProblem = coordinator.Store.IntegrityProblem;
            metrics.ObserveOffsetStoreIntegrity(() => storeProblem is not null);
            export = MetricsExport.Start(metrics, options.Admin.Enabled, options.Metrics, $"{cluster.ClusterId}/{options.NodeId}",
                loggerFactory.CreateLogger("Cairn.Metrics"));
            if (options.Metrics.OtlpEndpoint is { } otlp)
                logger.LogInformation("metrics pushed over OTLP/HTTP to {Endpoint} every {Interval}", otlp, options.Metrics.OtlpExportInterval);
            var registry = CreateHandlers(options, cluster, logs, coordinator);
            server = new KafkaServer(listener, registry, options.MaxRequestBytes, logger, metrics, limits);
            listener = null; // the server owns the socket now
            logger.LogInformation("limits: max.connections {MaxConnections}{Derived}, max.connections.per.ip {PerIp}, queued.max.request.bytes {Queued}, connections.max.idle.ms {Idle}, request.frame.timeout.ms {FrameTimeout}, log.max.open.files {OpenFiles}, max.partitions {Partitions}",
                Show(limits.MaxConnections), options.MaxConnections is null ? " (half the open file limit)" : "", Show(limits.MaxConnectionsPerIp),
                limits.QueuedMaxRequestBytes > 0 ? limits.QueuedMaxRequestBytes : "unlimited", Show(limits.IdleTimeout), Show(limits.FrameTimeout),
                options.MaxOpenFiles ?? BrokerOptions.DefaultMaxOpenFiles(fdLimit), options.MaxPartitions);
            server.Start();
            logger.LogInformation("Cairn {Version} listening on {Endpoint}: broker {NodeId} (cluster {ClusterId}), advertised as {Host}:{Port}, data in {DataDir}, {Topics} topics",
                Protocol.CairnVersion.Value, server.LocalEndPoint, options.NodeId, cluster.ClusterId, cluster.AdvertisedHost, cluster.AdvertisedPort, dataDir, logs.Topics.Count());
            broker = new KafkaBroker(cluster, logs, coordinator, server, metrics, export, logger);
            if (options.Admin.Enabled) await broker.StartAdminAsync(options.Admin, loggerFactory, cancellationToken);
            broker._ready = true;
            return broker;
        }
        catch (Exception) when (broker is not null)
        {
            await broker.DisposeAsync();
            throw;
        }
        catch (Exception)
        {
            listener?.Dispose();
            if (server is not null) await server.DisposeAsync();
            if (coordinator is not null) await coordinator.DisposeAsync();
            if (logs is not null) await logs.DisposeAsync();
            export?.Dispose();
            metrics?.Dispose();
            throw;
        }
    }

    private static ConnectionLimits ConnectionLimitsOf(BrokerOptions options, long fileDescriptorSoftLimit) => new()
    {
        MaxConnections = options.MaxConnections ?? BrokerOptions.DefaultMaxConnections(fileDescriptorSoftLimit),
        MaxConnectionsPerIp = options.MaxConnectionsPerIp,
        QueuedMaxRequestBytes = options.QueuedMaxRequestBytes,
        IdleTimeout = options.ConnectionsMaxIdle,
        FrameTimeout = options.RequestFrameTimeout,
    };

    private static object Show(int limit) => limit == int.MaxValue ? "unlimited" : limit;

    private static object Show(TimeSpan timeout) => timeout == Timeout.InfiniteTimeSpan ? -1 : (long)timeout.TotalMilliseconds;

    private static async Task<LogManager> OpenLogsAsync(BrokerOptions options, long fileDescriptorSoftLimit, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        if (LogConfig.TryFromBrokerProperties(options.LogSettings, out var defaults, out var configError) != Protocol.ErrorCode.None)
            throw new ArgumentException(configError);
        var storage = new StorageOptions
        {
            DataDirectory = options.DataDir,
            DefaultConfig = defaults,
            FlushOnAck = options.FlushOnAck,
            MaxPartitions = options.MaxPartitions,
            MaxOpenFiles = options.MaxOpenFiles ?? BrokerOptions.DefaultMaxOpenFiles(fileDescriptorSoftLimit),
        };
        if (options.LogSettings.TryGetValue("log.retention.check.interval.ms", out var interval))
            storage.RetentionCheckInterval = TimeSpan.FromMilliseconds(long.Parse(interval, System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            return await LogManager.OpenAsync(storage, loggerFactory, cancellationToken);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException($"cannot write to data directory {options.DataDir}: permission denied", e);
        }
    }

    /// <summary>Every API this broker serves, each handler given only the views it needs.</summary>
    private static HandlerRegistry CreateHandlers(BrokerOptions options, ClusterIdentity cluster, LogManager logs, GroupCoordinator coordinator)
    {
        var topics = new LogTopicCatalog(logs, options.AutoCreateTopics, options.DefaultPartitions);
        var groups = new CoordinatorServices(coordinator);
        var settings = new StaticBrokerConfig(options.NodeId, options.DefaultPartitions, options.AutoCreateTopics, options.MaxRequestBytes,
            options.DataDir, options.FlushOnAck, options.LogSettings);
        IApiHandler[] handlers =
        [
            new MetadataHandler(cluster, topics),
            new ProduceHandler(topics),
            new FetchHandler(topics, new FetchSessionCache()),
            new ListOffsetsHandler(topics),
            new CreateTopicsHandler(cluster, topics),
            new DeleteTopicsHandler(topics, groups),
            new CreatePartitionsHandler(cluster, topics),
            new DescribeConfigsHandler(settings, topics),
            new DescribeClusterHandler(cluster),
            new DeleteRecordsHandler(topics),
            new InitProducerIdHandler(new ProducerIdAllocator(options.DataDir)),
            new FindCoordinatorHandler(cluster),
            new JoinGroupHandler(groups),
            new SyncGroupHandler(groups),
            new HeartbeatHandler(groups),
            new LeaveGroupHandler(groups),
            new OffsetCommitHandler(groups),
            new OffsetFetchHandler(groups),
            new ListGroupsHandler(groups),
            new DescribeGroupsHandler(groups),
            new DeleteGroupsHandler(groups),
            new OffsetDeleteHandler(groups),
            new IncrementalAlterConfigsHandler(topics),
            new AlterConfigsHandler(topics),
            new DescribeLogDirsHandler(settings, topics),
        ];
        return new HandlerRegistry([new ApiVersionsHandler(handlers), .. handlers]);
    }

    /// <summary>
    /// Starts the lag sampler and the admin HTTP server. The default address is best effort (another broker on this
    /// machine may hold it): failing to bind it is logged and the broker runs without the admin server.
    /// </summary>
    private async Task StartAdminAsync(AdminOptions admin, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var time = TimeProvider.System;
        var adminLogger = loggerFactory.CreateLogger("Cairn.Admin");
        var sampler = new LagSampler(_groups, _logs, time, admin.LagSampleInterval, admin.LagHistory, admin.MaxMetricSeries, adminLogger);
        var export = _export ?? throw new InvalidOperationException("the admin server needs the metrics export");
        var api = new AdminApi(Cluster, _logs, _groups, new OffsetResetService(_logs, _groups, time), sampler, time);
        try
        {
            _admin = await AdminServer.StartAsync(admin, api, export, () => _ready, () => _server.LocalEndPoint, Cluster.AdvertisedHost, loggerFactory, cancellationToken);
        }
        catch (Exception e) when (admin.ListenIsDefault && e is IOException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            _logger.LogWarning("admin API not started: {Error} (the default admin.listen); set admin.listen (--admin-listen) to another HOST:PORT, or to none",
                e.Message);
            return;
        }
        _lagSampler = sampler;
        sampler.Start();
        _logger.LogInformation("admin API, /metrics and dashboard on http://{Endpoint}/ (remote writes {Remote})",
            _admin.LocalEndPoint, admin.AllowRemoteWrites ? "allowed" : "refused");
    }

    private static string CreateDirectoryError(string path, Exception e)
    {
        if (e is UnauthorizedAccessException) return "permission denied";
        for (var dir = Path.GetDirectoryName(path); dir is not null; dir = Path.GetDirectoryName(dir))
            if (File.Exists(dir)) return $"{dir} is a file, not a directory";
        return e.Message;
    }

    private static IGroupStore CreateGroupStore(BrokerOptions options, string clusterId, string dataDir, ILogger logger) => options.OffsetStore switch
    {
        OffsetStoreKind.Memory => new InMemoryGroupStore(clusterId, logger: logger),
        OffsetStoreKind.Postgres => new PostgresGroupStore(clusterId,
            options.OffsetStoreConnection ?? throw new ArgumentException("offset.store=postgres needs offset.store.connection (a PostgreSQL connection string)"), logger),
        _ => SqliteGroupStore.ForDataDir(clusterId, dataDir, logger, new SqliteGroupStoreOptions { AcceptLoss = options.OffsetStoreAcceptLoss }),
    };

    private static string LoadOrCreateClusterId(string dataDir)
    {
        var path = Path.Combine(dataDir, "cluster-id");
        if (File.Exists(path))
        {
            var existing = File.ReadAllText(path).Trim();
            // Committed offsets are keyed by the cluster id: never replace a lost one with a new id in silence.
            if (existing.Length == 0)
                throw new InvalidDataException($"{path} is empty (damaged by a crash?): write the cluster id back into it; " +
                                               "committed offsets are stored under it (cluster_id in groups.db)");
            return existing;
        }
        // Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
        var id = Convert.ToBase64String(Guid.NewGuid().ToByteArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        // Durable (fsync, rename, directory fsync): a power loss right after the first start must not leave an empty file.
        DurableFile.WriteAtomic(path, System.Text.Encoding.ASCII.GetBytes(id));
        return id;
    }

    public async ValueTask DisposeAsync()
    {
        _ready = false;
        if (_admin is not null) await _admin.DisposeAsync();
        if (_lagSampler is not null) await _lagSampler.DisposeAsync();
        _export?.Dispose();
        await _server.DisposeAsync();
        await _groups.DisposeAsync();
        await _logs.DisposeAsync();
        Metrics.Dispose();
        _logger.LogInformation("logs flushed and closed");
    }
}
