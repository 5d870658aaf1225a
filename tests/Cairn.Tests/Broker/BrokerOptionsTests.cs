using Cairn.Broker;

namespace Cairn.Tests.Broker;

public class BrokerOptionsTests
{
    [Fact]
    public void Defaults_match_the_documented_embedded_setup()
    {
        var o = BrokerOptions.FromSettings([]);
        Assert.Equal(("127.0.0.1", 9092, "./cairn-data", 1, true), (o.ListenHost, o.ListenPort, o.DataDir, o.DefaultPartitions, o.AutoCreateTopics));
        Assert.Equal(100 * 1024 * 1024, o.MaxRequestBytes);
        Assert.Equal(OffsetStoreKind.Sqlite, o.OffsetStore);
    }

    [Fact]
    public void A_properties_file_then_environment_then_flags_each_override_the_previous()
    {
        var file = Path.GetTempFileName();
        File.WriteAllLines(file, ["# broker", "data-dir=/from/file", "node.id = 5", "", "log.retention.ms=1000", "default.partitions=2"]);
        var env = new System.Collections.Hashtable { ["CAIRN_NODE_ID"] = "7", ["CAIRN_LOG_FLUSH_ON_ACK"] = "true", ["PATH"] = "/bin" };
        var settings = BrokerSettings.ReadPropertiesFile(file)
            .Concat(BrokerSettings.FromEnvironment(env))
            .Append(new("listen", "127.0.0.1:19092"))
            .Append(new("default-partitions", "3"));
        var o = BrokerOptions.FromSettings(settings);
        Assert.Equal("/from/file", o.DataDir);
        Assert.Equal(7, o.NodeId);
        Assert.True(o.FlushOnAck);
        Assert.Equal(19092, o.ListenPort);
        Assert.Equal(3, o.DefaultPartitions);
        Assert.Equal("1000", o.LogSettings["log.retention.ms"]);
        File.Delete(file);
    }

    [Theory]
    [InlineData("listen", "nohost")]
    [InlineData("node.id", "-3")]
    [InlineData("auto.create.topics", "maybe")]
    [InlineData("no.such.setting", "1")]
    [InlineData("offset.store", "mongodb")]
    [InlineData("max.connections", "0")]
    [InlineData("max.connections", "many")]
    [InlineData("max.connections.per.ip", "-1")]
    [InlineData("queued.max.request.bytes", "0")]
    [InlineData("queued.max.request.bytes", "1MB")]
    [InlineData("connections.max.idle.ms", "0")]
    [InlineData("connections.max.idle.ms", "-2")]
    [InlineData("request.frame.timeout.ms", "soon")]
    public void Bad_settings_are_rejected_with_the_setting_named(string key, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new(key, value)]));
        Assert.Contains(key.Split('.')[0], e.Message);
    }

    [Fact]
    public void Partition_and_open_file_limits_have_defaults_and_are_parsed()
    {
        var d = BrokerOptions.FromSettings([]);
        Assert.Equal(10_000, d.MaxPartitions);
        Assert.Null(d.MaxOpenFiles); // derived from the open file limit at start
        Assert.Equal(1024, BrokerOptions.DefaultMaxOpenFiles(20_000));
        Assert.Equal(256, BrokerOptions.DefaultMaxOpenFiles(1024));
        Assert.Equal(16, BrokerOptions.DefaultMaxOpenFiles(20));
        var o = BrokerOptions.FromSettings([new("max.partitions", "300"), new("log-max-open-files", "64")]);
        Assert.Equal((300, 64), (o.MaxPartitions, o.MaxOpenFiles));
        Assert.Contains("max.partitions", Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new("max.partitions", "0")])).Message);
        Assert.Contains("log.max.open.files", Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new("log.max.open.files", "-1")])).Message);
    }

    [Fact]
    public void Connection_limits_default_like_kafka_except_where_memory_and_descriptors_need_a_bound()
    {
        var o = BrokerOptions.FromSettings([]);
        Assert.Null(o.MaxConnections); // derived from the open file limit at start
        Assert.Equal(int.MaxValue, o.MaxConnectionsPerIp);
        Assert.Equal(256L << 20, o.QueuedMaxRequestBytes);
        Assert.Equal(TimeSpan.FromMinutes(10), o.ConnectionsMaxIdle);
        Assert.Equal(TimeSpan.FromSeconds(30), o.RequestFrameTimeout);
        Assert.Equal(512, BrokerOptions.DefaultMaxConnections(1024));
        Assert.Equal(64, BrokerOptions.DefaultMaxConnections(20));
        Assert.Equal(int.MaxValue, BrokerOptions.DefaultMaxConnections(long.MaxValue));

        var set = BrokerOptions.FromSettings([new("max.connections", "100"), new("max.connections.per.ip", "10"), new("queued.max.request.bytes", "-1"),
            new("connections.max.idle.ms", "-1"), new("request.frame.timeout.ms", "5000")]);
        Assert.Equal((100, 10, -1L), (set.MaxConnections, set.MaxConnectionsPerIp, set.QueuedMaxRequestBytes));
        Assert.Equal((Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(5)), (set.ConnectionsMaxIdle, set.RequestFrameTimeout));
    }

    [Fact]
    public void The_request_budget_holds_at_least_the_largest_request()
    {
        // As in Kafka: queued.max.request.bytes below socket.request.max.bytes is a configuration error...
        var e = Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new("queued.max.request.bytes", "1048576"), new("socket.request.max.bytes", "2097152")]));
        Assert.Contains("queued.max.request.bytes", e.Message);
        // ...while the default budget grows with a larger max.request.bytes.
        Assert.Equal(512L << 20, BrokerOptions.FromSettings([new("max.request.bytes", (512 << 20).ToString())]).QueuedMaxRequestBytes);
    }

    [Fact]
    public void Group_settings_reach_the_coordinator_options()
    {
        var o = BrokerOptions.FromSettings([new("group.initial.rebalance.delay.ms", "0"), new("offsets.retention.minutes", "60")]);
        Assert.Equal(TimeSpan.Zero, o.Groups.InitialRebalanceDelay);
        Assert.Equal(TimeSpan.FromHours(1), o.Groups.OffsetsRetention);
    }

    [Theory]
    [InlineData("log.retension.ms", "did you mean log.retention.ms")]
    [InlineData("data-dri", "did you mean data.dir")]
    [InlineData("LISTNE", "did you mean listen")]
    [InlineData("admin.listen.port", "did you mean admin.listen")]
    public void An_unknown_setting_is_named_with_the_closest_valid_names(string key, string suggestion)
    {
        var e = Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new(key, "1")]));
        Assert.StartsWith($"unknown setting '{key}' (", e.Message);
        Assert.Contains(suggestion, e.Message);
    }

    [Theory]
    [InlineData("log.no.such.thing")]
    [InlineData("message.no.such.thing")]
    [InlineData("bootstrap.server")]
    public void Unknown_log_and_message_names_are_errors_too(string key)
    {
        var e = Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new(key, "1")]));
        Assert.StartsWith($"unknown setting '{key}'", e.Message);
    }

    [Fact]
    public void Every_listed_setting_name_is_accepted()
    {
        foreach (var name in BrokerOptions.SettingNames)
        {
            // The value may be invalid for the setting; what matters is that the name is known.
            try { BrokerOptions.FromSettings([new(name, "1")]); }
            catch (ArgumentException e) { Assert.DoesNotContain("unknown setting", e.Message); }
            Assert.True(BrokerOptions.IsSetting(name.Replace('.', '_').ToUpperInvariant()), name);
        }
        Assert.Contains("log.segment.bytes", BrokerOptions.SettingNames);
        Assert.Contains("message.max.bytes", BrokerOptions.SettingNames);
    }

    [Theory]
    [InlineData("log.segment.bytes", "big")]
    [InlineData("log.retention.hours", "soon")]
    [InlineData("log.cleanup.policy", "shred")]
    [InlineData("log.retention.check.interval.ms", "often")]
    public void A_bad_topic_default_is_rejected_before_start_up_naming_the_setting(string key, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new(key, value)]));
        Assert.StartsWith(key, e.Message);
        Assert.Contains(value, e.Message);
    }

    [Fact]
    public void CAIRN_variables_that_are_not_broker_settings_are_left_out_and_reported()
    {
        var env = new System.Collections.Hashtable { ["CAIRN_BOOTSTRAP_SERVER"] = "127.0.0.1:9092", ["CAIRN_DATA_DIR"] = "/d", ["CAIRN_CONFIG"] = "/c", ["HOME"] = "/root" };
        var ignored = new List<string>();
        var settings = BrokerSettings.FromEnvironment(env, ignored);
        Assert.Equal([new KeyValuePair<string, string>("DATA_DIR", "/d")], settings);
        Assert.Equal(["CAIRN_BOOTSTRAP_SERVER"], ignored);
        Assert.Equal("/d", BrokerOptions.FromSettings(settings).DataDir);
    }

    [Fact]
    public void A_missing_config_file_is_one_line_naming_it()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cairn-missing-{Guid.NewGuid():N}.properties");
        var e = Assert.Throws<ArgumentException>(() => BrokerSettings.ReadPropertiesFile(path));
        Assert.Equal($"cannot read config file {path}: not found", e.Message);
        var dir = Directory.CreateTempSubdirectory();
        e = Assert.Throws<ArgumentException>(() => BrokerSettings.ReadPropertiesFile(dir.FullName));
        Assert.Equal($"cannot read config file {dir.FullName}: is a directory", e.Message);
        dir.Delete();
    }

    [Fact]
    public void A_config_line_without_equals_names_the_file_and_line()
    {
        var file = Path.GetTempFileName();
        File.WriteAllLines(file, ["# comment", "listen 127.0.0.1:9092"]);
        var e = Assert.Throws<ArgumentException>(() => BrokerSettings.ReadPropertiesFile(file));
        Assert.Equal($"{file}:2: expected KEY=VALUE, got 'listen 127.0.0.1:9092'", e.Message);
        File.Delete(file);
    }

    [Theory]
    [InlineData("", "", 0)]
    [InlineData("listen", "listen", 0)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("data.dri", "data.dir", 2)]
    [InlineData("abc", "", 3)]
    public void Edit_distance_counts_insertions_deletions_and_substitutions(string a, string b, int expected)
    {
        Assert.Equal(expected, BrokerOptions.EditDistance(a, b));
        Assert.Equal(expected, BrokerOptions.EditDistance(b, a));
    }
}
