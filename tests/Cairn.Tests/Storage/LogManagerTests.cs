using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

public sealed class LogManagerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));

    public void Dispose() => _dir.Dispose();

    private StorageOptions Options() => new() { DataDirectory = _dir.Path, RunBackgroundTasks = false };

    private Task<LogManager> OpenAsync() => LogManager.OpenAsync(Options(), time: _time);

    private static KeyValuePair<string, string?> Kv(string k, string? v) => new(k, v);

    [Fact]
    public async Task Topics_partitions_ids_and_configs_persist_across_restart()
    {
        Guid id;
        await using (var m = await OpenAsync())
        {
            var r = m.CreateTopic("orders", 3, [Kv("retention.ms", "1000"), Kv("cleanup.policy", "compact")]);
            Assert.Equal(ErrorCode.None, r.Error);
            id = r.Topic!.TopicId;
            Assert.NotEqual(Guid.Empty, id);
            Assert.Equal(4, id.Version);
            Assert.Equal(1000, r.Topic.Config.RetentionMs);
            Assert.Equal(3, r.Topic.PartitionCount);
            Assert.True(Directory.Exists(Path.Combine(_dir.Path, "orders-2")));
            Assert.Equal(0, m.GetPartition("orders", 1)!.Append(TestBatch.Simple(4)).BaseOffset);
            Assert.Null(m.GetPartition("orders", 3));
        }
        await using (var m = await OpenAsync())
        {
            Assert.True(m.TryGetTopic("orders", out var t));
            Assert.Equal(id, t.TopicId);
            Assert.True(m.TryGetTopic(id, out var byId));
            Assert.Same(t, byId);
            Assert.Equal(3, t.PartitionCount);
            Assert.Equal(1000, t.Config.RetentionMs);
            Assert.Equal("compact", t.Config.CleanupPolicy);
            Assert.Equal(4, t.GetPartition(1)!.HighWatermark);
            Assert.Equal(4, t.GetPartition(1)!.Append(TestBatch.Simple(1)).BaseOffset);
            Assert.Single(m.Topics);
        }
    }

    [Fact]
    public async Task Create_topic_validation()
    {
        await using var m = await OpenAsync();
        Assert.Equal(ErrorCode.InvalidTopic, m.CreateTopic("", 1).Error);
        Assert.Equal(ErrorCode.InvalidTopic, m.CreateTopic(".", 1).Error);
        Assert.Equal(ErrorCode.InvalidTopic, m.CreateTopic("..", 1).Error);
        Assert.Equal(ErrorCode.InvalidTopic, m.CreateTopic("a/b", 1).Error);
        Assert.Equal(ErrorCode.InvalidTopic, m.CreateTopic(new string('x', 250), 1).Error);
        Assert.Equal(ErrorCode.None, m.CreateTopic(new string('x', 249), 1).Error);
        Assert.Equal(ErrorCode.InvalidPartitions, m.CreateTopic("ok", 0).Error);
        Assert.Equal(ErrorCode.InvalidConfig, m.CreateTopic("ok", 1, [Kv("no.such.config", "1")]).Error);
        Assert.Equal(ErrorCode.InvalidConfig, m.CreateTopic("ok", 1, [Kv("retention.ms", "abc")]).Error);
        Assert.Equal(ErrorCode.InvalidConfig, m.CreateTopic("ok", 1, [Kv("message.timestamp.type", "Sometime")]).Error);
        Assert.Equal(ErrorCode.None, m.CreateTopic("ok.name_1-x", 1, validateOnly: true).Error);
        Assert.False(m.TryGetTopic("ok.name_1-x", out _));
        Assert.Equal(ErrorCode.None, m.CreateTopic("ok.name_1-x", 1).Error);
        Assert.Equal(ErrorCode.TopicAlreadyExists, m.CreateTopic("ok.name_1-x", 1).Error);
        Assert.Equal(ErrorCode.InvalidTopic, m.CreateTopic("ok_name_1-x", 1).Error); // collides on '.' vs '_'
    }

    [Fact]
    public async Task Delete_topic_removes_files_and_survives_restart()
    {
        await using (var m = await OpenAsync())
        {
            m.CreateTopic("gone", 2);
            m.CreateTopic("kept", 1);
            var p = m.GetPartition("gone", 0)!;
            p.Append(TestBatch.Simple(3));
            var inflight = p.Read(0, 1000); // built before the delete
            Assert.Equal(ErrorCode.None, m.DeleteTopic("gone").Error);
            Assert.Equal(ErrorCode.UnknownTopicOrPartition, m.DeleteTopic("gone").Error);
            Assert.False(Directory.Exists(Path.Combine(_dir.Path, "gone-0")));
            Assert.Null(m.GetPartition("gone", 0));
            // Concurrent users of the deleted partition get errors, not crashes; an in-flight payload is still copyable.
            Assert.Equal(ErrorCode.UnknownTopicOrPartition, p.Read(0, 1000).Error);
            Assert.Equal(ErrorCode.UnknownTopicOrPartition, p.Append(TestBatch.Simple(1)).Error);
            Assert.Single(TestBatch.Split(inflight.Records.Bytes()));
            // Same name again: a fresh topic with a new id.
            var again = m.CreateTopic("gone", 1);
            Assert.Equal(ErrorCode.None, again.Error);
            Assert.Equal(0, again.Topic!.GetPartition(0)!.HighWatermark);
            m.DeleteTopic("gone");
        }
        await using (var m = await OpenAsync())
        {
            Assert.False(m.TryGetTopic("gone", out _));
            Assert.True(m.TryGetTopic("kept", out _));
        }
    }

    [Fact]
    public async Task Add_partitions_persists()
    {
        await using (var m = await OpenAsync())
        {
            m.CreateTopic("grow", 1);
            Assert.Equal(ErrorCode.InvalidPartitions, m.AddPartitions("grow", 1).Error);
            Assert.Equal(ErrorCode.UnknownTopicOrPartition, m.AddPartitions("nope", 3).Error);
            var r = m.AddPartitions("grow", 4);
            Assert.Equal(ErrorCode.None, r.Error);
            Assert.Equal(4, r.Topic!.PartitionCount);
            Assert.NotNull(m.GetPartition("grow", 3));
            m.GetPartition("grow", 3)!.Append(TestBatch.Simple(2));
        }
        await using (var m = await OpenAsync())
        {
            Assert.True(m.TryGetTopic("grow", out var t));
            Assert.Equal(4, t.PartitionCount);
            Assert.Equal(2, t.GetPartition(3)!.HighWatermark);
        }
    }

    [Fact]
    public async Task Config_updates_apply_and_describe_reports_sources()
    {
        var options = Options();
        options.DefaultConfig = LogConfig.Default with { SegmentBytes = 1 << 20 };
        await using (var m = await LogManager.OpenAsync(options, time: _time))
        {
            m.CreateTopic("cfg", 1, [Kv("retention.ms", "5000")]);
            var entries = m.TryGetTopic("cfg", out var t) ? t.DescribeConfigs() : throw new Exception();
            Assert.Equal(ConfigSource.TopicConfig, entries.Single(e => e.Name == "retention.ms").Source);
            Assert.Equal("5000", entries.Single(e => e.Name == "retention.ms").Value);
            Assert.Equal(ConfigSource.StaticBrokerConfig, entries.Single(e => e.Name == "segment.bytes").Source);
            Assert.Equal(ConfigSource.DefaultConfig, entries.Single(e => e.Name == "max.message.bytes").Source);
            Assert.Equal("1048588", entries.Single(e => e.Name == "max.message.bytes").Value);
            Assert.Equal("delete", entries.Single(e => e.Name == "cleanup.policy").Value);

            Assert.Equal(ErrorCode.None, m.AlterTopicConfig("cfg", [new ConfigAlteration("max.message.bytes", AlterConfigOp.Set, "100"),
                new ConfigAlteration("retention.ms", AlterConfigOp.Delete, null)]).Error);
            Assert.Equal(100, t.Config.MaxMessageBytes);
            Assert.Equal(LogConfig.Default.RetentionMs, t.Config.RetentionMs);
            // The partition enforces the new limit right away.
            Assert.Equal(ErrorCode.MessageTooLarge, t.GetPartition(0)!.Append(TestBatch.Simple(3, valueSize: 100)).Error);
            Assert.Equal(ErrorCode.InvalidConfig, m.SetTopicConfig("cfg", [Kv("segment.bytes", "1")]).Error);
        }
        await using (var m = await LogManager.OpenAsync(options, time: _time))
        {
            Assert.True(m.TryGetTopic("cfg", out var t));
            Assert.Equal(100, t.Config.MaxMessageBytes);
            Assert.Equal(1 << 20, t.Config.SegmentBytes);
            Assert.Equal(new Dictionary<string, string> { ["max.message.bytes"] = "100" }, t.ConfigOverrides);
        }
    }

    [Fact]
    public async Task Retention_runs_across_all_partitions()
    {
        await using var m = await OpenAsync();
        m.CreateTopic("r", 2, [Kv("retention.ms", "1000"), Kv("file.delete.delay.ms", "0")]);
        var p = m.GetPartition("r", 0)!;
        p.Append(TestBatch.Simple(2, timestamp: _time.NowMs - 10_000));
        p.Roll();
        p.Append(TestBatch.Simple(2, timestamp: _time.NowMs));
        var deleted = m.ApplyRetention(_time.Now);
        Assert.Single(deleted);
        Assert.Equal(("r", 0, 2L), (deleted[0].Topic, deleted[0].Partition, deleted[0].Result.LogStartOffset));
    }

    [Fact]
    public async Task Data_directory_is_locked_while_open()
    {
        await using var m = await OpenAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => OpenAsync());
    }

    [Fact]
    public async Task Unclean_shutdown_is_recovered_on_load()
    {
        var m = await OpenAsync();
        m.CreateTopic("u", 1);
        m.GetPartition("u", 0)!.Append(TestBatch.Simple(5));
        // Simulate a crash: files stay as they are, no clean marker.
        m.GetPartition("u", 0)!.SimulateCrash();
        var lockField = typeof(LogManager).GetField("_lockFile", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        ((FileStream?)lockField.GetValue(m))!.Dispose();

        await using var m2 = await OpenAsync();
        Assert.True(m2.TryGetTopic("u", out var t));
        Assert.Equal(5, t.GetPartition(0)!.HighWatermark);
        Assert.Equal(5, t.GetPartition(0)!.Append(TestBatch.Simple(1)).BaseOffset);
    }

    [Fact]
    public void LogConfig_parses_broker_properties()
    {
        var code = LogConfig.TryFromBrokerProperties(new Dictionary<string, string>
        {
            ["log.retention.hours"] = "1",
            ["log.segment.bytes"] = "2048",
            ["message.max.bytes"] = "500",
            ["log.message.timestamp.type"] = "LogAppendTime",
        }, out var cfg, out var error);
        Assert.Equal(ErrorCode.None, code);
        Assert.Null(error);
        Assert.Equal(3_600_000, cfg.RetentionMs);
        Assert.Equal(2048, cfg.SegmentBytes);
        Assert.Equal(500, cfg.MaxMessageBytes);
        Assert.Equal(TimestampType.LogAppendTime, cfg.MessageTimestampType);
    }
}
