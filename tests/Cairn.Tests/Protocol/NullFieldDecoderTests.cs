using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Tests.Protocol;

/// <summary>The decoder refuses null (length -1) in every field that its declaration says is not nullable in the version read.</summary>
public sealed class NullFieldDecoderTests
{
    private static IEnumerable<(MessageDescriptor Request, short Version)> AllRequestVersions() =>
        MessageCatalog.All.Where(d => d.Kind == MessageKind.Request)
            .SelectMany(d => Enumerable.Range(d.Versions.Min, d.Versions.Max - d.Versions.Min + 1).Select(v => (d, (short)v)));

    [Fact]
    public void Every_request_version_filled_without_nulls_decodes()
    {
        foreach (var (request, version) in AllRequestVersions())
        {
            var body = NullFieldFrames.Encode(NullFieldFrames.Filled(request.Type, version), version);
            Assert.NotNull(NullFieldFrames.Decode(request.Type, body, version));
        }
    }

    [Fact]
    public void Every_forbidden_null_of_every_request_version_is_refused_naming_struct_field_and_version()
    {
        int cases = 0;
        foreach (var (request, version) in AllRequestVersions())
        {
            foreach (var c in NullFieldFrames.For(request, version))
            {
                var e = Assert.Throws<NullFieldException>(() => NullFieldFrames.Decode(request.Type, c.Body, version));
                Assert.Equal((c.Struct, c.Field, c.Version), (e.Struct, e.Field, e.Version));
                Assert.IsAssignableFrom<MalformedMessageException>(e);
                cases++;
            }
        }
        // The generator reaches nested fields and array elements, not only top-level ones.
        var produce = NullFieldFrames.For(MessageCatalog.Of<ProduceRequest>(), 9).Select(c => $"{c.Struct}.{c.Field}").ToList();
        Assert.Contains("ProduceRequest.TopicProduceData.Name", produce);
        Assert.Contains("ProduceRequest.TopicProduceData.PartitionData", produce);
        Assert.DoesNotContain("ProduceRequest.TopicProduceData.PartitionProduceData.Records", produce); // nullable in every version
        var describe = NullFieldFrames.For(MessageCatalog.Of<DescribeGroupsRequest>(), 0).Single(c => c.Field == "Groups[]");
        Assert.Equal("DescribeGroupsRequest", describe.Struct);
        Assert.True(cases > 500, $"only {cases} cases");
    }

    [Fact]
    public void A_null_where_the_version_allows_it_decodes_as_null()
    {
        var request = new ProduceRequest { TransactionalId = null, Acks = 1, TimeoutMs = 10, TopicData = [new() { Name = "t", PartitionData = [new() { Index = 0, Records = null }] }] };
        foreach (short version in new short[] { 3, 9 })
        {
            var decoded = (ProduceRequest)NullFieldFrames.Decode(typeof(ProduceRequest), NullFieldFrames.Encode(request, version), version);
            Assert.Null(decoded.TransactionalId);
            Assert.Null(decoded.TopicData[0].PartitionData[0].Records);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_null_string_in_a_non_nullable_field_is_refused_in_both_encodings(bool flexible)
    {
        short version = flexible ? (short)4 : (short)3;
        using var writer = new KafkaWriter();
        writer.WriteLength(-1, flexible, wide: false); // group id
        var e = Assert.Throws<NullFieldException>(() => MessageSerializer.Read<HeartbeatRequest>(writer.WrittenMemory, version));
        Assert.Equal("HeartbeatRequest v" + version + ": field GroupId is null but not nullable in this version", e.Message);
    }

    [Fact]
    public void Without_KeepsForbiddenNulls_a_null_is_written_as_empty_and_reads_back_empty()
    {
        using var writer = new KafkaWriter();
        MessageSerializer.Write(writer, new HeartbeatRequest { GroupId = null!, MemberId = "m" }, 3);
        Assert.Equal("", MessageSerializer.Read<HeartbeatRequest>(writer.WrittenMemory, 3).GroupId);
    }
}
