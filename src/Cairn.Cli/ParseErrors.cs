using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;

namespace Cairn.Cli;

/// <summary>
/// System.CommandLine's parse errors for people: a value that does not convert is reported with the .NET type's
/// name ("as expected type 'System.Nullable`1[System.Int32]'"); this says what was expected instead
/// ("--partitions: 'abc' is not a whole number").
/// </summary>
internal static partial class ParseErrors
{
    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*?)' (?:for (?:option|command) '(?<name>[^']*)' )?as expected type '(?<type>[^']*)'\.")]
    private static partial Regex CannotParse();

    /// <summary>The message to show for <paramref name="error"/>.</summary>
    public static string Describe(ParseError error)
    {
        var (name, type) = error.SymbolResult switch
        {
            OptionResult o => (o.Option.Name, o.Option.ValueType),
            ArgumentResult a => ($"<{a.Argument.Name}>", a.Argument.ValueType),
            _ => ((string?)null, (Type?)null),
        };
        return Rewrite(error.Message, name, type);
    }

    /// <summary>
    /// Rewrites a "Cannot parse argument" message; other messages are returned as they are. <paramref name="symbol"/> and
    /// <paramref name="valueType"/> come from the option or argument when known (the message's own are used otherwise).
    /// </summary>
    public static string Rewrite(string message, string? symbol, Type? valueType)
    {
        var m = CannotParse().Match(message);
        if (!m.Success) return message;
        string value = m.Groups["value"].Value;
        string name = symbol ?? (m.Groups["name"].Success ? m.Groups["name"].Value : "argument");
        var type = valueType ?? Type.GetType(m.Groups["type"].Value);
        return $"{name}: '{value}' {Expected(value, type, m.Groups["type"].Value)}";
    }

    private static string Expected(string value, Type? type, string typeName)
    {
        if (type is not null)
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (type.IsArray) type = type.GetElementType()!;
            else if (type.IsGenericType && type.GetGenericArguments() is [var element] && typeof(System.Collections.IEnumerable).IsAssignableFrom(type)) type = element;
        }
        if (type is null)
        {
            // The type's name as System.CommandLine printed it, when the type itself is not at hand.
            foreach (var (token, known) in new (string, Type)[]
            {
                ("Int16", typeof(short)), ("Int32", typeof(int)), ("Int64", typeof(long)), ("Double", typeof(double)),
                ("TimeSpan", typeof(TimeSpan)), ("Boolean", typeof(bool)), ("FileInfo", typeof(FileInfo)),
            })
                if (typeName.Contains(token, StringComparison.Ordinal)) { type = known; break; }
        }
        if (type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte) || type == typeof(sbyte)
            || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort))
        {
            if (!BigInteger.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)) return "is not a whole number";
            var (min, max) = Range(type);
            return $"is out of range ({min} to {max})";
        }
        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal)) return "is not a number";
        if (type == typeof(TimeSpan)) return "is not a duration (e.g. 00:00:30 for 30 seconds)";
        if (type == typeof(bool)) return "is not true or false";
        if (type == typeof(DateTime) || type == typeof(DateTimeOffset)) return "is not a date and time (ISO-8601, e.g. 2026-01-31T14:00:00)";
        if (type == typeof(FileInfo) || type == typeof(DirectoryInfo) || type == typeof(FileSystemInfo)) return "is not a valid path";
        if (type == typeof(Guid)) return "is not a UUID";
        if (type is { IsEnum: true }) return "is not one of " + string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant()));
        return "is not a valid value";
    }

    private static (string Min, string Max) Range(Type type) => type switch
    {
        _ when type == typeof(short) => (short.MinValue.ToString(CultureInfo.InvariantCulture), short.MaxValue.ToString(CultureInfo.InvariantCulture)),
        _ when type == typeof(long) => (long.MinValue.ToString(CultureInfo.InvariantCulture), long.MaxValue.ToString(CultureInfo.InvariantCulture)),
        _ when type == typeof(byte) => ("0", byte.MaxValue.ToString(CultureInfo.InvariantCulture)),
        _ when type == typeof(sbyte) => (sbyte.MinValue.ToString(CultureInfo.InvariantCulture), sbyte.MaxValue.ToString(CultureInfo.InvariantCulture)),
        _ when type == typeof(uint) => ("0", uint.MaxValue.ToString(CultureInfo.InvariantCulture)),
        _ when type == typeof(ulong) => ("0", ulong.MaxValue.ToString(CultureInfo.InvariantCulture)),
        _ when type == typeof(ushort) => ("0", ushort.MaxValue.ToString(CultureInfo.InvariantCulture)),
        _ => (int.MinValue.ToString(CultureInfo.InvariantCulture), int.MaxValue.ToString(CultureInfo.InvariantCulture)),
    };
}
