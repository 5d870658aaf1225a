using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;

namespace Cairn.Tests.Groups.Store;

public sealed class MemberCodecTests
{
    [Fact]
    public void Round_trips_members_exactly()
    {
        StoredMember[] members =
        [
            new("m-1", "inst", "client", "/1.2.3.4", int.MinValue, int.MaxValue,
                [new MemberProtocol("range", [1, 2, 3]), new MemberProtocol("", [])], new byte[70_000]),
            new("m-2", null, "", "", 0, -5, [], [0xFF]),
        ];
        members[0].Assignment[69_999] = 42;
        var decoded = MemberCodec.Decode(MemberCodec.Encode(members));
        Assert.Equal(2, decoded.Count);
        for (var i = 0; i < members.Length; i++)
        {
            Assert.Equal(members[i] with { Protocols = [], Assignment = [] }, decoded[i] with { Protocols = [], Assignment = [] });
            Assert.Equal(members[i].Assignment, decoded[i].Assignment);
            Assert.Equal(members[i].Protocols.Select(p => (p.Name, Convert.ToHexString(p.Metadata))),
                decoded[i].Protocols.Select(p => (p.Name, Convert.ToHexString(p.Metadata))));
        }
        Assert.Empty(MemberCodec.Decode(MemberCodec.Encode([])));
    }

    [Fact]
    public void Rejects_corrupt_input()
    {
        var encoded = MemberCodec.Encode([new StoredMember("m", null, "c", "h", 1, 2, [new MemberProtocol("p", [1, 2])], [3])]);
        Assert.Throws<InvalidDataException>(() => MemberCodec.Decode(encoded.AsSpan(0, encoded.Length - 1)));
        Assert.Throws<InvalidDataException>(() => MemberCodec.Decode([9, 0]));
        Assert.Throws<InvalidDataException>(() => MemberCodec.Decode([]));
        Assert.Throws<InvalidDataException>(() => MemberCodec.Decode([.. encoded, 0]));
    }
}
