using System.Globalization;
using System.Text;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary>
/// kcat-style output format: <c>%t</c> topic, <c>%p</c> partition, <c>%o</c> offset, <c>%k</c> key, <c>%K</c> key length
/// (-1 for null), <c>%v</c> or <c>%s</c> value, <c>%V</c> or <c>%S</c> value length, <c>%T</c> timestamp (ms since the epoch),
/// <c>%h</c> headers (name=value,...), <c>%%</c> a percent sign; escapes <c>\n \r \t \\ \0 \xHH</c>.
/// Keys and values are written as they are (bytes), everything else as UTF-8 text.
/// </summary>
internal sealed class RecordFormat
{
    private enum Kind { Literal, Topic, Partition, Offset, Key, KeyLength, Value, ValueLength, Timestamp, Headers }

    private readonly List<(Kind Kind, byte[]? Literal)> _parts;

    private RecordFormat(List<(Kind, byte[]?)> parts) => _parts = parts;

    public const string Help = "%t topic, %p partition, %o offset, %k key, %K key length, %v (or %s) value, %V (or %S) value length, " +
        "%T timestamp in ms, %h headers as name=value,...; escapes \\n \\t \\r \\\\ \\xHH";

    public static RecordFormat Parse(string format)
    {
        var parts = new List<(Kind, byte[]?)>();
        var literal = new List<byte>();
        void Flush()
        {
            if (literal.Count > 0) { parts.Add((Kind.Literal, literal.ToArray())); literal.Clear(); }
        }
        void Add(Kind kind) { Flush(); parts.Add((kind, null)); }
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c == '%' && i + 1 < format.Length)
            {
                char f = format[++i];
                switch (f)
                {
                    case 't': Add(Kind.Topic); break;
                    case 'p': Add(Kind.Partition); break;
                    case 'o': Add(Kind.Offset); break;
                    case 'k': Add(Kind.Key); break;
                    case 'K': Add(Kind.KeyLength); break;
                    case 'v' or 's': Add(Kind.Value); break;
                    case 'V' or 'S': Add(Kind.ValueLength); break;
                    case 'T': Add(Kind.Timestamp); break;
                    case 'h': Add(Kind.Headers); break;
                    case '%': literal.Add((byte)'%'); break;
                    default: throw new UsageException($"--format: unknown field '%{f}' (fields: {Help})");
                }
            }
            else if (c == '\\' && i + 1 < format.Length)
            {
                char e = format[++i];
                switch (e)
                {
                    case 'n': literal.Add((byte)'\n'); break;
                    case 'r': literal.Add((byte)'\r'); break;
                    case 't': literal.Add((byte)'\t'); break;
                    case '0': literal.Add(0); break;
                    case '\\': literal.Add((byte)'\\'); break;
                    case 'x' when i + 2 < format.Length && byte.TryParse(format.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b):
                        literal.Add(b);
                        i += 2;
                        break;
                    default: literal.AddRange(Encoding.UTF8.GetBytes("\\" + e)); break;
                }
            }
            else literal.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
        Flush();
        return new RecordFormat(parts);
    }

    public void Write(Stream output, ConsumeResult r)
    {
        foreach (var (kind, literal) in _parts)
        {
            switch (kind)
            {
                case Kind.Literal: output.Write(literal); break;
                case Kind.Topic: Text(output, r.Topic); break;
                case Kind.Partition: Text(output, r.Partition.ToString(CultureInfo.InvariantCulture)); break;
                case Kind.Offset: Text(output, r.Offset.ToString(CultureInfo.InvariantCulture)); break;
                case Kind.Key: if (r.Key is { } k) output.Write(k.Span); break;
                case Kind.KeyLength: Text(output, (r.Key?.Length ?? -1).ToString(CultureInfo.InvariantCulture)); break;
                case Kind.Value: if (r.Value is { } v) output.Write(v.Span); break;
                case Kind.ValueLength: Text(output, (r.Value?.Length ?? -1).ToString(CultureInfo.InvariantCulture)); break;
                case Kind.Timestamp: Text(output, r.Timestamp.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)); break;
                case Kind.Headers:
                    for (int i = 0; i < r.Headers.Count; i++)
                    {
                        if (i > 0) output.WriteByte((byte)',');
                        Text(output, r.Headers[i].Key);
                        output.WriteByte((byte)'=');
                        if (r.Headers[i].Value is { } hv) output.Write(hv.Span);
                        else Text(output, "NULL");
                    }
                    break;
            }
        }
    }

    private static void Text(Stream output, string s)
    {
        Span<byte> buffer = stackalloc byte[256];
        if (Encoding.UTF8.GetMaxByteCount(s.Length) <= buffer.Length)
        {
            int n = Encoding.UTF8.GetBytes(s, buffer);
            output.Write(buffer[..n]);
        }
        else output.Write(Encoding.UTF8.GetBytes(s));
    }
}
