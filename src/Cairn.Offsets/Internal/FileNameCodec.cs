using System.Security.Cryptography;
using System.Text;

namespace Cairn.Offsets.Internal;

/// <summary>
/// Turns arbitrary names (source names, consumer names) into portable, collision-free file names: lower-case ASCII
/// letters, digits, '-' and '_' stay as they are, '.' too except in first position; every other UTF-8 byte becomes
/// %XX (upper-case hex), so names differing only in case stay distinct even on case-insensitive file systems.
/// Names longer than <see cref="MaxLength"/> after encoding keep a prefix and append '~' and a SHA-256 digest.
/// The mapping is one-way in the long case, so stores keep the original name inside the file.
/// </summary>
internal static class FileNameCodec
{
    public const int MaxLength = 180;
    private const int PrefixLength = 140;

    public static string Encode(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var bytes = Encoding.UTF8.GetBytes(name);
        var sb = new StringBuilder(bytes.Length + 8);
        for (int i = 0; i < bytes.Length; i++)
        {
            byte b = bytes[i];
            bool plain = b is >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'-' or (byte)'_'
                || (b == (byte)'.' && i > 0);
            if (plain) sb.Append((char)b);
            else sb.Append('%').Append(b.ToString("X2"));
        }
        if (sb.Length == 0) sb.Append("%00"); // the empty name; never produced by a non-empty one
        if (sb.Length <= MaxLength) return sb.ToString();

        int cut = PrefixLength;
        // Do not cut a %XX escape in half.
        if (sb[cut - 1] == '%') cut -= 1;
        else if (sb[cut - 2] == '%') cut -= 2;
        var digest = Convert.ToHexString(SHA256.HashData(bytes), 0, 16).ToLowerInvariant();
        return sb.ToString(0, cut) + "~" + digest;
    }
}
