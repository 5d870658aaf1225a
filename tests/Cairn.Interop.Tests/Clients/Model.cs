using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cairn.Interop.Tests.Clients;

/// <summary>A record header; a null value is distinct from an empty one.</summary>
public sealed record KHeader(string Key, byte[]? Value)
{
    public static KHeader Text(string key, string? value) => new(key, value is null ? null : Encoding.UTF8.GetBytes(value));
    public override string ToString() => $"{Key}={Hex.Show(Value)}";
}

/// <summary>A record to produce.</summary>
public sealed class OutRecord
{
    public int Partition { get; init; }
    public byte[]? Key { get; init; }
    public byte[]? Value { get; init; }
    public IReadOnlyList<KHeader> Headers { get; init; } = [];
    /// <summary>Explicit create timestamp (ms since epoch), or null to let the client choose.</summary>
    public long? Timestamp { get; init; }

    public override string ToString() =>
        $"p{Partition} key={Hex.Show(Key)} value={Hex.Show(Value)} headers=[{string.Join(", ", Headers)}] ts={Timestamp}";

    internal string ToJsonLine()
    {
        var o = new JsonObject
        {
            ["partition"] = Partition,
            ["key"] = Hex.Encode(Key),
            ["value"] = Hex.Encode(Value),
            ["headers"] = new JsonArray(Headers.Select(h => (JsonNode)new JsonArray(h.Key, Hex.Encode(h.Value))).ToArray()),
            ["timestamp"] = Timestamp,
        };
        return o.ToJsonString();
    }
}

/// <summary>A consumed record as a client reported it.</summary>
public sealed class KRecord
{
    public int Partition { get; init; }
    public long Offset { get; init; }
    public long Timestamp { get; init; }
    public byte[]? Key { get; init; }
    public byte[]? Value { get; init; }
    public IReadOnlyList<KHeader> Headers { get; init; } = [];

    /// <summary>kcat only: headers as kcat prints them (name=value CSV, NULL for null, cut at NUL).</summary>
    public byte[]? HeadersRendered { get; init; }

    public override string ToString() =>
        $"p{Partition}@{Offset} ts={Timestamp} key={Hex.Show(Key)} value={Hex.Show(Value)} headers=[" +
        (HeadersRendered is null ? string.Join(", ", Headers) : "kcat:" + Encoding.UTF8.GetString(HeadersRendered)) + "]";

    internal static KRecord FromJson(JsonElement e) => new()
    {
        Partition = e.GetProperty("partition").GetInt32(),
        Offset = e.GetProperty("offset").GetInt64(),
        Timestamp = e.TryGetProperty("timestamp", out var ts) && ts.ValueKind == JsonValueKind.Number ? ts.GetInt64() : -1,
        Key = Hex.Decode(e.GetProperty("key")),
        Value = Hex.Decode(e.GetProperty("value")),
        Headers = e.TryGetProperty("headers", out var hs)
            ? hs.EnumerateArray().Select(h => new KHeader(h[0].GetString()!, Hex.Decode(h[1]))).ToList()
            : [],
    };
}

/// <summary>An acknowledged record: its index in the produced list, partition and offset.</summary>
public sealed record Ack(int Index, int Partition, long Offset);

/// <summary>Where a consumer starts.</summary>
public abstract record StartAt
{
    public static readonly StartAt Earliest = new EarliestStart();
    public static readonly StartAt Latest = new LatestStart();
    public static StartAt Offset(long offset) => new OffsetStart(offset);
    public static StartAt Timestamp(long ms) => new TimestampStart(ms);

    public abstract string Spec { get; }
    public override string ToString() => Spec;

    private sealed record EarliestStart : StartAt { public override string Spec => "earliest"; }
    private sealed record LatestStart : StartAt { public override string Spec => "latest"; }
    public sealed record OffsetStart(long Value) : StartAt { public override string Spec => $"offset:{Value}"; }
    public sealed record TimestampStart(long Ms) : StartAt { public override string Spec => $"timestamp:{Ms}"; }
}

public sealed class ProduceResult
{
    /// <summary>Per-record acknowledgements, in input order; null when the client does not report offsets (kcat).</summary>
    public IReadOnlyList<Ack>? Acks { get; init; }
    public required string Diagnostics { get; init; }
}

public sealed class ConsumeResult
{
    public required IReadOnlyList<KRecord> Records { get; init; }
    public bool TimedOut { get; init; }
    public required string Diagnostics { get; init; }
}

public static class Hex
{
    public static string? Encode(byte[]? b) => b is null ? null : Convert.ToHexStringLower(b);

    public static byte[]? Decode(JsonElement e) =>
        e.ValueKind == JsonValueKind.Null ? null : Convert.FromHexString(e.GetString()!);

    /// <summary>Short human-readable form: null, "" or hex (truncated).</summary>
    public static string Show(byte[]? b)
    {
        if (b is null) return "null";
        if (b.Length == 0) return "\"\"";
        var hex = Convert.ToHexStringLower(b.AsSpan(0, Math.Min(b.Length, 24)));
        return b.Length > 24 ? $"{hex}…({b.Length}B)" : hex;
    }
}
