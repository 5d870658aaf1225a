using System.Text;

namespace Cairn.Broker.Groups.Store;

/// <summary>
/// Compact binary form of a group's members, stored in one bytes column. Layout (format 1):
/// <c>format:u8, count:uvarint, then per member: memberId:str, groupInstanceId:str, clientId:str, clientHost:str,
/// rebalanceTimeoutMs:varint, sessionTimeoutMs:varint, protocolCount:uvarint, (name:str, metadata:bytes)*, assignment:bytes</c>.
/// <c>str</c> is uvarint(byteLength + 1) then UTF-8, with 0 meaning null; <c>bytes</c> is uvarint(length) then the bytes.
/// </summary>
internal static class MemberCodec
{
    public const byte Format = 1;

    public static byte[] Encode(IReadOnlyList<StoredMember> members)
    {
        var size = 1 + VarLen((uint)members.Count);
        for (var i = 0; i < members.Count; i++)
        {
            var m = members[i];
            size += StrLen(m.MemberId) + StrLen(m.GroupInstanceId) + StrLen(m.ClientId) + StrLen(m.ClientHost);
            size += VarLen(ZigZag(m.RebalanceTimeoutMs)) + VarLen(ZigZag(m.SessionTimeoutMs));
            size += VarLen((uint)m.Protocols.Count);
            for (var j = 0; j < m.Protocols.Count; j++)
                size += StrLen(m.Protocols[j].Name) + BytesLen(m.Protocols[j].Metadata);
            size += BytesLen(m.Assignment);
        }

        var buffer = new byte[size];
        var span = buffer.AsSpan();
        var pos = 0;
        span[pos++] = Format;
        WriteVar(span, ref pos, (uint)members.Count);
        for (var i = 0; i < members.Count; i++)
        {
            var m = members[i];
            WriteStr(span, ref pos, m.MemberId);
            WriteStr(span, ref pos, m.GroupInstanceId);
            WriteStr(span, ref pos, m.ClientId);
            WriteStr(span, ref pos, m.ClientHost);
            WriteVar(span, ref pos, ZigZag(m.RebalanceTimeoutMs));
            WriteVar(span, ref pos, ZigZag(m.SessionTimeoutMs));
            WriteVar(span, ref pos, (uint)m.Protocols.Count);
            for (var j = 0; j < m.Protocols.Count; j++)
            {
                WriteStr(span, ref pos, m.Protocols[j].Name);
                WriteBytes(span, ref pos, m.Protocols[j].Metadata);
            }
            WriteBytes(span, ref pos, m.Assignment);
        }
        if (pos != size) throw new InvalidOperationException("member encoding size mismatch");
        return buffer;
    }

    public static IReadOnlyList<StoredMember> Decode(ReadOnlySpan<byte> data)
    {
        var pos = 0;
        if (data.Length < 1) throw Corrupt();
        var format = data[pos++];
        if (format != Format) throw new InvalidDataException($"unknown group members format {format}");
        var count = ReadCount(data, ref pos);
        if (count == 0) return Array.Empty<StoredMember>();
        var members = new StoredMember[count];
        for (var i = 0; i < count; i++)
        {
            var memberId = ReadStr(data, ref pos) ?? throw Corrupt();
            var instanceId = ReadStr(data, ref pos);
            var clientId = ReadStr(data, ref pos) ?? throw Corrupt();
            var clientHost = ReadStr(data, ref pos) ?? throw Corrupt();
            var rebalance = UnZigZag(ReadVar(data, ref pos));
            var session = UnZigZag(ReadVar(data, ref pos));
            var protocolCount = ReadCount(data, ref pos);
            var protocols = protocolCount == 0 ? Array.Empty<MemberProtocol>() : new MemberProtocol[protocolCount];
            for (var j = 0; j < protocolCount; j++)
            {
                var name = ReadStr(data, ref pos) ?? throw Corrupt();
                protocols[j] = new MemberProtocol(name, ReadBytes(data, ref pos));
            }
            var assignment = ReadBytes(data, ref pos);
            members[i] = new StoredMember(memberId, instanceId, clientId, clientHost, rebalance, session, protocols, assignment);
        }
        if (pos != data.Length) throw Corrupt();
        return members;
    }

    private static InvalidDataException Corrupt() => new("corrupt group members encoding");

    private static uint ZigZag(int value) => (uint)((value << 1) ^ (value >> 31));
    private static int UnZigZag(uint value) => (int)(value >> 1) ^ -(int)(value & 1);

    private static int VarLen(uint value)
    {
        var n = 1;
        while (value >= 0x80) { value >>= 7; n++; }
        return n;
    }

    private static int StrLen(string? s)
    {
        if (s is null) return 1;
        var bytes = Encoding.UTF8.GetByteCount(s);
        return VarLen((uint)bytes + 1) + bytes;
    }

    private static int BytesLen(byte[] b) => VarLen((uint)b.Length) + b.Length;

    private static void WriteVar(Span<byte> span, ref int pos, uint value)
    {
        while (value >= 0x80)
        {
            span[pos++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[pos++] = (byte)value;
    }

    private static void WriteStr(Span<byte> span, ref int pos, string? s)
    {
        if (s is null) { span[pos++] = 0; return; }
        var bytes = Encoding.UTF8.GetByteCount(s);
        WriteVar(span, ref pos, (uint)bytes + 1);
        pos += Encoding.UTF8.GetBytes(s, span[pos..]);
    }

    private static void WriteBytes(Span<byte> span, ref int pos, byte[] b)
    {
        WriteVar(span, ref pos, (uint)b.Length);
        b.CopyTo(span[pos..]);
        pos += b.Length;
    }

    private static uint ReadVar(ReadOnlySpan<byte> data, ref int pos)
    {
        uint result = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            if (pos >= data.Length) throw Corrupt();
            var b = data[pos++];
            result |= (uint)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw Corrupt();
    }

    private static int ReadCount(ReadOnlySpan<byte> data, ref int pos)
    {
        var n = ReadVar(data, ref pos);
        if (n > (uint)(data.Length - pos)) throw Corrupt(); // every element takes at least one byte
        return (int)n;
    }

    private static string? ReadStr(ReadOnlySpan<byte> data, ref int pos)
    {
        var n = ReadVar(data, ref pos);
        if (n == 0) return null;
        var len = n - 1;
        if (len > (uint)(data.Length - pos)) throw Corrupt();
        var s = Encoding.UTF8.GetString(data.Slice(pos, (int)len));
        pos += (int)len;
        return s;
    }

    private static byte[] ReadBytes(ReadOnlySpan<byte> data, ref int pos)
    {
        var len = ReadVar(data, ref pos);
        if (len > (uint)(data.Length - pos)) throw Corrupt();
        var b = data.Slice(pos, (int)len).ToArray();
        pos += (int)len;
        return b;
    }
}
