using System.Text;
using Cairn.Protocol.Records;
using Record = Cairn.Protocol.Records.Record;

namespace Cairn.Tests.Records;

/// <summary>What a test appends to a builder, and the comparison against what comes back.</summary>
internal sealed record InputRecord(long Timestamp, byte[]? Key, byte[]? Value, (string Key, byte[]? Value)[] Headers)
{
    public void AppendTo(RecordBatchBuilder builder) =>
        builder.Append(Timestamp, Key, Value, Headers.Select(h => new RecordHeader(h.Key, h.Value)).ToArray());

    public override string ToString() =>
        $"ts={Timestamp} key={Show(Key)} value={Show(Value)} headers=[{string.Join(",", Headers.Select(h => $"{h.Key}={Show(h.Value)}"))}]";

    private static string Show(byte[]? b) => b is null ? "null" : Convert.ToHexString(b);
}

internal static class RecordAssert
{
    public static void Matches(InputRecord expected, Record actual, long expectedOffset)
    {
        Assert.Equal(expectedOffset, actual.Offset);
        Assert.Equal(expected.Timestamp, actual.Timestamp);
        BytesEqual(expected.Key, actual.Key);
        BytesEqual(expected.Value, actual.Value);
        Assert.Equal(expected.Headers.Length, actual.Headers.Count);
        for (int i = 0; i < expected.Headers.Length; i++)
        {
            Assert.Equal(expected.Headers[i].Key, actual.Headers[i].Key);
            BytesEqual(expected.Headers[i].Value, actual.Headers[i].Value);
        }
    }

    /// <summary>Null must come back as null and empty as empty.</summary>
    public static void BytesEqual(byte[]? expected, ReadOnlyMemory<byte>? actual)
    {
        if (expected is null)
        {
            Assert.Null(actual);
            return;
        }
        Assert.NotNull(actual);
        Assert.Equal(expected, actual.Value.ToArray());
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
