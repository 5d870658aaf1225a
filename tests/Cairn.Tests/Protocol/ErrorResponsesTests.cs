using System.Collections;
using System.Reflection;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Tests.Protocol;

/// <summary>Error responses derived from the declarations: every API, every version, and the echoed keys.</summary>
public class ErrorResponsesTests
{
    private const ErrorCode Error = ErrorCode.CoordinatorNotAvailable;

    public static IEnumerable<object[]> EveryApiVersion() =>
        MessageCatalog.All.Where(d => d.Kind == MessageKind.Request && MessageCatalog.Response(d.ApiKey) is not null)
            .SelectMany(d => Enumerable.Range(d.Versions.Min, d.Versions.Max - d.Versions.Min + 1)
                .Where(v => MessageCatalog.Response(d.ApiKey)!.Versions.Contains((short)v))
                .Select(v => new object[] { d.ApiKey, (short)v }));

    private static TResponse For<TRequest, TResponse>(TRequest request, short version)
        where TRequest : class, new() where TResponse : class, new()
    {
        // Through the wire, so the response is checked as a client reads it.
        var response = ErrorResponses.For<TRequest, TResponse>(request, version, Error);
        return (TResponse)MessageRoundTripTests.Decode(typeof(TResponse), MessageRoundTripTests.Encode(typeof(TResponse), response, version), version);
    }

    [Theory]
    [MemberData(nameof(EveryApiVersion))]
    public void Every_error_code_present_carries_the_error_and_offsets_are_unknown(ApiKey api, short version)
    {
        var requestType = MessageCatalog.Request(api)!.Type;
        var responseType = MessageCatalog.Response(api)!.Type;
        ErrorResponses.Validate(requestType, responseType);
        var request = MessageRoundTripTests.Decode(requestType,
            MessageRoundTripTests.Encode(requestType, RandomFill.Create(requestType, new Random((int)api * 100 + version), 0), version), version);

        var response = typeof(ErrorResponsesTests).GetMethod(nameof(For), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(requestType, responseType).Invoke(null, [request, version])!;

        CheckParts(response, version);
    }

    /// <summary>Checks every part present in the version, down through lists of structs.</summary>
    private static void CheckParts(object part, short version)
    {
        foreach (var p in part.GetType().GetProperties())
        {
            var wire = p.GetCustomAttribute<KafkaFieldAttribute>();
            if (wire is null || !wire.Versions.Contains(version)) continue;
            var value = p.GetValue(part);
            if (p.Name == "ErrorCode" && p.PropertyType == typeof(short)) Assert.Equal((short)Error, (short)value!);
            else if (p.PropertyType == typeof(long)) Assert.Equal(-1L, (long)value!);
            else if (p.PropertyType == typeof(RecordsPayload)) Assert.Equal(0, ((RecordsPayload)value!).Length);
            else if (value is IList list)
            {
                foreach (var item in list)
                    if (item is not null && item.GetType().GetProperties().Any(x => x.IsDefined(typeof(KafkaFieldAttribute)))) CheckParts(item, version);
            }
        }
    }

    [Fact]
    public void Topics_and_partitions_are_repeated_with_their_keys()
    {
        var response = For<ProduceRequest, ProduceResponse>(new()
        {
            TopicData = [new() { Name = "a", PartitionData = [new() { Index = 2 }, new() { Index = 7 }] }, new() { Name = "b", PartitionData = [new() { Index = 0 }] }],
        }, 9);
        Assert.Equal(new[] { ("a", 2), ("a", 7), ("b", 0) }, response.Responses.SelectMany(t => t.PartitionResponses.Select(p => (t.Name, p.Index))));
        Assert.All(response.Responses.SelectMany(t => t.PartitionResponses), p => Assert.Equal((-1L, -1L, -1L), (p.BaseOffset, p.LogAppendTimeMs, p.LogStartOffset)));
    }

    [Fact]
    public void Fetch_by_topic_id_repeats_the_ids_and_partition_numbers()
    {
        var id = Guid.NewGuid();
        var response = For<FetchRequest, FetchResponse>(new()
        {
            SessionId = 12, SessionEpoch = 4,
            Topics = [new() { TopicId = id, Partitions = [new() { Partition = 3, FetchOffset = 40, LogStartOffset = 8 }] }],
        }, 13);
        Assert.Equal((short)Error, response.ErrorCode);
        Assert.Equal(0, response.SessionId); // a failed fetch does not confirm the session
        var topic = Assert.Single(response.Responses);
        Assert.Equal(id, topic.TopicId);
        var partition = Assert.Single(topic.Partitions);
        Assert.Equal((3, -1L), (partition.PartitionIndex, partition.LogStartOffset));
    }

    [Fact]
    public void Lists_of_plain_values_become_keyed_results()
    {
        var deleted = For<DeleteTopicsRequest, DeleteTopicsResponse>(new() { TopicNames = ["x", "y"] }, 5);
        Assert.Equal(new[] { "x", "y" }, deleted.Responses.Select(r => r.Name));
        var id = Guid.NewGuid();
        var byId = For<DeleteTopicsRequest, DeleteTopicsResponse>(new() { Topics = [new() { Name = null, TopicId = id }] }, 6);
        Assert.Equal((null, id, (short)Error), byId.Responses.Select(r => (r.Name, r.TopicId, r.ErrorCode)).Single());

        var coordinators = For<FindCoordinatorRequest, FindCoordinatorResponse>(new() { CoordinatorKeys = ["g1", "g2"] }, 4);
        Assert.Equal(new[] { ("g1", (short)Error), ("g2", (short)Error) }, coordinators.Coordinators.Select(c => (c.Key, c.ErrorCode)));
        var described = For<DescribeGroupsRequest, DescribeGroupsResponse>(new() { Groups = ["g"] }, 5);
        Assert.Equal(("g", (short)Error), described.Groups.Select(g => (g.GroupId, g.ErrorCode)).Single());
    }

    [Fact]
    public void A_null_request_list_means_all_and_repeats_nothing()
    {
        var metadata = For<MetadataRequest, MetadataResponse>(new() { Topics = null }, 9);
        Assert.Empty(metadata.Topics);
        Assert.Empty(metadata.Brokers);
    }

    [Fact]
    public void An_echo_of_a_field_the_request_does_not_declare_is_refused()
    {
        var e = Assert.Throws<InvalidOperationException>(() => ErrorResponses.Validate(typeof(OffsetCommitRequest), typeof(MisspeltResponse)));
        Assert.Contains("Topicz", e.Message);
    }

    [Fact]
    public void Only_the_part_holding_unreadable_records_fails()
    {
        var good = new MemoryRecords(new byte[] { 1, 2, 3 });
        var bad = new MemoryRecords(new byte[] { 4, 5 });
        var response = new FetchResponse
        {
            Responses =
            [
                new() { Topic = "a", Partitions = [new() { PartitionIndex = 0, HighWatermark = 9, Records = good }] },
                new() { Topic = "b", Partitions = [new() { PartitionIndex = 1, HighWatermark = 9, Records = bad }] },
            ],
        };
        Assert.True(ErrorResponses.FailPartHolding(response, bad, ErrorCode.KafkaStorageError));
        Assert.False(ErrorResponses.FailPartHolding(response, bad, ErrorCode.KafkaStorageError)); // no longer held
        var (first, second) = (response.Responses[0].Partitions[0], response.Responses[1].Partitions[0]);
        Assert.Equal((0, (short)0, 9L, 3), (first.PartitionIndex, first.ErrorCode, first.HighWatermark, first.Records!.Length));
        Assert.Equal((1, (short)ErrorCode.KafkaStorageError, -1L, 0), (second.PartitionIndex, second.ErrorCode, second.HighWatermark, second.Records!.Length));
        Assert.Equal(0, response.ErrorCode);
    }

    [Fact]
    public void Records_that_cannot_be_copied_while_writing_name_their_payload()
    {
        var failing = new FailingRecords();
        var response = new FetchResponse { Responses = [new() { Topic = "a", Partitions = [new() { Records = failing }] }] };
        using var writer = new Cairn.Protocol.Primitives.KafkaWriter();
        var e = Assert.Throws<RecordsUnreadableException>(() => MessageSerializer.Write(writer, response, 12));
        Assert.Same(failing, e.Records);
        Assert.IsType<IOException>(e.InnerException);
    }

    private sealed class FailingRecords : RecordsPayload
    {
        public override int Length => 10;
        public override void CopyTo(Span<byte> destination) => throw new IOException("segment truncated");
    }

    private sealed class MisspeltResponse
    {
        [KafkaField("0+"), Echoes("Topicz")] public List<OffsetCommitResponse.OffsetCommitResponseTopic> Topics { get; set; } = [];
    }
}
