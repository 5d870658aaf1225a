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
    public void Bad_settings_are_rejected_with_the_setting_named(string key, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => BrokerOptions.FromSettings([new(key, value)]));
        Assert.Contains(key.Split('.')[0], e.Message);
    }

    [Fact]
    public void Group_settings_reach_the_coordinator_options()
    {
        var o = BrokerOptions.FromSettings([new("group.initial.rebalance.delay.ms", "0"), new("offsets.retention.minutes", "60")]);
        Assert.Equal(TimeSpan.Zero, o.Groups.InitialRebalanceDelay);
        Assert.Equal(TimeSpan.FromHours(1), o.Groups.OffsetsRetention);
    }
}
