using Cairn.Client;
using Cairn.Offsets;
using Cairn.Protocol;
using Cairn.Protocol.Messages;

namespace Cairn.Tests.Client;

public sealed class KafkaGroupOffsetStoreTests : ClientTestBase
{
    [Fact]
    public async Task Commits_read_back_and_clear_through_the_group()
    {
        await CreateTopicAsync("orders", 3);
        await using var store = new KafkaGroupOffsetStore(ClientOptions, "pipeline", commitMetadata: "cairn-test");
        var s0 = OffsetSource.ForKafka("orders", 0);
        var s2 = OffsetSource.ForKafka("orders", 2);
        Assert.Null(await store.GetAsync(s0));
        Assert.Empty(await store.GetAllAsync());

        await store.CommitAsync(s0, Offset.Sequence(42));
        await store.CommitAsync(s2, Offset.Sequence(7));
        await store.CommitAsync(s2, Offset.Sequence(8));
        Assert.Equal(Offset.Sequence(42), await store.GetAsync(s0));
        Assert.Equal(new Dictionary<string, Offset> { [s0] = Offset.Sequence(42), [s2] = Offset.Sequence(8) }, await store.GetAllAsync());
        Assert.Equal("cairn-test", (await store.GetEntryAsync(s0))!.Metadata);

        // The offsets are the group's: Kafka tooling (here the admin client) sees them.
        var committed = await Admin.FetchCommittedOffsetsAsync("pipeline");
        Assert.Equal(42, committed[new TopicPartition("orders", 0)].Offset);
        Assert.Equal("cairn-test", committed[new TopicPartition("orders", 0)].Metadata);

        await store.ClearAsync(s0);
        await store.ClearAsync(OffsetSource.ForKafka("orders", 1)); // nothing there: no error
        Assert.Null(await store.GetAsync(s0));
        Assert.Equal([s2], (await store.GetAllAsync()).Keys);
        await store.ClearAllAsync();
        Assert.Empty(await store.GetAllAsync());

        await using var other = new KafkaGroupOffsetStore(Admin, "never-used");
        await other.ClearAllAsync();
        await other.ClearAsync(s0);
    }

    [Fact]
    public async Task Positions_other_than_sequences_are_resolved_when_committed()
    {
        await CreateTopicAsync("resolved", 1);
        var producer = Producer();
        var t0 = new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero);
        for (int i = 0; i < 5; i++) await producer.ProduceAsync("resolved", Message.FromStrings(null, "v", timestamp: t0.AddMinutes(i)));
        await Admin.DeleteRecordsAsync(new Dictionary<TopicPartition, long> { [new TopicPartition("resolved", 0)] = 1 });
        await using var store = new KafkaGroupOffsetStore(Admin, "resolver");
        var source = OffsetSource.ForKafka("resolved", 0);
        await store.CommitAsync(source, Offset.Earliest);
        Assert.Equal(Offset.Sequence(1), await store.GetAsync(source));
        await store.CommitAsync(source, Offset.Latest);
        Assert.Equal(Offset.Sequence(5), await store.GetAsync(source));
        await store.CommitAsync(source, Offset.Timestamp(t0.AddMinutes(2.5)));
        Assert.Equal(Offset.Sequence(3), await store.GetAsync(source));
        await store.CommitAsync(source, Offset.Timestamp(t0.AddDays(2)));
        Assert.Equal(Offset.Sequence(5), await store.GetAsync(source));
        await Assert.ThrowsAsync<InvalidOffsetException>(() => store.CommitAsync(source, Offset.Custom("cursor")).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => store.GetAsync("no-partition").AsTask());
    }

    [Fact]
    public async Task Failures_are_offset_store_errors_naming_the_source()
    {
        await CreateTopicAsync("busy", 1);
        using var member = await Broker.ConnectAsync();
        var join = new JoinGroupRequest
        {
            GroupId = "busy-group", SessionTimeoutMs = 30_000, RebalanceTimeoutMs = 30_000, ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = ConsumerProtocol.Write(new ConsumerProtocolSubscription { Topics = ["busy"] }) }],
        };
        join.MemberId = (await member.SendAsync<JoinGroupRequest, JoinGroupResponse>(join, 7)).MemberId;
        Assert.Equal(0, (await member.SendAsync<JoinGroupRequest, JoinGroupResponse>(join, 7)).ErrorCode);

        await using var store = new KafkaGroupOffsetStore(Admin, "busy-group");
        var source = OffsetSource.ForKafka("busy", 0);
        var e = await Assert.ThrowsAsync<OffsetStoreIOException>(() => store.CommitAsync(source, Offset.Sequence(1)).AsTask());
        Assert.Equal(source, e.SourceName);
        // Joined but not yet synced: the coordinator says the group is rebalancing (once stable: unknown member).
        Assert.Contains(Assert.IsType<KafkaException>(e.InnerException).Error, new[] { ErrorCode.UnknownMemberId, ErrorCode.RebalanceInProgress });
        Assert.Contains("active members", e.Message);

        var missing = await Assert.ThrowsAsync<OffsetStoreIOException>(() => store.CommitAsync(OffsetSource.ForKafka("busy", 4), Offset.Earliest).AsTask());
        Assert.IsAssignableFrom<KafkaException>(missing.InnerException);
    }
}
