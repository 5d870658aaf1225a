using System.Text;

namespace Cairn.Interop.Tests.Clients;

/// <summary>Deterministic record sets shaped to what a producing client can express.</summary>
public static class TestData
{
    /// <summary>Headers kcat puts on every record of an invocation.</summary>
    public static readonly IReadOnlyList<KHeader> KcatHeaders = [KHeader.Text("h-one", "x1"), KHeader.Text("h-empty", "")];

    /// <summary>A base timestamp an hour ago, whole seconds.</summary>
    public static long RecentBaseTimestamp() => (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 3_600_000) / 1000 * 1000;

    /// <summary>
    /// A mix of shapes: binary keys and values with 0x00 bytes, null and empty keys, empty and
    /// null values, compressible large values, headers with binary, empty, null and duplicate
    /// names — each only where <paramref name="caps"/> allows it.
    /// </summary>
    public static List<OutRecord> Mixed(ClientCaps caps, int count, int seed, int partition, long? baseTimestamp = null)
    {
        var rng = new Random(seed);
        var list = new List<OutRecord>(count);
        for (var i = 0; i < count; i++)
        {
            byte[]? key = (i % 10) switch
            {
                1 => null,
                2 => [],
                _ => Bytes(rng, 1 + rng.Next(16), zeroFirst: i % 3 == 0),
            };
            byte[]? value = (i % 10) switch
            {
                3 => [],
                4 when caps.NullValue => null,
                5 => Compressible(rng, 2_000 + rng.Next(6_000), i),
                1 => Bytes(rng, 1 + rng.Next(200), zeroFirst: true),
                _ => Bytes(rng, rng.Next(200), zeroFirst: i % 2 == 0),
            };
            if (key is null && value is null && !caps.NullKeyAndNullValue) value = [0];
            if (caps.NullKeyAndNullValue && i % 37 == 36) (key, value) = (null, null);

            list.Add(new OutRecord
            {
                Partition = partition,
                Key = key,
                Value = value,
                Headers = caps.PerRecordHeaders ? MixedHeaders(caps, rng, i) : KcatHeaders,
                Timestamp = caps.Timestamps && baseTimestamp is { } b ? b + i * 10 : null,
            });
        }
        // kcat needs one invocation (-Z) per run of null values: keep them together at the end.
        return caps.PerRecordHeaders ? list : list.Where(r => r.Value is not null).Concat(list.Where(r => r.Value is null)).ToList();
    }

    private static List<KHeader> MixedHeaders(ClientCaps caps, Random rng, int i)
    {
        var h = new List<KHeader>();
        if (i % 4 == 0) return h;
        h.Add(new KHeader("trace-id", Encoding.ASCII.GetBytes($"t-{i:D6}")));
        h.Add(new KHeader("bin", Bytes(rng, 1 + rng.Next(12), zeroFirst: true)));
        if (i % 4 == 2) h.Add(new KHeader("empty", []));
        if (i % 4 == 3 && caps.NullHeaderValues) h.Add(new KHeader("null-value", null));
        if (i % 8 == 3 && caps.OrderedDuplicateHeaders) h.Add(new KHeader("trace-id", "dup"u8.ToArray()));
        if (i % 5 == 1) h.Add(new KHeader("ключ-ü", "ünïcödé ✓"u8.ToArray()));
        return h;
    }

    /// <summary>Hand-picked edge cases, each only where the producing client can express it.</summary>
    public static List<OutRecord> Shapes(ClientCaps caps, int partition)
    {
        var all256 = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var big = Bytes(new Random(7), 100_000, zeroFirst: true);
        var list = new List<OutRecord>
        {
            R(partition, "k0"u8.ToArray(), [0x00]),
            R(partition, null, [0x00, 0x01, 0x00]),
            R(partition, [], "empty key"u8.ToArray()),
            R(partition, "k3"u8.ToArray(), []),
            R(partition, [], []),
            R(partition, [0x00], all256),
            R(partition, all256, [0xff, 0x00, 0xff]),
            R(partition, "big"u8.ToArray(), big),
        };
        if (caps.NullValue) list.Add(R(partition, "tombstone"u8.ToArray(), null));
        if (caps.NullKeyAndNullValue) list.Add(R(partition, null, null));

        if (!caps.PerRecordHeaders)
            return list.Select(r => With(r, KcatHeaders)).ToList();

        var withHeaders = new List<OutRecord>
        {
            With(R(partition, "h1"u8.ToArray(), "v"u8.ToArray()), [new KHeader("bin", [0x00, 0x01, 0x00, 0xff])]),
            With(R(partition, "h2"u8.ToArray(), "v"u8.ToArray()), [new KHeader("empty", [])]),
            With(R(partition, "h3"u8.ToArray(), "v"u8.ToArray()), [new KHeader("", "empty name"u8.ToArray())]),
            With(R(partition, "h4"u8.ToArray(), null), [KHeader.Text("a", "1"), KHeader.Text("b", "2"), KHeader.Text("c", "3")]),
            With(R(partition, null, "v"u8.ToArray()), [KHeader.Text("ключ", "значение")]),
        };
        if (!caps.NullValue) withHeaders[3] = With(R(partition, "h4"u8.ToArray(), "v"u8.ToArray()), withHeaders[3].Headers);
        if (caps.NullHeaderValues)
            withHeaders.Add(With(R(partition, "h5"u8.ToArray(), "v"u8.ToArray()), [new KHeader("null", null), new KHeader("empty", [])]));
        if (caps.OrderedDuplicateHeaders)
            withHeaders.Add(With(R(partition, "h6"u8.ToArray(), "v"u8.ToArray()),
                [KHeader.Text("dup", "first"), KHeader.Text("other", "x"), KHeader.Text("dup", "second")]));
        else
            withHeaders.Add(With(R(partition, "h6"u8.ToArray(), "v"u8.ToArray()),
                [KHeader.Text("dup", "first"), KHeader.Text("dup", "second"), KHeader.Text("other", "x")]));
        list.AddRange(withHeaders);
        return list;
    }

    /// <summary>Plain text records "prefix-i" with key "k-i" for offset/position tests.</summary>
    public static List<OutRecord> Numbered(string prefix, int count, int partition, long? baseTimestamp = null, long stepMs = 1000) =>
        Enumerable.Range(0, count).Select(i => new OutRecord
        {
            Partition = partition,
            Key = Encoding.ASCII.GetBytes($"k-{i}"),
            Value = Encoding.ASCII.GetBytes($"{prefix}-{i:D5}"),
            Timestamp = baseTimestamp is { } b ? b + i * stepMs : null,
        }).ToList();

    private static OutRecord R(int p, byte[]? key, byte[]? value) => new() { Partition = p, Key = key, Value = value };

    private static OutRecord With(OutRecord r, IReadOnlyList<KHeader> headers) =>
        new() { Partition = r.Partition, Key = r.Key, Value = r.Value, Headers = headers, Timestamp = r.Timestamp };

    private static byte[] Bytes(Random rng, int n, bool zeroFirst)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        if (n > 0 && zeroFirst) b[0] = 0;
        if (n > 2) b[n / 2] = 0;
        return b;
    }

    private static byte[] Compressible(Random rng, int n, int i)
    {
        var sb = new StringBuilder(n + 64);
        while (sb.Length < n)
            sb.Append("record ").Append(i).Append(" lorem ipsum dolor sit amet ").Append(rng.Next(10)).Append('\n');
        var bytes = Encoding.ASCII.GetBytes(sb.ToString(0, n));
        bytes[n / 3] = 0;
        return bytes;
    }
}
