using System.Text;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Clients;

/// <summary>A produced record and the offset it must be found at.</summary>
public sealed record Expected(OutRecord Record, long Offset);

/// <summary>Byte-for-byte comparison of what was produced with what a client consumed.</summary>
public static class RecordAssert
{
    /// <summary>
    /// Pairs records with offsets: the producer's acknowledged offsets if it reported them,
    /// else consecutive offsets per partition from <paramref name="firstOffset"/>.
    /// Also checks reported offsets are consecutive from <paramref name="firstOffset"/>.
    /// </summary>
    public static List<Expected> Expect(IReadOnlyList<OutRecord> records, ProduceResult produced, long firstOffset = 0)
    {
        var next = new Dictionary<int, long>();
        var list = new List<Expected>(records.Count);
        for (var i = 0; i < records.Count; i++)
        {
            var r = records[i];
            var want = next.TryGetValue(r.Partition, out var n) ? n : firstOffset;
            next[r.Partition] = want + 1;
            if (produced.Acks is { } acks)
            {
                var ack = acks[i];
                if (ack.Index != i || ack.Partition != r.Partition || ack.Offset != want)
                    throw new InteropFailureException(
                        $"Producer acknowledged record {i} at partition {ack.Partition} offset {ack.Offset}, expected partition {r.Partition} offset {want} " +
                        $"(offsets must be consecutive from {firstOffset}).\nAcks: {string.Join(", ", acks.Take(40).Select(a => $"{a.Index}:p{a.Partition}@{a.Offset}"))}");
            }
            list.Add(new Expected(r, want));
        }
        return list;
    }

    /// <summary>Returns human-readable mismatches (empty when everything matches).</summary>
    public static List<string> Compare(string label, IReadOnlyList<Expected> expected, ConsumeResult actual, IKafkaClient consumer,
        bool compareTimestamps = true, int maxMismatches = 8)
    {
        var problems = new List<string>();
        void Problem(string s)
        {
            if (problems.Count < maxMismatches) problems.Add($"[{label}, consumed by {consumer.Name}] {s}");
            else if (problems.Count == maxMismatches) problems.Add($"[{label}, consumed by {consumer.Name}] … more mismatches omitted");
        }

        var wantByPartition = expected.GroupBy(e => e.Record.Partition).ToDictionary(g => g.Key, g => g.ToList());
        var gotByPartition = actual.Records.GroupBy(r => r.Partition).ToDictionary(g => g.Key, g => g.ToList());

        foreach (var p in gotByPartition.Keys.Where(p => !wantByPartition.ContainsKey(p)))
            Problem($"partition {p}: {gotByPartition[p].Count} unexpected records, first {gotByPartition[p][0]}");

        foreach (var (p, want) in wantByPartition.OrderBy(kv => kv.Key))
        {
            var got = gotByPartition.TryGetValue(p, out var g) ? g : [];
            for (var i = 1; i < got.Count; i++)
                if (got[i].Offset <= got[i - 1].Offset)
                {
                    Problem($"partition {p}: offsets not increasing: {got[i - 1].Offset} then {got[i].Offset} (duplicate or reordered delivery)");
                    break;
                }
            if (got.Count != want.Count)
                Problem($"partition {p}: consumed {got.Count} records, expected {want.Count}" +
                        (actual.TimedOut ? " (consumer timed out)" : "") +
                        (got.Count > 0 ? $"; consumed offsets {got[0].Offset}..{got[^1].Offset}" : ""));
            for (var i = 0; i < Math.Min(got.Count, want.Count); i++)
            {
                var e = want[i];
                var a = got[i];
                var diffs = Differences(e, a, consumer, compareTimestamps);
                if (diffs.Count > 0)
                    Problem($"partition {p} record #{i}: {string.Join("; ", diffs)}\n      expected @{e.Offset} {e.Record}\n      actual   {a}");
            }
        }
        if (problems.Count > 0)
            problems.Add($"[{label}, consumed by {consumer.Name}] consumer output:\n{Trim(actual.Diagnostics, 4000)}");
        return problems;
    }

    private static List<string> Differences(Expected e, KRecord a, IKafkaClient consumer, bool compareTimestamps)
    {
        var d = new List<string>();
        if (a.Offset != e.Offset) d.Add($"offset {a.Offset} != {e.Offset}");
        if (!Same(a.Key, e.Record.Key)) d.Add($"key {Hex.Show(a.Key)} != {Hex.Show(e.Record.Key)}");
        if (!Same(a.Value, e.Record.Value)) d.Add($"value {Hex.Show(a.Value)} != {Hex.Show(e.Record.Value)}");
        if (compareTimestamps && e.Record.Timestamp is { } ts && a.Timestamp != ts) d.Add($"timestamp {a.Timestamp} != {ts}");

        if (consumer.Caps.ExactHeadersOnConsume)
        {
            var want = consumer.Caps.OrderedDuplicateHeaders ? e.Record.Headers.ToList() : GroupByName(e.Record.Headers);
            if (want.Count != a.Headers.Count || want.Zip(a.Headers).Any(p => p.First.Key != p.Second.Key || !Same(p.First.Value, p.Second.Value)))
                d.Add($"headers [{string.Join(", ", a.Headers)}] != [{string.Join(", ", want)}]");
        }
        else
        {
            var want = KcatClient.RenderHeaders(e.Record.Headers);
            if (!Same(a.HeadersRendered, want))
                d.Add($"headers (as kcat prints them) '{Printable(a.HeadersRendered)}' != '{Printable(want)}'");
        }
        return d;
    }

    /// <summary>kafkajs reports headers as an object: same-name values grouped at the name's first position.</summary>
    public static List<KHeader> GroupByName(IReadOnlyList<KHeader> headers) =>
        headers.Select((h, i) => (h, i)).GroupBy(x => x.h.Key).OrderBy(g => g.Min(x => x.i)).SelectMany(g => g.Select(x => x.h)).ToList();

    public static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    public static void NoProblems(IReadOnlyCollection<string> problems, string? context = null)
    {
        if (problems.Count == 0) return;
        var sb = new StringBuilder();
        sb.AppendLine($"{problems.Count} problem(s){(context is null ? "" : " — " + context)}:");
        foreach (var p in problems) sb.AppendLine(p);
        throw new InteropFailureException(sb.ToString());
    }

    private static string Printable(byte[]? b) =>
        b is null ? "(none)" : new string(Encoding.UTF8.GetString(b).Select(c => char.IsControl(c) ? '·' : c).ToArray());

    private static string Trim(string s, int max) => s.Length <= max ? s : "…" + s[^max..];
}
