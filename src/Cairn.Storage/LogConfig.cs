using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using Cairn.Protocol;

namespace Cairn.Storage;

public enum TimestampType { CreateTime, LogAppendTime }

/// <summary>Where an effective config value comes from (numbering follows Kafka's DescribeConfigs config_source).</summary>
public enum ConfigSource : sbyte
{
    TopicConfig = 1,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
}

/// <summary>Kafka's DescribeConfigs config_type values (v3+).</summary>
public enum ConfigType : sbyte
{
    Unknown = 0, Boolean = 1, String = 2, Int = 3, Short = 4, Long = 5, Double = 6, List = 7, Class = 8, Password = 9,
}

/// <summary>One effective topic config entry, as DescribeConfigs reports it.</summary>
public sealed record ConfigEntry(string Name, string? Value, ConfigSource Source, ConfigType Type, bool IsSensitive = false, bool ReadOnly = false);

/// <summary>An IncrementalAlterConfigs operation (numbering follows Kafka: 0 set, 1 delete, 2 append, 3 subtract).</summary>
public enum AlterConfigOp : sbyte { Set = 0, Delete = 1, Append = 2, Subtract = 3 }

public sealed record ConfigAlteration(string Name, AlterConfigOp Op, string? Value);

/// <summary>
/// Per-topic log configuration with Kafka's names. The typed properties are the ones the storage
/// engine enforces; other well-known Kafka topic configs are accepted, validated by type, stored and
/// reported (<see cref="Others"/>) but have no effect.
/// </summary>
public sealed record LogConfig
{
    public const string SegmentBytesConfig = "segment.bytes";
    public const string SegmentMsConfig = "segment.ms";
    public const string RetentionMsConfig = "retention.ms";
    public const string RetentionBytesConfig = "retention.bytes";
    public const string MaxMessageBytesConfig = "max.message.bytes";
    public const string MessageTimestampTypeConfig = "message.timestamp.type";
    public const string CleanupPolicyConfig = "cleanup.policy";
    public const string IndexIntervalBytesConfig = "index.interval.bytes";
    public const string FlushMessagesConfig = "flush.messages";
    public const string FlushMsConfig = "flush.ms";
    public const string FileDeleteDelayMsConfig = "file.delete.delay.ms";

    public static LogConfig Default { get; } = new();

    /// <summary>segment.bytes: roll the active segment when it would exceed this size (default 1 GiB).</summary>
    public int SegmentBytes { get; init; } = 1073741824;
    /// <summary>segment.ms: roll the active segment when its first append is older than this (default 7 days).</summary>
    public long SegmentMs { get; init; } = 604800000L;
    /// <summary>retention.ms: delete segments whose largest timestamp is older than this; -1 = forever (default 7 days).</summary>
    public long RetentionMs { get; init; } = 604800000L;
    /// <summary>retention.bytes: delete oldest segments while the partition is larger than this; -1 = unlimited.</summary>
    public long RetentionBytes { get; init; } = -1;
    /// <summary>max.message.bytes: largest accepted record batch, header included (default 1048588).</summary>
    public int MaxMessageBytes { get; init; } = 1048588;
    public TimestampType MessageTimestampType { get; init; } = TimestampType.CreateTime;
    /// <summary>cleanup.policy as given (delete, compact or compact,delete); compaction is not implemented.</summary>
    public string CleanupPolicy { get; init; } = "delete";
    public int IndexIntervalBytes { get; init; } = 4096;
    /// <summary>flush.messages: fsync after this many appended records (default: never).</summary>
    public long FlushMessages { get; init; } = long.MaxValue;
    /// <summary>flush.ms: fsync when the oldest unflushed append is older than this (default: never).</summary>
    public long FlushMs { get; init; } = long.MaxValue;
    /// <summary>file.delete.delay.ms: how long deleted segment files stay open for in-flight reads.</summary>
    public long FileDeleteDelayMs { get; init; } = 60000;
    /// <summary>Accepted-but-not-enforced Kafka topic configs that differ from their defaults.</summary>
    public ImmutableSortedDictionary<string, string> Others { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    public bool DeleteEnabled => CleanupPolicy.Contains("delete", StringComparison.Ordinal);

    // ---------------------------------------------------------------------------------------
    // Definitions

    private delegate string? Validator(string value, out object? parsed);

    private sealed record Def(string Name, ConfigType Type, Validator Validate, Func<LogConfig, string> Get, Func<LogConfig, object, LogConfig>? Set, string? OtherDefault = null);

    private static Validator IntRange(long min, long max = int.MaxValue) => (string v, out object? p) =>
    {
        p = null;
        if (!int.TryParse(v.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)) return "must be an int";
        if (i < min || i > max) return $"must be in [{min}, {max}]";
        p = i;
        return null;
    };

    private static Validator LongRange(long min, long max = long.MaxValue) => (string v, out object? p) =>
    {
        p = null;
        if (!long.TryParse(v.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return "must be a long";
        if (l < min || l > max) return $"must be in [{min}, {max}]";
        p = l;
        return null;
    };

    private static Validator OneOf(params string[] values) => (string v, out object? p) =>
    {
        p = null;
        var t = v.Trim();
        foreach (var x in values)
            if (string.Equals(x, t, StringComparison.OrdinalIgnoreCase)) { p = x; return null; }
        return $"must be one of {string.Join(", ", values)}";
    };

    private static readonly Validator Bool = (string v, out object? p) =>
    {
        p = null;
        if (!bool.TryParse(v.Trim(), out var b)) return "must be true or false";
        p = b ? "true" : "false";
        return null;
    };

    private static readonly Validator Ratio = (string v, out object? p) =>
    {
        p = null;
        if (!double.TryParse(v.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d < 0 || d > 1) return "must be a number in [0, 1]";
        p = d.ToString(CultureInfo.InvariantCulture);
        return null;
    };

    private static readonly Validator AnyString = (string v, out object? p) => { p = v; return null; };

    private static readonly Validator CleanupPolicyValidator = (string v, out object? p) =>
    {
        p = null;
        var parts = v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) return "must be delete, compact or compact,delete";
        bool compact = false, delete = false;
        foreach (var part in parts)
        {
            if (part.Equals("compact", StringComparison.OrdinalIgnoreCase)) compact = true;
            else if (part.Equals("delete", StringComparison.OrdinalIgnoreCase)) delete = true;
            else return $"unknown cleanup policy '{part}'";
        }
        p = compact && delete ? "compact,delete" : compact ? "compact" : "delete";
        return null;
    };

    private static string L(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static readonly Def[] Defs =
    [
        new(CleanupPolicyConfig, ConfigType.List, CleanupPolicyValidator, c => c.CleanupPolicy, (c, o) => c with { CleanupPolicy = (string)o }),
        new("compression.type", ConfigType.String, OneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), null!, null, "producer"),
        new("compression.gzip.level", ConfigType.Int, IntRange(-1, 9), null!, null, "-1"),
        new("compression.lz4.level", ConfigType.Int, IntRange(1, 17), null!, null, "9"),
        new("compression.zstd.level", ConfigType.Int, IntRange(-131072, 22), null!, null, "3"),
        new("delete.retention.ms", ConfigType.Long, LongRange(0), null!, null, "86400000"),
        new(FileDeleteDelayMsConfig, ConfigType.Long, LongRange(0), c => L(c.FileDeleteDelayMs), (c, o) => c with { FileDeleteDelayMs = (long)o }),
        new(FlushMessagesConfig, ConfigType.Long, LongRange(1), c => L(c.FlushMessages), (c, o) => c with { FlushMessages = (long)o }),
        new(FlushMsConfig, ConfigType.Long, LongRange(0), c => L(c.FlushMs), (c, o) => c with { FlushMs = (long)o }),
        new("follower.replication.throttled.replicas", ConfigType.List, AnyString, null!, null, ""),
        new(IndexIntervalBytesConfig, ConfigType.Int, IntRange(0), c => L(c.IndexIntervalBytes), (c, o) => c with { IndexIntervalBytes = (int)o }),
        new("leader.replication.throttled.replicas", ConfigType.List, AnyString, null!, null, ""),
        new("local.retention.bytes", ConfigType.Long, LongRange(-2), null!, null, "-2"),
        new("local.retention.ms", ConfigType.Long, LongRange(-2), null!, null, "-2"),
        new("max.compaction.lag.ms", ConfigType.Long, LongRange(1), null!, null, L(long.MaxValue)),
        new(MaxMessageBytesConfig, ConfigType.Int, IntRange(0), c => L(c.MaxMessageBytes), (c, o) => c with { MaxMessageBytes = (int)o }),
        new("message.downconversion.enable", ConfigType.Boolean, Bool, null!, null, "true"),
        new("message.format.version", ConfigType.String, AnyString, null!, null, "3.0-IV1"),
        new("message.timestamp.after.max.ms", ConfigType.Long, LongRange(0), null!, null, L(long.MaxValue)),
        new("message.timestamp.before.max.ms", ConfigType.Long, LongRange(0), null!, null, L(long.MaxValue)),
        new("message.timestamp.difference.max.ms", ConfigType.Long, LongRange(0), null!, null, L(long.MaxValue)),
        new(MessageTimestampTypeConfig, ConfigType.String, OneOf("CreateTime", "LogAppendTime"),
            c => c.MessageTimestampType.ToString(), (c, o) => c with { MessageTimestampType = Enum.Parse<TimestampType>((string)o) }),
        new("min.cleanable.dirty.ratio", ConfigType.Double, Ratio, null!, null, "0.5"),
        new("min.compaction.lag.ms", ConfigType.Long, LongRange(0), null!, null, "0"),
        new("min.insync.replicas", ConfigType.Int, IntRange(1), null!, null, "1"),
        new("preallocate", ConfigType.Boolean, Bool, null!, null, "false"),
        new("remote.storage.enable", ConfigType.Boolean, Bool, null!, null, "false"),
        new(RetentionBytesConfig, ConfigType.Long, LongRange(long.MinValue), c => L(c.RetentionBytes), (c, o) => c with { RetentionBytes = (long)o }),
        new(RetentionMsConfig, ConfigType.Long, LongRange(-1), c => L(c.RetentionMs), (c, o) => c with { RetentionMs = (long)o }),
        new(SegmentBytesConfig, ConfigType.Int, IntRange(14), c => L(c.SegmentBytes), (c, o) => c with { SegmentBytes = (int)o }),
        new("segment.index.bytes", ConfigType.Int, IntRange(4), null!, null, "10485760"),
        new("segment.jitter.ms", ConfigType.Long, LongRange(0), null!, null, "0"),
        new(SegmentMsConfig, ConfigType.Long, LongRange(1), c => L(c.SegmentMs), (c, o) => c with { SegmentMs = (long)o }),
        new("unclean.leader.election.enable", ConfigType.Boolean, Bool, null!, null, "false"),
    ];

    private static readonly FrozenDictionary<string, Def> DefsByName = Defs.ToFrozenDictionary(d => d.Name, StringComparer.Ordinal);

    /// <summary>All topic config names this broker accepts, sorted.</summary>
    public static IEnumerable<string> KnownNames => Defs.Select(d => d.Name);

    public static bool IsKnown(string name) => DefsByName.ContainsKey(name);

    /// <summary>The effective string value of a known config, or null for unknown names.</summary>
    public string? GetValue(string name)
    {
        if (!DefsByName.TryGetValue(name, out var def)) return null;
        if (def.Set is not null) return def.Get(this);
        return Others.TryGetValue(name, out var v) ? v : def.OtherDefault;
    }

    /// <summary>
    /// Applies topic overrides (as CreateTopics / AlterConfigs pass them) on top of <paramref name="baseConfig"/>.
    /// Returns <see cref="ErrorCode.None"/> with the effective config, or <see cref="ErrorCode.InvalidConfig"/>
    /// and a message for an unknown name, a null value or a value of the wrong type or range.
    /// <paramref name="normalized"/> holds the overrides with canonical values (what should be persisted).
    /// </summary>
    public static ErrorCode TryApply(LogConfig baseConfig, IEnumerable<KeyValuePair<string, string?>>? overrides,
        out LogConfig result, out ImmutableSortedDictionary<string, string> normalized, out string? error)
    {
        result = baseConfig;
        normalized = ImmutableSortedDictionary<string, string>.Empty;
        error = null;
        if (overrides is null) return ErrorCode.None;
        var builder = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in overrides)
        {
            if (!DefsByName.TryGetValue(name, out var def))
            {
                error = $"Unknown topic config name: {name}";
                return ErrorCode.InvalidConfig;
            }
            if (value is null)
            {
                error = $"Null value not supported for topic config {name}";
                return ErrorCode.InvalidConfig;
            }
            var problem = def.Validate(value, out var parsed);
            if (problem is not null)
            {
                error = $"Invalid value {value} for configuration {name}: {problem}";
                return ErrorCode.InvalidConfig;
            }
            if (def.Set is not null)
            {
                result = def.Set(result, parsed!);
                builder[name] = def.Get(result);
            }
            else
            {
                var s = parsed switch { string str => str, IFormattable f => f.ToString(null, CultureInfo.InvariantCulture), _ => value };
                result = result with { Others = result.Others.SetItem(name, s) };
                builder[name] = s;
            }
        }
        normalized = builder.ToImmutable();
        return ErrorCode.None;
    }

    /// <summary>
    /// Every known config with its effective value and source, for DescribeConfigs. A value counts as a
    /// topic override when <paramref name="topicOverrides"/> names it, as a broker setting when it differs
    /// from Kafka's built-in default, else as a default.
    /// </summary>
    public IReadOnlyList<ConfigEntry> Describe(IReadOnlyDictionary<string, string>? topicOverrides)
    {
        var list = new List<ConfigEntry>(Defs.Length);
        foreach (var def in Defs)
        {
            var value = GetValue(def.Name);
            ConfigSource source;
            if (topicOverrides is not null && topicOverrides.ContainsKey(def.Name)) source = ConfigSource.TopicConfig;
            else if (!string.Equals(value, Default.GetValue(def.Name), StringComparison.Ordinal)) source = ConfigSource.StaticBrokerConfig;
            else source = ConfigSource.DefaultConfig;
            list.Add(new ConfigEntry(def.Name, value, source, def.Type));
        }
        return list;
    }

    /// <summary>
    /// Applies IncrementalAlterConfigs operations to a topic's current overrides, returning the new
    /// override map (not yet validated: pass it to <see cref="TryApply"/>).
    /// </summary>
    public static ErrorCode TryAlter(IReadOnlyDictionary<string, string> currentOverrides, LogConfig effective,
        IEnumerable<ConfigAlteration> ops, out Dictionary<string, string?> newOverrides, out string? error)
    {
        newOverrides = new Dictionary<string, string?>(currentOverrides.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)), StringComparer.Ordinal);
        error = null;
        foreach (var op in ops)
        {
            if (!DefsByName.TryGetValue(op.Name, out var def))
            {
                error = $"Unknown topic config name: {op.Name}";
                return ErrorCode.InvalidConfig;
            }
            switch (op.Op)
            {
                case AlterConfigOp.Set:
                    newOverrides[op.Name] = op.Value;
                    break;
                case AlterConfigOp.Delete:
                    newOverrides.Remove(op.Name);
                    break;
                case AlterConfigOp.Append:
                case AlterConfigOp.Subtract:
                    if (def.Type != ConfigType.List)
                    {
                        error = $"Config {op.Name} is not a list; APPEND/SUBTRACT are not allowed";
                        return ErrorCode.InvalidConfig;
                    }
                    var current = newOverrides.TryGetValue(op.Name, out var cur) ? cur : effective.GetValue(op.Name);
                    var items = (current ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
                    var given = (op.Value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                    if (op.Op == AlterConfigOp.Append) { foreach (var g in given) if (!items.Contains(g)) items.Add(g); }
                    else items.RemoveAll(given.Contains);
                    newOverrides[op.Name] = string.Join(',', items);
                    break;
                default:
                    error = $"Unknown config operation {(int)op.Op}";
                    return ErrorCode.InvalidRequest;
            }
        }
        return ErrorCode.None;
    }

    private static readonly (string Broker, string Topic, long Multiplier)[] BrokerKeys =
    [
        ("log.segment.bytes", SegmentBytesConfig, 1),
        ("log.roll.hours", SegmentMsConfig, 3600000),
        ("log.roll.ms", SegmentMsConfig, 1),
        ("log.retention.hours", RetentionMsConfig, 3600000),
        ("log.retention.minutes", RetentionMsConfig, 60000),
        ("log.retention.ms", RetentionMsConfig, 1),
        ("log.retention.bytes", RetentionBytesConfig, 1),
        ("message.max.bytes", MaxMessageBytesConfig, 1),
        ("log.message.timestamp.type", MessageTimestampTypeConfig, 0),
        ("log.cleanup.policy", CleanupPolicyConfig, 0),
        ("log.index.interval.bytes", IndexIntervalBytesConfig, 1),
        ("log.flush.interval.messages", FlushMessagesConfig, 1),
        ("log.flush.interval.ms", FlushMsConfig, 1),
        ("log.segment.delete.delay.ms", FileDeleteDelayMsConfig, 1),
        ("compression.type", "compression.type", 0),
        ("min.insync.replicas", "min.insync.replicas", 0),
        ("unclean.leader.election.enable", "unclean.leader.election.enable", 0),
        ("log.preallocate", "preallocate", 0),
        ("log.index.size.max.bytes", "segment.index.bytes", 0),
    ];

    /// <summary>The server.properties-style names <see cref="TryFromBrokerProperties"/> understands (log.segment.bytes, ...).</summary>
    public static IEnumerable<string> BrokerPropertyNames => BrokerKeys.Select(k => k.Broker);

    /// <summary>
    /// Builds the broker-wide default topic config from server.properties-style keys (log.segment.bytes,
    /// log.retention.hours|minutes|ms, message.max.bytes, log.flush.interval.messages, ...). Keys it does not
    /// know are ignored; the more precise unit wins (ms over minutes over hours) as in Kafka.
    /// </summary>
    public static ErrorCode TryFromBrokerProperties(IReadOnlyDictionary<string, string> properties, out LogConfig result, out string? error)
    {
        var topicKeys = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (broker, topic, mult) in BrokerKeys) // later entries (finer units) override earlier ones
        {
            if (!properties.TryGetValue(broker, out var v)) continue;
            if (mult > 1)
            {
                if (!long.TryParse(v.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
                {
                    result = Default; error = $"Invalid value {v} for {broker}"; return ErrorCode.InvalidConfig;
                }
                v = n < 0 ? L(n) : L(checked(n * mult));
            }
            topicKeys[topic] = v;
        }
        return TryApply(Default, topicKeys, out result, out _, out error);
    }
}
