using System.Globalization;
using System.Text;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary>How keys and values are printed: as they are, or encoded for binary data.</summary>
internal enum BinaryEncoding { Text, Hex, Base64 }

/// <summary>
/// kcat-style output format: <c>%t</c> topic, <c>%p</c> partition, <c>%o</c> offset, <c>%k</c> key, <c>%K</c> key length
/// (-1 for null), <c>%v</c> or <c>%s</c> value, <c>%V</c> or <c>%S</c> value length, <c>%T</c> timestamp (ms since the epoch),
/// <c>%D</c> timestamp as ISO-8601 UTC, <c>%h</c> headers (name=value,...), <c>%%</c> a percent sign; escapes
/// <c>\n \r \t \\ \0 \xHH</c>. Keys and values are written as they are (bytes) or hex/base64 encoded, everything else as UTF-8 text.
/// </summary>
internal sealed class RecordFormat
{
    private enum Kind { Literal, Topic, Partition, Offset, Key, KeyLength, Value, ValueLength, Timestamp, IsoTimestamp, Headers }

    private readonly List<(Kind Kind, byte[]? Literal)> _parts;
    private readonly BinaryEncoding _keyEncoding;
    private readonly BinaryEncoding _valueEncoding;

    private RecordFormat(List<(Kind, byte[]?)> parts, BinaryEncoding keyEncoding, BinaryEncoding valueEncoding)
    {
        _parts = parts;
        _keyEncoding = keyEncoding;
        _valueEncoding = valueEncoding;
    }

    public const string Help = "%t topic, %p partition, %o offset, %k key, %K key length, %v (or %s) value, %V (or %S) value length, " +
        "%T timestamp in ms, %D timestamp as ISO-8601 UTC (2026-11-20T10:00:00.000Z), %h headers as name=value,...; escapes " + Escapes.Help;

    public static RecordFormat Parse(string format, BinaryEncoding keyEncoding = BinaryEncoding.Text, BinaryEncoding valueEncoding = BinaryEncoding.Text)
    {
        var parts = new List<(Kind, byte[]?)>();
        var literal = new List<byte>();
        var text = new StringBuilder();
        void FlushText()
        {
            if (text.Length > 0) { literal.AddRange(Encoding.UTF8.GetBytes(text.ToString())); text.Clear(); }
        }
        void FlushLiteral()
        {
            FlushText();
            if (literal.Count > 0) { parts.Add((Kind.Literal, literal.ToArray())); literal.Clear(); }
        }
        void Add(Kind kind)
        {
            FlushLiteral();
            parts.Add((kind, null));
        }
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
                    case 'D': Add(Kind.IsoTimestamp); break;
                    case 'h': Add(Kind.Headers); break;
                    case '%': text.Append('%'); break;
                    default: throw new UsageException($"--format: unknown field '%{f}' (fields: {Help})");
                }
            }
            else if (c == '\\')
            {
                FlushText();
                i = Escapes.AppendEscape(format, i, literal);
            }
            else text.Append(c);
        }
        FlushLiteral();
        return new RecordFormat(parts, keyEncoding, valueEncoding);
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
                case Kind.Key: if (r.Key is { } k) Data(output, k.Span, _keyEncoding); break;
                case Kind.KeyLength: Text(output, (r.Key?.Length ?? -1).ToString(CultureInfo.InvariantCulture)); break;
                case Kind.Value: if (r.Value is { } v) Data(output, v.Span, _valueEncoding); break;
                case Kind.ValueLength: Text(output, (r.Value?.Length ?? -1).ToString(CultureInfo.InvariantCulture)); break;
                case Kind.Timestamp: Text(output, r.Timestamp.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)); break;
                case Kind.IsoTimestamp: Text(output, FormatIso(r.Timestamp)); break;
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

    /// <summary>A timestamp as ISO-8601 in UTC with milliseconds (the precision of Kafka timestamps).</summary>
    public static string FormatIso(DateTimeOffset timestamp) =>
        timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>A key or value as a string: UTF-8 text (invalid bytes replaced), hex or base64.</summary>
    public static string Encode(ReadOnlySpan<byte> data, BinaryEncoding encoding) => encoding switch
    {
        BinaryEncoding.Hex => Convert.ToHexStringLower(data),
        BinaryEncoding.Base64 => Convert.ToBase64String(data),
        _ => Encoding.UTF8.GetString(data),
    };

    public static BinaryEncoding ParseEncoding(string? text, string option) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "text" => BinaryEncoding.Text,
        "hex" => BinaryEncoding.Hex,
        "base64" => BinaryEncoding.Base64,
        _ => throw new UsageException($"{option} must be text, hex or base64, got '{text}'"),
    };

    private static void Data(Stream output, ReadOnlySpan<byte> data, BinaryEncoding encoding)
    {
        if (encoding == BinaryEncoding.Text) output.Write(data);
        else Text(output, Encode(data, encoding));
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
