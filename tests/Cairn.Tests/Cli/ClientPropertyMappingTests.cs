using Cairn.Cli.Tool;
using Cairn.Client;
using Cairn.Protocol.Records;

namespace Cairn.Tests.Cli;

/// <summary>How `cairn produce` and `cairn consume` map -X / --command-config properties onto the client options.</summary>
public sealed class ClientPropertyMappingTests
{
    /// <summary>Properties as ToolContext holds them, recording which ones a mapping read.</summary>
    private sealed class Properties(params string[] items)
    {
        private readonly Dictionary<string, string> _values = KafkaProperties.Merge([], KafkaProperties.ParseItems(items));
        public HashSet<string> Used { get; } = [];

        public bool TryGet(string name, out string value)
        {
            if (!_values.TryGetValue(name, out value!)) return false;
            Used.Add(name);
            return true;
        }
    }

    private static readonly ProducerOptions ProducerDefaults = new() { Acks = Acks.All, Linger = TimeSpan.FromMilliseconds(5) };
    private static readonly ConsumerOptions ConsumerDefaults = new() { EnablePartitionEof = true };

    private static ProducerOptions Producer(Properties p, ProduceFlags? flags = null) => ClientPropertyMapping.Producer(p.TryGet, flags ?? new(), ProducerDefaults);
    private static ConsumeSettings Consumer(Properties p, ConsumeFlags? flags = null) => ClientPropertyMapping.Consumer(p.TryGet, flags ?? new(), ConsumerDefaults);

    [Fact]
    public void Producer_properties_under_the_java_names_set_the_producer_options()
    {
        var p = new Properties("acks=1", "compression.type=zstd", "linger.ms=20", "batch.size=16384", "max.in.flight.requests.per.connection=2",
            "delivery.timeout.ms=9000", "buffer.memory=1048576");
        var o = Producer(p);
        Assert.Equal(Acks.Leader, o.Acks);
        Assert.Equal(CompressionCodec.Zstd, o.Compression);
        Assert.Equal(TimeSpan.FromMilliseconds(20), o.Linger);
        Assert.Equal(16384, o.BatchSizeBytes);
        Assert.Equal(2, o.MaxInFlightPerConnection);
        Assert.Equal(TimeSpan.FromMilliseconds(9000), o.DeliveryTimeout);
        Assert.Equal(1048576, o.BufferMemoryBytes);
        Assert.False(o.Idempotent);
        Assert.Equal(7, p.Used.Count);
    }

    [Fact]
    public void Librdkafka_aliases_mean_the_same()
    {
        var p = new Properties("request.required.acks=0", "compression.codec=LZ4", "queue.buffering.max.ms=0", "max.in.flight=1", "message.timeout.ms=1000");
        var o = Producer(p);
        Assert.Equal(Acks.None, o.Acks);
        Assert.Equal(CompressionCodec.Lz4, o.Compression);
        Assert.Equal(TimeSpan.Zero, o.Linger);
        Assert.Equal(1, o.MaxInFlightPerConnection);
        Assert.Equal(TimeSpan.FromSeconds(1), o.DeliveryTimeout);
        Assert.Equal(5, p.Used.Count);
    }

    [Fact]
    public void Without_properties_the_defaults_stay_and_batch_size_zero_means_one_record_per_batch()
    {
        Assert.Equal(ProducerDefaults, Producer(new Properties()));
        Assert.Equal(1, Producer(new Properties("batch.size=0")).BatchSizeBytes);
        Assert.Equal(Acks.All, Producer(new Properties("acks=all")).Acks);
        Assert.Equal(Acks.All, Producer(new Properties("acks=-1")).Acks);
    }

    [Fact]
    public void Explicit_flags_beat_the_properties_which_are_still_checked()
    {
        var p = new Properties("compression.type=zstd", "acks=0", "linger.ms=100");
        var o = Producer(p, new ProduceFlags(Compression: "gzip", Acks: "1", LingerMs: 7));
        Assert.Equal(CompressionCodec.Gzip, o.Compression);
        Assert.Equal(Acks.Leader, o.Acks);
        Assert.Equal(TimeSpan.FromMilliseconds(7), o.Linger);
        // Overridden, not ignored: no "not used" warning for them, and a bad value is still an error.
        Assert.Equal(3, p.Used.Count);
        var e = Assert.Throws<UsageException>(() => Producer(new Properties("compression.type=brotli"), new ProduceFlags(Compression: "gzip")));
        Assert.Equal("compression.type: 'brotli' is not none, gzip, snappy, lz4 or zstd", e.Message);
        // A flag the user gave as "none" is still a choice that wins.
        Assert.Equal(CompressionCodec.None, Producer(new Properties("compression.type=zstd"), new ProduceFlags(Compression: "none")).Compression);
    }

    [Theory]
    [InlineData("acks=2", "acks: '2' is not all, -1, 1 or 0")]
    [InlineData("request.required.acks=leader", "request.required.acks: 'leader'")]
    [InlineData("compression.codec=brotli", "compression.codec: 'brotli'")]
    [InlineData("linger.ms=-1", "linger.ms: must be zero or more")]
    [InlineData("linger.ms=soon", "linger.ms: 'soon' is not a whole number")]
    [InlineData("batch.size=3000000000", "batch.size: 3000000000 is too large")]
    [InlineData("max.in.flight=0", "max.in.flight: must be positive")]
    [InlineData("delivery.timeout.ms=0", "delivery.timeout.ms: must be positive")]
    [InlineData("enable.idempotence=maybe", "enable.idempotence: 'maybe' is not true or false")]
    public void Invalid_producer_values_are_usage_errors_naming_the_property(string item, string message)
    {
        var e = Assert.Throws<UsageException>(() => Producer(new Properties(item)));
        Assert.StartsWith(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Idempotence_needs_acks_all()
    {
        Assert.True(Producer(new Properties("enable.idempotence=true")).Idempotent);
        Assert.True(Producer(new Properties("enable.idempotence=true", "acks=all")).Idempotent);
        Assert.False(Producer(new Properties("enable.idempotence=false", "acks=1")).Idempotent);
        var e = Assert.Throws<UsageException>(() => Producer(new Properties("enable.idempotence=true", "acks=1")));
        Assert.Equal("enable.idempotence=true needs acks=all, but acks=1 was given", e.Message);
        e = Assert.Throws<UsageException>(() => Producer(new Properties("enable.idempotence=true"), new ProduceFlags(Acks: "0")));
        Assert.Contains("--acks 0", e.Message);
    }

    [Fact]
    public void Properties_the_producer_cannot_honour_are_left_unread_so_the_command_warns()
    {
        var p = new Properties("partitioner=murmur2", "acks=1");
        Producer(p);
        Assert.Equal(["acks"], p.Used);
    }

    [Theory]
    [InlineData("earliest", AutoOffsetReset.Earliest)]
    [InlineData("smallest", AutoOffsetReset.Earliest)]
    [InlineData("beginning", AutoOffsetReset.Earliest)]
    [InlineData("latest", AutoOffsetReset.Latest)]
    [InlineData("largest", AutoOffsetReset.Latest)]
    [InlineData("END", AutoOffsetReset.Latest)]
    [InlineData("none", AutoOffsetReset.None)]
    [InlineData("error", AutoOffsetReset.None)]
    public void Auto_offset_reset_under_java_and_librdkafka_names(string value, AutoOffsetReset expected)
    {
        Assert.Equal(expected, Consumer(new Properties("auto.offset.reset=" + value)).Reset);
    }

    [Fact]
    public void Consumer_properties_set_the_consumer_options()
    {
        var p = new Properties("isolation.level=read_committed", "fetch.max.bytes=1000", "max.partition.fetch.bytes=500", "fetch.min.bytes=10",
            "fetch.wait.max.ms=50", "check.crcs=false");
        var s = Consumer(p);
        Assert.Null(s.Reset);
        Assert.Equal(IsolationLevel.ReadCommitted, s.Options.IsolationLevel);
        Assert.Equal(1000, s.Options.MaxBytes);
        Assert.Equal(500, s.Options.MaxPartitionBytes);
        Assert.Equal(10, s.Options.MinBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(50), s.Options.MaxWait);
        Assert.False(s.Options.CheckCrcs);
        Assert.True(s.Options.EnablePartitionEof);
        Assert.Null(s.Group);
        Assert.True(s.Commit);
        Assert.Equal(6, p.Used.Count);

        Assert.Equal(TimeSpan.FromMilliseconds(70), Consumer(new Properties("fetch.max.wait.ms=70")).Options.MaxWait);
        Assert.Equal(700, Consumer(new Properties("fetch.message.max.bytes=700")).Options.MaxPartitionBytes);
        Assert.Equal(ConsumerDefaults, Consumer(new Properties()).Options);
    }

    [Fact]
    public void Isolation_flag_and_group_flag_beat_the_properties()
    {
        var s = Consumer(new Properties("isolation.level=read_committed", "group.id=from-property"), new ConsumeFlags(Isolation: "read_uncommitted", Group: "from-flag"));
        Assert.Equal(IsolationLevel.ReadUncommitted, s.Options.IsolationLevel);
        Assert.Equal("from-flag", s.Group);
        Assert.Equal("from-property", Consumer(new Properties("group.id=from-property")).Group);
    }

    [Theory]
    [InlineData("false", false)]
    [InlineData("true", true)]
    [InlineData("0", false)]
    public void Enable_auto_commit_false_turns_the_group_commit_off(string value, bool commit)
    {
        Assert.Equal(commit, Consumer(new Properties("group.id=g", "enable.auto.commit=" + value)).Commit);
    }

    [Theory]
    [InlineData("auto.offset.reset=oldest", "auto.offset.reset: 'oldest' is not earliest")]
    [InlineData("isolation.level=serializable", "isolation.level: 'serializable' is not read_uncommitted or read_committed")]
    [InlineData("fetch.max.bytes=0", "fetch.max.bytes: must be positive")]
    [InlineData("fetch.min.bytes=-1", "fetch.min.bytes: must be zero or more")]
    [InlineData("fetch.wait.max.ms=x", "fetch.wait.max.ms: 'x' is not a whole number")]
    [InlineData("group.id= ", "group.id: a value is required")]
    [InlineData("enable.auto.commit=no", "enable.auto.commit: 'no' is not true or false")]
    public void Invalid_consumer_values_are_usage_errors_naming_the_property(string item, string message)
    {
        var e = Assert.Throws<UsageException>(() => Consumer(new Properties(item)));
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public void Consumer_properties_cairn_cannot_honour_are_left_unread()
    {
        var p = new Properties("session.timeout.ms=6000", "enable.partition.eof=false", "max.poll.records=10", "auto.commit.interval.ms=100", "group.id=g");
        Consumer(p);
        Assert.Equal(["group.id"], p.Used);
    }
}
