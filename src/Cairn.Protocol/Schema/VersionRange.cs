namespace Cairn.Protocol.Schema;

/// <summary>An inclusive range of message versions, written as Kafka does: "3+", "0-7", "5" or "none".</summary>
public readonly record struct VersionRange(short Min, short Max)
{
    public static readonly VersionRange None = new(1, 0);
    public bool IsEmpty => Min > Max;
    public bool Contains(short version) => version >= Min && version <= Max;

    public static VersionRange Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text == "none") return None;
        if (text.EndsWith('+')) return new(short.Parse(text[..^1]), short.MaxValue);
        int dash = text.IndexOf('-');
        if (dash > 0) return new(short.Parse(text[..dash]), short.Parse(text[(dash + 1)..]));
        var v = short.Parse(text);
        return new(v, v);
    }

    public VersionRange Intersect(VersionRange other) => new(Math.Max(Min, other.Min), Math.Min(Max, other.Max));

    public override string ToString() => IsEmpty ? "none" : Max == short.MaxValue ? $"{Min}+" : Min == Max ? $"{Min}" : $"{Min}-{Max}";
}
