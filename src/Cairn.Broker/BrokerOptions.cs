using System.Globalization;
using System.Net;
using Cairn.Broker.Admin;
using Cairn.Broker.Groups;
using Cairn.Broker.Metrics;
using Cairn.Storage;

namespace Cairn.Broker;

/// <summary>Broker settings. Settings can come from a properties file, CAIRN_* environment variables and flags (in rising precedence).</summary>
public sealed record BrokerOptions
{
    public string ListenHost { get; init; } = "127.0.0.1";
    public int ListenPort { get; init; } = 9092;
    /// <summary>Host clients are told to connect to (Metadata); defaults to the listen host.</summary>
    public string? AdvertisedHost { get; init; }
    public int? AdvertisedPort { get; init; }
    public int NodeId { get; init; } = 1;
    public string DataDir { get; init; } = "./cairn-data";
    /// <summary>Partitions of auto-created topics (Kafka's num.partitions).</summary>
    public int DefaultPartitions { get; init; } = 1;
    public bool AutoCreateTopics { get; init; } = true;
    /// <summary>Largest request frame accepted; larger ones close the connection.</summary>
    public int MaxRequestBytes { get; init; } = 100 * 1024 * 1024;
    /// <summary>
    /// max.connections: open Kafka connections at most; more are closed at once after accept. Null (the default): half the
    /// open file limit the broker runs with (<see cref="DefaultMaxConnections"/>), so connections alone cannot exhaust the
    /// descriptors that segment files need. (Kafka's default is unlimited.)
    /// </summary>
    public int? MaxConnections { get; init; }
    /// <summary>max.connections.per.ip: open connections from one address at most; unlimited by default, as in Kafka.</summary>
    public int MaxConnectionsPerIp { get; init; } = int.MaxValue;
    /// <summary>
    /// queued.max.request.bytes: bytes of request frames being received or handled across all connections; reads pause
    /// while it is reached. At least <see cref="MaxRequestBytes"/> (as Kafka requires); -1: unlimited (Kafka's default).
    /// </summary>
    public long QueuedMaxRequestBytes { get; init; } = DefaultQueuedMaxRequestBytes;
    /// <summary>connections.max.idle.ms: connections with nothing received and no request in flight this long are closed; infinite: never.</summary>
    public TimeSpan ConnectionsMaxIdle { get; init; } = DefaultConnectionsMaxIdle;
    /// <summary>request.frame.timeout.ms: a request frame must arrive whole this long after its first byte; infinite: no limit.</summary>
    public TimeSpan RequestFrameTimeout { get; init; } = DefaultRequestFrameTimeout;

    /// <summary>256 MiB: a bound on request memory well above what a busy single broker needs in flight (Kafka: unlimited).</summary>
    public const long DefaultQueuedMaxRequestBytes = 256L * 1024 * 1024;
    /// <summary>10 minutes, Kafka's connections.max.idle.ms.</summary>
    public static readonly TimeSpan DefaultConnectionsMaxIdle = TimeSpan.FromMinutes(10);
    /// <summary>
    /// 30 s: Kafka clients give up on a request after request.timeout.ms (30 s by default), so a frame still arriving
    /// after that has been abandoned by its sender; only a slow-loris client keeps one open longer.
    /// </summary>
    public static readonly TimeSpan DefaultRequestFrameTimeout = TimeSpan.FromSeconds(30);

    /// <summary>max.connections when not set: half the open file limit, at least 64 (unlimited when the limit is unknown).</summary>
    public static int DefaultMaxConnections(long fileDescriptorSoftLimit) =>
        (int)Math.Clamp(fileDescriptorSoftLimit / 2, 64, int.MaxValue);

    /// <summary>fsync before acknowledging acks=-1 produce requests.</summary>
    public bool FlushOnAck { get; init; }
    /// <summary>max.partitions (KIP-578): the most partitions this broker hosts; creations past it get POLICY_VIOLATION.</summary>
    public int MaxPartitions { get; init; } = StorageOptions.DefaultMaxPartitions;
    /// <summary>
    /// log.max.open.files: the segment file descriptors storage keeps open (least recently used idle ones are closed). Null
    /// (the default): <see cref="DefaultMaxOpenFiles"/> of the open file limit the broker runs with.
    /// </summary>
    public int? MaxOpenFiles { get; init; }

    /// <summary>
    /// log.max.open.files when not set: 1024, but at most a quarter of the open file limit (at least 16), so that with
    /// max.connections at half of it, SQLite, the admin server and the runtime keep a quarter.
    /// </summary>
    public static int DefaultMaxOpenFiles(long fileDescriptorSoftLimit) =>
        (int)Math.Clamp(fileDescriptorSoftLimit / 4, 16, StorageOptions.DefaultMaxOpenFiles);
    /// <summary>Broker-wide log settings with Kafka names (log.retention.ms, log.segment.bytes, ...), the defaults for every topic.</summary>
    public IReadOnlyDictionary<string, string> LogSettings { get; init; } = new Dictionary<string, string>();
    /// <summary>Where committed offsets and group metadata live: sqlite (default, a file in the data dir), postgres or memory.</summary>
    public OffsetStoreKind OffsetStore { get; init; } = OffsetStoreKind.Sqlite;
    /// <summary>PostgreSQL connection string, when <see cref="OffsetStore"/> is postgres.</summary>
    public string? OffsetStoreConnection { get; init; }
    /// <summary>Start even when the SQLite offset store fails its start-up check (damaged file, lost commits); reported, not fatal.</summary>
    public bool OffsetStoreAcceptLoss { get; init; }
    public GroupCoordinatorOptions Groups { get; init; } = new();
    /// <summary>The admin HTTP server (JSON API, /metrics, dashboard); on 127.0.0.1:9644 by default.</summary>
    public AdminOptions Admin { get; init; } = new();
    /// <summary>Where the metrics are pushed besides /metrics (OTLP; off by default).</summary>
    public MetricsOptions Metrics { get; init; } = new();

    public IPEndPoint ListenEndPoint => new(IPAddress.Parse(ListenHost == "localhost" ? "127.0.0.1" : ListenHost), ListenPort);

    /// <summary>
    /// Builds options from flat settings. Names are matched loosely: "data-dir", "data.dir", "data_dir"
    /// and the environment variable CAIRN_DATA_DIR all mean the same setting.
    /// </summary>
    public static BrokerOptions FromSettings(IEnumerable<KeyValuePair<string, string>> settings)
    {
        var options = new BrokerOptions();
        var log = new Dictionary<string, string>(StringComparer.Ordinal);
        bool queuedSet = false;
        foreach (var (rawKey, rawValue) in settings)
        {
            var key = Normalize(rawKey);
            var value = rawValue.Trim();
            options = key switch
            {
                "listen" => WithListen(options, value),
                "advertised.host" => options with { AdvertisedHost = value },
                "advertised.port" => options with { AdvertisedPort = ParseInt(key, value, 1, 65535) },
                "node.id" => options with { NodeId = ParseInt(key, value, 0, int.MaxValue) },
                "data.dir" or "log.dir" or "log.dirs" => options with { DataDir = value },
                "default.partitions" or "num.partitions" => options with { DefaultPartitions = ParseInt(key, value, 1, 100_000) },
                "auto.create.topics" or "auto.create.topics.enable" => options with { AutoCreateTopics = ParseBool(key, value) },
                "max.request.bytes" or "socket.request.max.bytes" => options with { MaxRequestBytes = ParseInt(key, value, 1024, int.MaxValue) },
                "log.flush.on.ack" => options with { FlushOnAck = ParseBool(key, value) },
                "max.partitions" => options with { MaxPartitions = ParseInt(key, value, 1, int.MaxValue) },
                "log.max.open.files" => options with { MaxOpenFiles = ParseInt(key, value, 1, int.MaxValue) },
                "max.connections" => options with { MaxConnections = ParseInt(key, value, 1, int.MaxValue) },
                "max.connections.per.ip" => options with { MaxConnectionsPerIp = ParseInt(key, value, 1, int.MaxValue) },
                "queued.max.request.bytes" => WithQueuedMaxRequestBytes(options, key, value, ref queuedSet),
                "connections.max.idle.ms" => options with { ConnectionsMaxIdle = MsOrInfinite(key, value) },
                "request.frame.timeout.ms" => options with { RequestFrameTimeout = MsOrInfinite(key, value) },
                "offset.store" => options with { OffsetStore = ParseStore(value) },
                "offset.store.connection" => options with { OffsetStoreConnection = value, OffsetStore = OffsetStoreKind.Postgres },
                "offset.store.accept.loss" => options with { OffsetStoreAcceptLoss = ParseBool(key, value) },
                "group.min.session.timeout.ms" => options with { Groups = options.Groups with { MinSessionTimeout = Ms(key, value) } },
                "group.max.session.timeout.ms" => options with { Groups = options.Groups with { MaxSessionTimeout = Ms(key, value) } },
                "group.initial.rebalance.delay.ms" => options with { Groups = options.Groups with { InitialRebalanceDelay = Ms(key, value) } },
                "group.max.size" => options with { Groups = options.Groups with { MaxGroupSize = ParseInt(key, value, 1, int.MaxValue) } },
                "offsets.retention.minutes" => options with { Groups = options.Groups with { OffsetsRetention = TimeSpan.FromMinutes(ParseInt(key, value, 1, int.MaxValue)) } },
                "offsets.retention.check.interval.ms" => options with { Groups = options.Groups with { OffsetsRetentionCheckInterval = Ms(key, value) } },
                "offset.metadata.max.bytes" => options with { Groups = options.Groups with { MaxOffsetMetadataBytes = ParseInt(key, value, 0, int.MaxValue) } },
                "admin.listen" => WithAdminListen(options, value),
                "admin.enabled" => options with { Admin = options.Admin with { Enabled = ParseBool(key, value) } },
                "admin.allow.remote.writes" => options with { Admin = options.Admin with { AllowRemoteWrites = ParseBool(key, value) } },
                "admin.auth.token" => options with { Admin = options.Admin with { AuthToken = value.Length == 0 ? null : value } },
                "admin.lag.sample.interval.ms" => options with { Admin = options.Admin with { LagSampleInterval = Ms(key, value, 100) } },
                "admin.lag.history.minutes" => options with { Admin = options.Admin with { LagHistory = TimeSpan.FromMinutes(ParseInt(key, value, 1, 7 * 24 * 60)) } },
                "metrics.max.series" => options with { Admin = options.Admin with { MaxMetricSeries = ParseInt(key, value, 1, 10_000_000) } },
                "metrics.otlp.endpoint" => options with
                {
                    Metrics = options.Metrics with { OtlpEndpoint = IsOff(value) ? null : MetricsOptions.ParseOtlpEndpoint(value) },
                },
                "metrics.otlp.interval.ms" => options with { Metrics = options.Metrics with { OtlpExportInterval = Ms(key, value, 100) } },
                "log.retention.check.interval.ms" => Track(options, log, key, ParseInt(key, value, 1, int.MaxValue).ToString(CultureInfo.InvariantCulture)),
                _ when LogPropertyNames.Contains(key) => Track(options, log, key, value),
                _ => throw new ArgumentException(UnknownSettingMessage(rawKey)),
            };
        }
        // The topic defaults are checked now, so a bad value is a configuration error before anything starts.
        foreach (var (key, value) in log)
        {
            if (LogConfig.TryFromBrokerProperties(new Dictionary<string, string> { [key] = value }, out _, out var logError) != Protocol.ErrorCode.None)
                throw new ArgumentException($"{key}: {logError}");
        }
        // Like Kafka, the request budget must hold the largest request; the default grows with max.request.bytes.
        if (options.QueuedMaxRequestBytes > 0 && options.QueuedMaxRequestBytes < options.MaxRequestBytes)
        {
            if (queuedSet)
                throw new ArgumentException($"queued.max.request.bytes ({options.QueuedMaxRequestBytes}) must be at least max.request.bytes ({options.MaxRequestBytes}), or -1 for unlimited");
            options = options with { QueuedMaxRequestBytes = options.MaxRequestBytes };
        }
        return options with { LogSettings = log };
    }

    private static BrokerOptions WithQueuedMaxRequestBytes(BrokerOptions options, string key, string value, ref bool set)
    {
        if (!long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var bytes) || (bytes < 1024 && bytes != -1))
            throw new ArgumentException($"{key} must be -1 (unlimited) or a number of bytes >= 1024, got '{value}'");
        set = true;
        return options with { QueuedMaxRequestBytes = bytes };
    }

    /// <summary>Milliseconds, at least 1; -1 means never (as in Kafka's connections.max.idle.ms).</summary>
    private static TimeSpan MsOrInfinite(string key, string value)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) || (ms < 1 && ms != -1))
            throw new ArgumentException($"{key} must be -1 (never) or an integer in [1, {int.MaxValue}], got '{value}'");
        return ms == -1 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(ms);
    }

    /// <summary>The broker-wide topic defaults the storage layer understands (log.retention.ms, message.max.bytes, ...).</summary>
    private static readonly HashSet<string> LogPropertyNames = [.. LogConfig.BrokerPropertyNames];

    /// <summary>Every setting name <see cref="FromSettings"/> accepts, in its dotted form.</summary>
    public static IReadOnlyList<string> SettingNames { get; } =
    [
        "listen", "advertised.host", "advertised.port", "node.id", "data.dir", "log.dir", "log.dirs", "default.partitions", "num.partitions",
        "auto.create.topics", "auto.create.topics.enable", "max.request.bytes", "socket.request.max.bytes", "log.flush.on.ack",
        "max.partitions", "log.max.open.files", "max.connections", "max.connections.per.ip", "queued.max.request.bytes", "connections.max.idle.ms", "request.frame.timeout.ms",
        "offset.store", "offset.store.connection", "offset.store.accept.loss", "group.min.session.timeout.ms", "group.max.session.timeout.ms",
        "group.initial.rebalance.delay.ms", "group.max.size", "offsets.retention.minutes", "offsets.retention.check.interval.ms",
        "offset.metadata.max.bytes", "admin.listen", "admin.enabled", "admin.allow.remote.writes", "admin.auth.token",
        "admin.lag.sample.interval.ms", "admin.lag.history.minutes", "metrics.max.series", "metrics.otlp.endpoint", "metrics.otlp.interval.ms", "log.retention.check.interval.ms", .. LogConfig.BrokerPropertyNames,
    ];

    /// <summary>Whether <paramref name="key"/> (in any spelling <see cref="Normalize"/> accepts) names a broker setting.</summary>
    public static bool IsSetting(string key) => SettingNames.Contains(Normalize(key));

    /// <summary>"unknown setting 'log.retension.ms' (did you mean log.retention.ms?)": the closest names by edit distance.</summary>
    internal static string UnknownSettingMessage(string rawKey)
    {
        var key = Normalize(rawKey);
        var close = SettingNames
            .Select(name => (name, distance: EditDistance(key, name)))
            .Where(c => c.distance <= Math.Max(2, key.Length / 3))
            .OrderBy(c => c.distance).ThenBy(c => c.name, StringComparer.Ordinal)
            .Select(c => c.name).Distinct().Take(3).ToList();
        return close.Count == 0
            ? $"unknown setting '{rawKey}'"
            : $"unknown setting '{rawKey}' (did you mean {string.Join(", ", close.Take(close.Count - 1))}{(close.Count > 1 ? " or " : "")}{close[^1]}?)";
    }

    /// <summary>Levenshtein distance: insertions, deletions and substitutions each count one.</summary>
    internal static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    private static BrokerOptions Track(BrokerOptions options, Dictionary<string, string> log, string key, string value)
    {
        log[key] = value;
        return options;
    }

    public static string Normalize(string key) => key.Trim().ToLowerInvariant().Replace('-', '.').Replace('_', '.');

    private static BrokerOptions WithListen(BrokerOptions options, string value)
    {
        int colon = value.LastIndexOf(':');
        if (colon <= 0) throw new ArgumentException($"listen must be HOST:PORT, got '{value}'");
        var host = value[..colon].Trim('[', ']');
        if (host != "localhost" && !IPAddress.TryParse(host, out _)) throw new ArgumentException($"listen host must be an IP address, got '{host}'");
        return options with { ListenHost = host, ListenPort = ParseInt("listen", value[(colon + 1)..], 0, 65535) };
    }

    private static BrokerOptions WithAdminListen(BrokerOptions options, string value)
    {
        if (IsOff(value)) return options with { Admin = options.Admin with { Enabled = false } };
        AdminOptions.ParseEndPoint(value); // validate now: a bad address is a configuration error
        return options with { Admin = options.Admin with { Enabled = true, Listen = value } };
    }

    private static bool IsOff(string value) => value.ToLowerInvariant() is "none" or "off" or "disabled" or "false" or "";

    private static int ParseInt(string key, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new ArgumentException($"{key} must be an integer in [{min}, {max}], got '{value}'");
        return v;
    }

    private static TimeSpan Ms(string key, string value, int min = 0) => TimeSpan.FromMilliseconds(ParseInt(key, value, min, int.MaxValue));

    private static OffsetStoreKind ParseStore(string value) => value.ToLowerInvariant() switch
    {
        "sqlite" => OffsetStoreKind.Sqlite,
        "postgres" or "postgresql" => OffsetStoreKind.Postgres,
        "memory" => OffsetStoreKind.Memory,
        _ => throw new ArgumentException($"offset.store must be sqlite, postgres or memory, got '{value}'"),
    };

    private static bool ParseBool(string key, string value) =>
        bool.TryParse(value, out var b) ? b : throw new ArgumentException($"{key} must be true or false, got '{value}'");
}

public enum OffsetStoreKind { Sqlite, Postgres, Memory }
