using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Cairn.Offsets;

public enum OffsetKind
{
    /// <summary>The oldest position a source still has.</summary>
    Earliest,
    /// <summary>The position after the newest record: only what arrives from now on.</summary>
    Latest,
    /// <summary>An exact sequence number, such as a Kafka offset.</summary>
    Sequence,
    /// <summary>The first record at or after a point in time.</summary>
    Timestamp,
    /// <summary>A position only its source understands (a file cursor, a change-stream token).</summary>
    Custom,
}

/// <summary>
/// A position in a stream. Values compare by content; sequences order among themselves, and so do
/// timestamps, with Earliest before and Latest after every other position. The text form (ToString)
/// round-trips through <see cref="Parse"/>: "earliest", "latest", "seq:42", "ts:2026-11-20T10:00:00.0000000+00:00",
/// "custom:anything".
/// </summary>
public readonly struct Offset : IEquatable<Offset>, IComparable<Offset>
{
    private readonly long _value;
    private readonly string? _custom;

    private Offset(OffsetKind kind, long value, string? custom)
    {
        Kind = kind;
        _value = value;
        _custom = custom;
    }

    public OffsetKind Kind { get; }

    public static Offset Earliest { get; } = new(OffsetKind.Earliest, 0, null);
    public static Offset Latest { get; } = new(OffsetKind.Latest, 0, null);

    /// <summary>An exact sequence number (a Kafka offset: the next record to read).</summary>
    public static Offset Sequence(long value) =>
        value >= 0 ? new(OffsetKind.Sequence, value, null) : throw new InvalidOffsetException($"a sequence offset cannot be negative ({value})");

    public static Offset Timestamp(DateTimeOffset time) => new(OffsetKind.Timestamp, time.UtcTicks, null);

    public static Offset Custom(string value) =>
        new(OffsetKind.Custom, 0, value ?? throw new ArgumentNullException(nameof(value)));

    public bool IsSequence => Kind == OffsetKind.Sequence;

    /// <summary>The sequence number; throws for other kinds.</summary>
    public long SequenceValue => Kind == OffsetKind.Sequence ? _value : throw new InvalidOffsetException($"{this} is not a sequence offset");

    public DateTimeOffset TimestampValue =>
        Kind == OffsetKind.Timestamp ? new DateTimeOffset(_value, TimeSpan.Zero) : throw new InvalidOffsetException($"{this} is not a timestamp offset");

    public string CustomValue => Kind == OffsetKind.Custom ? _custom! : throw new InvalidOffsetException($"{this} is not a custom offset");

    /// <summary>The position after this one, for sequences (the offset to commit after processing a record).</summary>
    public Offset Next() => Kind == OffsetKind.Sequence
        ? new Offset(OffsetKind.Sequence, checked(_value + 1), null)
        : throw new InvalidOffsetException($"Next() is defined for sequence offsets only, not {this}");

    public bool Equals(Offset other) => Kind == other.Kind && _value == other._value && string.Equals(_custom, other._custom, StringComparison.Ordinal);
    public override bool Equals(object? obj) => obj is Offset o && Equals(o);
    public override int GetHashCode() => HashCode.Combine(Kind, _value, _custom);
    public static bool operator ==(Offset a, Offset b) => a.Equals(b);
    public static bool operator !=(Offset a, Offset b) => !a.Equals(b);

    /// <summary>Whether two offsets can be ordered: same kind (custom offsets only when equal), or either is Earliest/Latest.</summary>
    public static bool AreComparable(Offset a, Offset b) =>
        a.Kind is OffsetKind.Earliest or OffsetKind.Latest || b.Kind is OffsetKind.Earliest or OffsetKind.Latest ||
        (a.Kind == b.Kind && (a.Kind != OffsetKind.Custom || a.Equals(b)));

    /// <summary>Orders offsets where that is meaningful; throws <see cref="InvalidOffsetException"/> otherwise.</summary>
    public int CompareTo(Offset other)
    {
        if (!AreComparable(this, other)) throw new InvalidOffsetException($"{this} and {other} cannot be ordered");
        int rank = Rank(Kind).CompareTo(Rank(other.Kind));
        if (rank != 0 || Kind is OffsetKind.Earliest or OffsetKind.Latest or OffsetKind.Custom) return rank;
        return _value.CompareTo(other._value);
    }

    private static int Rank(OffsetKind kind) => kind switch { OffsetKind.Earliest => 0, OffsetKind.Latest => 2, _ => 1 };

    public static bool operator <(Offset a, Offset b) => a.CompareTo(b) < 0;
    public static bool operator >(Offset a, Offset b) => a.CompareTo(b) > 0;
    public static bool operator <=(Offset a, Offset b) => a.CompareTo(b) <= 0;
    public static bool operator >=(Offset a, Offset b) => a.CompareTo(b) >= 0;

    public override string ToString() => Kind switch
    {
        OffsetKind.Earliest => "earliest",
        OffsetKind.Latest => "latest",
        OffsetKind.Sequence => "seq:" + _value.ToString(CultureInfo.InvariantCulture),
        OffsetKind.Timestamp => "ts:" + TimestampValue.ToString("O", CultureInfo.InvariantCulture),
        _ => "custom:" + _custom,
    };

    public static Offset Parse(string text) =>
        TryParse(text, out var offset) ? offset : throw new InvalidOffsetException($"'{text}' is not an offset (earliest, latest, seq:N, ts:ISO-8601, custom:TEXT)");

    public static bool TryParse([NotNullWhen(true)] string? text, out Offset offset)
    {
        offset = default;
        if (text is null) return false;
        if (text == "earliest") { offset = Earliest; return true; }
        if (text == "latest") { offset = Latest; return true; }
        if (text.StartsWith("seq:", StringComparison.Ordinal))
        {
            if (!long.TryParse(text.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return false;
            offset = Sequence(n);
            return true;
        }
        if (text.StartsWith("ts:", StringComparison.Ordinal))
        {
            if (!DateTimeOffset.TryParseExact(text.AsSpan(3), "O", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t)) return false;
            offset = Timestamp(t);
            return true;
        }
        if (text.StartsWith("custom:", StringComparison.Ordinal))
        {
            offset = Custom(text[7..]);
            return true;
        }
        return false;
    }
}

