using System.CommandLine;

namespace Cairn.Cli.Tool;

/// <summary>
/// kcat-style short options whose value may follow the letter directly (getopt: <c>-K:</c> is the key separator ':',
/// <c>-D\n</c> the record delimiter). System.CommandLine reads <c>-K:</c> as <c>-K</c> with the (empty) text after the
/// colon and then takes the next word as the value, so such tokens are rewritten before parsing.
/// </summary>
internal static class GluedShortOptions
{
    private static readonly HashSet<Option> Registered = [];

    /// <summary>Marks <paramref name="option"/> (which has a one-letter alias such as <c>-K</c>) as accepting a glued value.</summary>
    public static T AllowGluedValue<T>(this T option) where T : Option
    {
        lock (Registered) Registered.Add(option);
        return option;
    }

    /// <summary>
    /// <c>-K:</c> becomes <c>-K=:</c> for registered options: the parser splits a token at its first '=' (or ':'), so
    /// everything glued to the letter, even '=' or '--', stays the value. Values of other options and everything after
    /// <c>--</c> are left alone.
    /// </summary>
    public static string[] Rewrite(Command root, IReadOnlyList<string> args)
    {
        var result = new List<string>(args.Count);
        var visible = new List<Option>(root.Options);
        Command current = root;
        bool previousTakesValue = false;
        for (int i = 0; i < args.Count; i++)
        {
            var token = args[i];
            if (token == "--")
            {
                result.AddRange(args.Skip(i));
                break;
            }
            if (previousTakesValue)
            {
                previousTakesValue = false;
                result.Add(token);
                continue;
            }
            if (current.Subcommands.FirstOrDefault(c => c.Name == token || c.Aliases.Contains(token)) is { } sub)
            {
                current = sub;
                visible.AddRange(sub.Options);
                result.Add(token);
                continue;
            }
            var option = visible.FirstOrDefault(o => o.Name == token || o.Aliases.Contains(token));
            if (option is not null)
            {
                previousTakesValue = option.Arity.MaximumNumberOfValues > 0 && option.ValueType != typeof(bool);
                result.Add(token);
                continue;
            }
            if (token.Length > 2 && token[0] == '-' && token[1] != '-')
            {
                var letter = token[..2];
                Option? glued;
                lock (Registered) glued = visible.FirstOrDefault(o => Registered.Contains(o) && o.Aliases.Contains(letter));
                if (glued is not null)
                {
                    result.Add(letter + "=" + token[2..]);
                    continue;
                }
            }
            result.Add(token);
        }
        return [.. result];
    }
}
