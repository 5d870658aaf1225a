using System.Globalization;
using System.Text;

namespace Cairn.Cli.Tool;

/// <summary>Backslash escapes as kcat reads them in formats and delimiters: <c>\n \r \t \0 \\ \xHH</c>.</summary>
internal static class Escapes
{
    public const string Help = "\\n \\r \\t \\0 \\\\ \\xHH";

    /// <summary>
    /// Appends the escape starting at the backslash <c>text[i]</c> and returns the index of its last character.
    /// An unknown escape is kept as written.
    /// </summary>
    public static int AppendEscape(string text, int i, List<byte> into)
    {
        if (i + 1 >= text.Length)
        {
            into.Add((byte)'\\');
            return i;
        }
        char e = text[++i];
        switch (e)
        {
            case 'n': into.Add((byte)'\n'); break;
            case 'r': into.Add((byte)'\r'); break;
            case 't': into.Add((byte)'\t'); break;
            case '0': into.Add(0); break;
            case '\\': into.Add((byte)'\\'); break;
            case 'x' when i + 2 < text.Length && byte.TryParse(text.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b):
                into.Add(b);
                i += 2;
                break;
            default: into.AddRange(Encoding.UTF8.GetBytes("\\" + e)); break;
        }
        return i;
    }

    /// <summary>The bytes of <paramref name="text"/> (UTF-8) with its escapes resolved.</summary>
    public static byte[] Unescape(string text)
    {
        var bytes = new List<byte>(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\') i = AppendEscape(text, i, bytes);
            else if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length)
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text.Substring(i, 2)));
                i++;
            }
            else bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
        }
        return [.. bytes];
    }
}
