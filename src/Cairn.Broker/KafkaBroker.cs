using Cairn.Broker.Admin;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;
using Cairn.Broker.Handlers;
using Cairn.Broker.Metrics;
using Cairn.Broker.Network;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker;

/// <summary>A running single-node broker: the logs, the handlers and the network listener.</summary>
public sealed class KafkaBroker : IAsyncDisposable
{
    private readonly KafkaServer _server;
    private readonly ILogger _logger;
    private AdminServer? _admin;
    private LagSampler? _lagSampler;
    private readonly MetricsExport? _export;
    private volatile bool _ready;

    private KafkaBroker(BrokerContext context, KafkaServer server, BrokerMetrics metrics, MetricsExport? export, ILogger logger)
    {
        Context = context;
        _server = server;
        Metrics = metrics;
        _export = export;
        _logger = logger;
    }

    public BrokerContext Context { get; }
    public System.Net.IPEndPoint LocalEndPoint => _server.LocalEndPoint;
    public int ActiveConnections => _server.ActiveConnections;
    /// <summary>The broker's instruments (meter "Cairn.Broker").</summary>
    public BrokerMetrics Metrics { get; }
    /// <summary>Where the admin HTTP server listens (the actual port when configured with port 0); null when it is off.</summary>
    public System.Net.IPEndPoint? AdminEndPoint => _admin?.LocalEndPoint;
    /// <summary>The lag sampler behind the dashboard's charts; null when the admin server is off.</summary>
    public LagSampler? LagSampler => _lagSampler;

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
        LogManager? logsOpened = null;
        GroupCoordinator? coordinator = null;
        KafkaServer? server = null;
        BrokerMetrics? metrics = null;
        MetricsExport? export = null;
        KafkaBroker? broker = null;
        try
        {
            // Bind first: a taken port is the likeliest start-up failure and must not wait for (or be hidden by) the logs.
            server = new KafkaServer(options.ListenEndPoint, null!, options.MaxRequestBytes, logger);
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

            LogManager logs;
            try
            {
                logs = logsOpened = await LogManager.OpenAsync(storage, loggerFactory, cancellationToken);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new IOException($"cannot write to data directory {dataDir}: permission denied", e);
            }
            var clusterId = LoadOrCreateClusterId(dataDir);
            var groupLogger = loggerFactory.CreateLogger("Cairn.Groups");
            coordinator = await GroupCoordinator.StartAsync(CreateGroupStore(options, clusterId, dataDir, groupLogger), logs, options.Groups,
                TimeProvider.System, groupLogger, cancellationToken);
            metrics = new BrokerMetrics(logs, new GroupMetricsSource(coordinator, logs), () => server?.ActiveConnections ?? 0, options.Admin.MaxMetricSeries);
            export = MetricsExport.Start(metrics, options.Admin.Enabled, options.Metrics, $"{clusterId}/{options.NodeId}",
                loggerFactory.CreateLogger("Cairn.Metrics"));
            if (options.Metrics.OtlpEndpoint is { } otlp)
                logger.LogInformation("metrics pushed over OTLP/HTTP to {Endpoint} every {Interval}", otlp, options.Metrics.OtlpExportInterval);
            server.Metrics = metrics;
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
                new IncrementalAlterConfigsHandler(context),
                new AlterConfigsHandler(context),
                new DescribeLogDirsHandler(context),
            ]);
            server.Handlers = registry;
            server.Start();
            logger.LogInformation("Cairn {Version} listening on {Endpoint}: broker {NodeId} (cluster {ClusterId}), advertised as {Host}:{Port}, data in {DataDir}, {Topics} topics",
                Protocol.CairnVersion.Value, server.LocalEndPoint, options.NodeId, clusterId, context.AdvertisedHost, context.AdvertisedPort, dataDir, logs.Topics.Count());
            broker = new KafkaBroker(context, server, metrics, export, logger);
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
            if (server is not null) await server.DisposeAsync();
            if (coordinator is not null) await coordinator.DisposeAsync();
            if (logsOpened is not null) await logsOpened.DisposeAsync();
            export?.Dispose();
            metrics?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts the lag sampler and the admin HTTP server. The default address is best effort (another broker on this
    /// machine may hold it): failing to bind it is logged and the broker runs without the admin server.
    /// </summary>
    private async Task StartAdminAsync(AdminOptions admin, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var time = TimeProvider.System;
        var adminLogger = loggerFactory.CreateLogger("Cairn.Admin");
        var sampler = new LagSampler(Context.Groups, Context.Logs, time, admin.LagSampleInterval, admin.LagHistory, admin.MaxMetricSeries, adminLogger);
        var export = _export ?? throw new InvalidOperationException("the admin server needs the metrics export");
        var api = new AdminApi(Context, new OffsetResetService(Context.Logs, Context.Groups, time), sampler, time);
        try
        {
            _admin = await AdminServer.StartAsync(admin, api, export, () => _ready, () => _server.LocalEndPoint, loggerFactory, cancellationToken);
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
        _ready = false;
        if (_admin is not null) await _admin.DisposeAsync();
        if (_lagSampler is not null) await _lagSampler.DisposeAsync();
        _export?.Dispose();
        await _server.DisposeAsync();
        await Context.Groups.DisposeAsync();
        await Context.Logs.DisposeAsync();
        Metrics.Dispose();
        _logger.LogInformation("logs flushed and closed");
    }
}
