using System.Globalization;
using System.Text.RegularExpressions;
using Cairn.Admin.Model;

namespace Cairn.Cli.Tool;

/// <summary>Times and durations as the produce and consume options take them; bad input is a usage error naming the option.</summary>
internal static partial class CliValues
{
    /// <summary>Milliseconds since the epoch (<c>1795000000000</c> or <c>@1795000000000</c>) or an ISO-8601 date-time.</summary>
    public static DateTimeOffset ParseTimestamp(string text, string option)
    {
        var t = text.Trim();
        var digits = t.StartsWith('@') ? t[1..] : t;
        if (digits.Length > 0 && digits.All(char.IsAsciiDigit))
        {
            if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) || ms > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())
                throw new UsageException($"{option}: {t} milliseconds is out of range");
            return DateTimeOffset.FromUnixTimeMilliseconds(ms);
        }
        try
        {
            return OffsetResetSpec.ParseDatetime(t);
        }
        catch (FormatException)
        {
            throw new UsageException($"{option}: '{text}' is not a timestamp; use milliseconds since the epoch or an ISO-8601 date-time such as 2026-11-20T10:00:00Z");
        }
    }

    [GeneratedRegex(@"^(?<n>\d+(\.\d+)?)\s*(?<unit>ms|s|m|h|d)?$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex SimpleDuration();

    /// <summary>A positive duration: <c>500ms</c>, <c>5s</c>, <c>2m</c>, <c>1h</c>, <c>1d</c>, a bare number of seconds, or ISO-8601 (<c>PT5S</c>).</summary>
    public static TimeSpan ParseDuration(string text, string option)
    {
        var t = text.Trim();
        TimeSpan value;
        var m = SimpleDuration().Match(t);
        if (m.Success)
        {
            double n = double.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture);
            double ms = n * (m.Groups["unit"].Value.ToLowerInvariant() switch { "ms" => 1, "m" => 60_000, "h" => 3_600_000, "d" => 86_400_000, _ => 1000 });
            if (ms > TimeSpan.MaxValue.TotalMilliseconds) throw new UsageException($"{option}: '{text}' is too long");
            value = TimeSpan.FromMilliseconds(ms);
        }
        else if (t.StartsWith('P') || t.StartsWith('p'))
        {
            try { value = OffsetResetSpec.ParseDuration(t); }
            catch (FormatException) { throw BadDuration(text, option); }
        }
        else throw BadDuration(text, option);
        if (value <= TimeSpan.Zero) throw new UsageException($"{option} must be longer than zero, got '{text}'");
        return value;
    }

    private static UsageException BadDuration(string text, string option) =>
        new($"{option}: '{text}' is not a duration; use e.g. 500ms, 5s, 2m, 1h or PT30S");
}
