using System.CommandLine;
using System.Text.RegularExpressions;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary>
/// <c>--pattern REGEX</c> of the topics commands. As in Kafka's tools, the expression must match the whole name
/// ("orders" matches only "orders"; "orders.*" matches "orders" and "orders-eu").
/// </summary>
internal static class TopicPattern
{
    public static Option<string?> CreateOption(string description) => new("--pattern")
    {
        Description = description + " (the whole name must match: 'orders.*')",
        HelpName = "regex",
    };

    public static Regex? Compile(string? pattern)
    {
        if (pattern is null) return null;
        try
        {
            _ = new Regex(pattern); // checked alone first, so that an error names the user's pattern, not the anchored one
            return new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--pattern: '{pattern}' is not a regular expression ({e.Message.Replace($"Invalid pattern '{pattern}' at ", "", StringComparison.Ordinal)})");
        }
    }

    /// <summary>
    /// The topics named plus those <paramref name="regex"/> matches (all topics when neither is given), in name order.
    /// Named topics must exist unless <paramref name="ignoreMissing"/>; a pattern that matches nothing is an error too.
    /// Internal topics match the pattern (or "all") only with <paramref name="includeInternal"/>; named ones always count.
    /// </summary>
    public static List<string> Select(IReadOnlyList<TopicListing> existing, IReadOnlyCollection<string> named, Regex? regex, bool includeInternal, bool ignoreMissing = false)
    {
        var byName = existing.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var missing = named.Where(n => !byName.ContainsKey(n)).Distinct(StringComparer.Ordinal).ToList();
        if (missing.Count > 0 && !ignoreMissing)
            throw new ToolException(missing.Count == 1 ? $"topic '{missing[0]}' does not exist" : $"topics {string.Join(", ", missing.Select(m => $"'{m}'"))} do not exist");
        var selected = new SortedSet<string>(named.Where(byName.ContainsKey), StringComparer.Ordinal);
        if (regex is not null || named.Count == 0)
        {
            var matched = existing.Where(t => (includeInternal || !t.IsInternal) && (regex is null || regex.IsMatch(t.Name))).Select(t => t.Name).ToList();
            if (regex is not null && matched.Count == 0 && !ignoreMissing)
                throw new ToolException($"no topic matches --pattern '{regex.ToString()[4..^2]}'");
            selected.UnionWith(matched);
        }
        return [.. selected];
    }
}
