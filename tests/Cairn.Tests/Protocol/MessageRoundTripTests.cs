using System.Reflection;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Tests.Protocol;

public class MessageRoundTripTests
{
    public static IEnumerable<object[]> EveryMessageVersion() =>
        MessageCatalog.All.SelectMany(d => Enumerable.Range(d.Versions.Min, d.Versions.Max - d.Versions.Min + 1)
            .Select(v => new object[] { d.Type.Name, (short)v }));

    [Theory]
    [MemberData(nameof(EveryMessageVersion))]
    public void Every_version_round_trips_byte_for_byte(string typeName, short version)
    {
        var descriptor = MessageCatalog.All.Single(d => d.Type.Name == typeName);
        var random = new Random(typeName.GetHashCode() ^ version);
        var message = RandomFill.Create(descriptor.Type, random, depth: 0);

        var first = Encode(descriptor.Type, message, version);
        var decoded = Decode(descriptor.Type, first, version);
        var second = Encode(descriptor.Type, decoded, version);

        Assert.Equal(first, second);
    }

    [Fact]
    public void Fields_outside_a_version_keep_their_declared_default()
    {
        var request = new FetchRequest { MaxBytes = 1234, IsolationLevel = 1, SessionEpoch = 7 };
        var bytes = Encode(typeof(FetchRequest), request, 2);
        var decoded = (FetchRequest)Decode(typeof(FetchRequest), bytes, 2);
        Assert.Equal(int.MaxValue, decoded.MaxBytes); // MaxBytes exists from v3
        Assert.Equal(0, decoded.IsolationLevel);
        Assert.Equal(-1, decoded.SessionEpoch);
    }

    [Fact]
    public void Flexible_versions_use_compact_lengths_and_tagged_sections()
    {
        // Metadata v9 is flexible: compact array of one topic, compact string, tagged-field counts.
        var request = new MetadataRequest { Topics = [new() { Name = "t" }], AllowAutoTopicCreation = true };
        var bytes = Encode(typeof(MetadataRequest), request, 9);
        Assert.Equal(new byte[] { 2, 2, (byte)'t', 0, 1, 0, 0, 0 }, bytes);
    }

    [Fact]
    public void Classic_versions_use_fixed_width_lengths()
    {
        var request = new MetadataRequest { Topics = [new() { Name = "t" }] };
        var bytes = Encode(typeof(MetadataRequest), request, 1);
        Assert.Equal(new byte[] { 0, 0, 0, 1, 0, 1, (byte)'t' }, bytes);
    }

    [Fact]
    public void Null_array_in_a_nullable_version_is_minus_one()
    {
        var request = new MetadataRequest { Topics = null };
        Assert.Equal(new byte[] { 0xff, 0xff, 0xff, 0xff }, Encode(typeof(MetadataRequest), request, 1));
        var decoded = (MetadataRequest)Decode(typeof(MetadataRequest), [0xff, 0xff, 0xff, 0xff], 1);
        Assert.Null(decoded.Topics);
    }

    [Fact]
    public void Tagged_fields_are_written_only_when_set_and_unknown_tags_are_skipped()
    {
        var response = new FetchResponse
        {
            Responses = [new() { Topic = "t", Partitions = [new() { PartitionIndex = 0, CurrentLeader = new() { LeaderId = 1, LeaderEpoch = 0 } }] }],
        };
        var bytes = Encode(typeof(FetchResponse), response, 12);
        var decoded = (FetchResponse)Decode(typeof(FetchResponse), bytes, 12);
        var partition = decoded.Responses[0].Partitions[0];
        Assert.Equal(1, partition.CurrentLeader!.LeaderId);
        Assert.Null(partition.DivergingEpoch);

        // Append an unknown tag (99, 2 bytes) to a flexible ApiVersions request: it must be skipped.
        var av = Encode(typeof(ApiVersionsRequest), new ApiVersionsRequest { ClientSoftwareName = "x", ClientSoftwareVersion = "1" }, 3);
        var withTag = av[..^1].Concat(new byte[] { 1, 99, 2, 0xAB, 0xCD }).ToArray();
        var parsed = (ApiVersionsRequest)Decode(typeof(ApiVersionsRequest), withTag, 3);
        Assert.Equal("x", parsed.ClientSoftwareName);
    }

    [Fact]
    public void Truncated_input_is_reported_as_malformed()
    {
        var bytes = Encode(typeof(ProduceRequest), new ProduceRequest { TopicData = [new() { Name = "topic" }] }, 7);
        Assert.Throws<MalformedMessageException>(() => Decode(typeof(ProduceRequest), bytes[..^3], 7));
    }

    [Fact]
    public void Request_header_v2_carries_tagged_fields_and_v1_does_not()
    {
        using var w = new KafkaWriter();
        new RequestHeader(ApiKey.Metadata, 9, 42, "client").Write(w);
        var bytes = w.WrittenSpan.ToArray();
        Assert.Equal(2 + 2 + 4 + 2 + 6 + 1, bytes.Length);
        var parsed = RequestHeader.Read(new KafkaReader(bytes));
        Assert.Equal(new RequestHeader(ApiKey.Metadata, 9, 42, "client"), parsed);

        using var w1 = new KafkaWriter();
        new RequestHeader(ApiKey.Metadata, 8, 42, null).Write(w1);
        Assert.Equal(2 + 2 + 4 + 2, w1.Position);
    }

    [Fact]
    public void ApiVersions_responses_always_use_response_header_v0()
    {
        using var w = new KafkaWriter();
        new RequestHeader(ApiKey.ApiVersions, 3, 7, "c").WriteResponseHeader(w);
        Assert.Equal(4, w.Position);
        using var w2 = new KafkaWriter();
        new RequestHeader(ApiKey.Metadata, 12, 7, "c").WriteResponseHeader(w2);
        Assert.Equal(5, w2.Position);
    }

    internal static byte[] Encode(Type type, object message, short version)
    {
        using var writer = new KafkaWriter();
        typeof(MessageSerializer).GetMethod(nameof(MessageSerializer.Write))!.MakeGenericMethod(type)
            .Invoke(null, [writer, message, version]);
        return writer.WrittenSpan.ToArray();
    }

    internal static object Decode(Type type, byte[] bytes, short version)
    {
        var reader = new KafkaReader(bytes);
        try
        {
            var result = typeof(MessageSerializer).GetMethod(nameof(MessageSerializer.Read), [typeof(KafkaReader), typeof(short)])!
                .MakeGenericMethod(type).Invoke(null, [reader, version])!;
            Assert.Equal(bytes.Length, reader.Position);
            return result;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }
}

/// <summary>Fills every declared field with random values (lists of 0-2 elements) to exercise every codec.</summary>
internal static class RandomFill
{
    public static object Create(Type type, Random random, int depth)
    {
        var value = Activator.CreateInstance(type)!;
        foreach (var p in type.GetProperties().Where(p => p.GetCustomAttribute<KafkaFieldAttribute>() is not null))
            p.SetValue(value, Value(p.PropertyType, random, depth));
        return value;
    }

    private static object? Value(Type t, Random r, int depth)
    {
        if (t == typeof(bool)) return r.Next(2) == 1;
        if (t == typeof(sbyte)) return (sbyte)r.Next(-128, 128);
        if (t == typeof(short)) return (short)r.Next(short.MinValue, short.MaxValue);
        if (t == typeof(ushort)) return (ushort)r.Next(0, ushort.MaxValue);
        if (t == typeof(int)) return r.Next();
        if (t == typeof(uint)) return (uint)r.Next();
        if (t == typeof(long)) return r.NextInt64();
        if (t == typeof(double)) return r.NextDouble();
        if (t == typeof(Guid)) return Guid.NewGuid();
        if (t == typeof(string)) return "s" + r.Next(1000);
        if (t == typeof(byte[])) return Enumerable.Range(0, r.Next(5)).Select(i => (byte)r.Next(256)).ToArray();
        if (t == typeof(RecordsPayload)) return new MemoryRecords(new byte[] { 1, 2, 3, (byte)r.Next(256) });
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
        {
            var list = (System.Collections.IList)Activator.CreateInstance(t)!;
            int count = depth > 3 ? 0 : r.Next(3);
            for (int i = 0; i < count; i++) list.Add(Value(t.GetGenericArguments()[0], r, depth + 1));
            return list;
        }
        return Create(t, r, depth + 1);
    }
}
