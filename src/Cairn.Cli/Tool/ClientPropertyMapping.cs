using Cairn.Client;
using Cairn.Protocol.Records;

namespace Cairn.Cli.Tool;

/// <summary>Looks a client property up by name, marking it used (<see cref="ToolContext.TryGetProperty"/>).</summary>
internal delegate bool PropertyLookup(string name, out string value);

/// <summary>The produce flags given on the command line; null when defaulted (a property may then set the value).</summary>
internal sealed record ProduceFlags(string? Compression = null, string? Acks = null, int? LingerMs = null);

/// <summary>The consume flags given on the command line; null when not given.</summary>
internal sealed record ConsumeFlags(string? Isolation = null, string? Group = null);

/// <summary>What the consumer properties ask of <c>cairn consume</c> besides its <see cref="ConsumerOptions"/>.</summary>
/// <param name="Reset">auto.offset.reset: where to start when -o is not given and the group has no committed offset; null when not given.</param>
/// <param name="Group">--group, else group.id.</param>
/// <param name="Commit">False with enable.auto.commit=false: the positions reached are not committed for the group.</param>
internal sealed record ConsumeSettings(ConsumerOptions Options, AutoOffsetReset? Reset, string? Group, bool Commit);

/// <summary>
/// Maps the producer and consumer properties a kcat or Kafka user passes (-X, --command-config) onto the client's
/// options, under both the Java client's names and librdkafka's. An explicit flag wins over the property; an invalid
/// value is a usage error naming the property. Properties the client cannot honour are not read here, so the
/// command warns that they were not used rather than pretend (batch.num.messages, partitioner, session.timeout.ms...).
/// </summary>
internal static class ClientPropertyMapping
{
    public static ProducerOptions Producer(PropertyLookup properties, ProduceFlags flags, ProducerOptions defaults)
    {
        var options = defaults;
        string? acksGiven = null;
        if (Get(properties, "acks", "request.required.acks") is { } acks)
        {
            options = options with { Acks = ParseAcks(acks.Value, acks.Name) };
            acksGiven = $"{acks.Name}={acks.Value.Trim()}";
        }
        if (flags.Acks is { } acksFlag)
        {
            options = options with { Acks = ParseAcks(acksFlag, "--acks") };
            acksGiven = "--acks " + acksFlag;
        }
        if (Get(properties, "compression.type", "compression.codec") is { } codec) options = options with { Compression = ParseCompression(codec.Value, codec.Name) };
        if (flags.Compression is { } codecFlag) options = options with { Compression = ParseCompression(codecFlag, "--compression") };
        if (Get(properties, "linger.ms", "queue.buffering.max.ms") is { } linger)
            options = options with { Linger = TimeSpan.FromMilliseconds(Int(linger, min: 0)) };
        if (flags.LingerMs is { } lingerFlag) options = options with { Linger = TimeSpan.FromMilliseconds(lingerFlag) };
        // batch.size=0 turns batching off in Kafka's producer: a batch of one record, which a one-byte limit gives.
        if (Get(properties, "batch.size") is { } batch) options = options with { BatchSizeBytes = Math.Max(1, Int(batch, min: 0)) };
        if (Get(properties, "max.in.flight.requests.per.connection", "max.in.flight") is { } inFlight)
            options = options with { MaxInFlightPerConnection = Int(inFlight, min: 1) };
        if (Get(properties, "delivery.timeout.ms", "message.timeout.ms") is { } delivery)
            options = options with { DeliveryTimeout = TimeSpan.FromMilliseconds(Int(delivery, min: 1)) };
        if (Get(properties, "buffer.memory") is { } buffer)
            options = options with { BufferMemoryBytes = KafkaProperties.Millis(buffer.Name, buffer.Value, positive: true) };
        if (Get(properties, "enable.idempotence") is { } idempotence && Bool(idempotence))
        {
            // As Kafka's producer: idempotence with acks asked to be other than all is a contradiction, not a silent upgrade.
            if (options.Acks != Acks.All)
                throw new UsageException($"enable.idempotence=true needs acks=all, but {acksGiven ?? $"acks={options.Acks}"} was given");
            options = options with { Idempotent = true };
        }
        return options;
    }

    public static ConsumeSettings Consumer(PropertyLookup properties, ConsumeFlags flags, ConsumerOptions defaults)
    {
        var options = defaults;
        AutoOffsetReset? reset = Get(properties, "auto.offset.reset") is { } resetGiven ? ParseReset(resetGiven.Value) : null;
        if (Get(properties, "isolation.level") is { } isolation) options = options with { IsolationLevel = ParseIsolation(isolation.Value, isolation.Name) };
        if (flags.Isolation is { } isolationFlag) options = options with { IsolationLevel = ParseIsolation(isolationFlag, "--isolation") };
        if (Get(properties, "fetch.max.bytes") is { } maxBytes) options = options with { MaxBytes = Int(maxBytes, min: 1) };
        if (Get(properties, "max.partition.fetch.bytes", "fetch.message.max.bytes") is { } partitionBytes)
            options = options with { MaxPartitionBytes = Int(partitionBytes, min: 1) };
        if (Get(properties, "fetch.min.bytes") is { } minBytes) options = options with { MinBytes = Int(minBytes, min: 0) };
        if (Get(properties, "fetch.max.wait.ms", "fetch.wait.max.ms") is { } wait) options = options with { MaxWait = TimeSpan.FromMilliseconds(Int(wait, min: 0)) };
        if (Get(properties, "check.crcs") is { } crcs) options = options with { CheckCrcs = Bool(crcs) };

        string? group = flags.Group;
        if (Get(properties, "group.id") is { } groupId && group is null)
            group = groupId.Value.Trim() is { Length: > 0 } g ? g : throw new UsageException("group.id: a value is required");
        bool commit = Get(properties, "enable.auto.commit") is not { } autoCommit || Bool(autoCommit);
        return new ConsumeSettings(options, reset, group, commit);
    }

    /// <summary>The first of <paramref name="names"/> given (a Java name, then librdkafka's alias), and under which name.</summary>
    private static (string Name, string Value)? Get(PropertyLookup properties, params string[] names)
    {
        foreach (var name in names)
            if (properties(name, out var value)) return (name, value);
        return null;
    }

    public static Acks ParseAcks(string value, string name) => value.Trim().ToLowerInvariant() switch
    {
        "all" or "-1" => Acks.All,
        "1" => Acks.Leader,
        "0" => Acks.None,
        _ => throw new UsageException($"{name}: '{value.Trim()}' is not all, -1, 1 or 0 (cairn cannot wait for a number of replicas)"),
    };

    public static CompressionCodec ParseCompression(string value, string name) => value.Trim().ToLowerInvariant() switch
    {
        "none" => CompressionCodec.None,
        "gzip" => CompressionCodec.Gzip,
        "snappy" => CompressionCodec.Snappy,
        "lz4" => CompressionCodec.Lz4,
        "zstd" => CompressionCodec.Zstd,
        _ => throw new UsageException($"{name}: '{value.Trim()}' is not none, gzip, snappy, lz4 or zstd"),
    };

    /// <summary>auto.offset.reset under the Java client's names and librdkafka's (smallest, beginning, largest, end, error).</summary>
    public static AutoOffsetReset ParseReset(string value) => value.Trim().ToLowerInvariant() switch
    {
        "earliest" or "smallest" or "beginning" => AutoOffsetReset.Earliest,
        "latest" or "largest" or "end" => AutoOffsetReset.Latest,
        "none" or "error" => AutoOffsetReset.None,
        _ => throw new UsageException($"auto.offset.reset: '{value.Trim()}' is not earliest (smallest, beginning), latest (largest, end) or none (error)"),
    };

    public static IsolationLevel ParseIsolation(string value, string name) => value.Trim().ToLowerInvariant() switch
    {
        "read_uncommitted" => IsolationLevel.ReadUncommitted,
        "read_committed" => IsolationLevel.ReadCommitted,
        _ => throw new UsageException($"{name}: '{value.Trim()}' is not read_uncommitted or read_committed"),
    };

    /// <summary>A boolean as both clients write it (librdkafka also takes 1/0, t/f).</summary>
    private static bool Bool((string Name, string Value) property) => property.Value.Trim().ToLowerInvariant() switch
    {
        "true" or "t" or "1" => true,
        "false" or "f" or "0" => false,
        _ => throw new UsageException($"{property.Name}: '{property.Value.Trim()}' is not true or false"),
    };

    /// <summary>A whole number of bytes or milliseconds that fits the client's int options.</summary>
    private static int Int((string Name, string Value) property, int min)
    {
        var (name, value) = property;
        long n = KafkaProperties.Millis(name, value, positive: min > 0);
        if (n < min) throw new UsageException($"{name}: must be at least {min}, got {n}");
        return n <= int.MaxValue ? (int)n : throw new UsageException($"{name}: {n} is too large (at most {int.MaxValue})");
    }
}
