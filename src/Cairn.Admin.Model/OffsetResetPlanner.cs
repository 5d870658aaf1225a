using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Cairn.Admin.Model;

/// <summary>How target offsets are chosen (the modes of Kafka's <c>kafka-consumer-groups --reset-offsets</c>).</summary>
public enum OffsetResetMode { ToEarliest, ToLatest, ToOffset, ToDatetime, ByDuration, ShiftBy, ToCurrent, FromFile }

/// <summary>One line of a from-file plan: <c>topic,partition,offset</c>.</summary>
public sealed record OffsetResetFileRow(string Topic, int Partition, long Offset);

/// <summary>
/// A reset mode with its argument. Build one with the factories, or from a mode name and its argument text with
/// <see cref="Parse"/> (what a command line or a JSON body gives).
/// </summary>
public sealed record OffsetResetSpec
{
    private OffsetResetSpec(OffsetResetMode mode) => Mode = mode;

    public OffsetResetMode Mode { get; }
    /// <summary>to-offset: the offset.</summary>
    public long Offset { get; private init; }
    /// <summary>shift-by: the signed shift.</summary>
    public long Shift { get; private init; }
    /// <summary>to-datetime: the instant.</summary>
    public DateTimeOffset Datetime { get; private init; }
    /// <summary>by-duration: how far back from now.</summary>
    public TimeSpan Duration { get; private init; }
    /// <summary>from-file: the plan's rows.</summary>
    public IReadOnlyList<OffsetResetFileRow> FileRows { get; private init; } = [];

    public static OffsetResetSpec ToEarliest() => new(OffsetResetMode.ToEarliest);
    public static OffsetResetSpec ToLatest() => new(OffsetResetMode.ToLatest);
    public static OffsetResetSpec ToCurrent() => new(OffsetResetMode.ToCurrent);
    public static OffsetResetSpec ToOffset(long offset) => new(OffsetResetMode.ToOffset) { Offset = offset };
    public static OffsetResetSpec ShiftBy(long shift) => new(OffsetResetMode.ShiftBy) { Shift = shift };
    public static OffsetResetSpec ToDatetime(DateTimeOffset datetime) => new(OffsetResetMode.ToDatetime) { Datetime = datetime };

    public static OffsetResetSpec ByDuration(TimeSpan duration) => duration < TimeSpan.Zero
        ? throw new FormatException("by-duration needs a positive duration")
        : new(OffsetResetMode.ByDuration) { Duration = duration };

    public static OffsetResetSpec FromFile(IReadOnlyList<OffsetResetFileRow> rows)
    {
        var seen = new HashSet<(string, int)>();
        foreach (var r in rows)
            if (!seen.Add((r.Topic, r.Partition))) throw new FormatException($"from-file: {r.Topic}-{r.Partition} appears more than once");
        return new(OffsetResetMode.FromFile) { FileRows = rows };
    }

    /// <summary>The mode names, as the command line spells them (without the leading dashes).</summary>
    public static IReadOnlyList<string> ModeNames { get; } =
        ["to-earliest", "to-latest", "to-offset", "to-datetime", "by-duration", "shift-by", "to-current", "from-file"];

    public static string NameOf(OffsetResetMode mode) => ModeNames[(int)mode];

    /// <summary>
    /// Builds a spec from a mode name (<c>to-offset</c>, <c>--to-offset</c>, <c>toOffset</c> and <c>to_offset</c> all work)
    /// and its argument: an offset for to-offset, ±N for shift-by, an ISO-8601 date-time for to-datetime, an ISO-8601
    /// duration (PT2H, P1DT30M) for by-duration, the CSV text (topic,partition,offset lines) for from-file.
    /// Throws <see cref="FormatException"/> with a message meant for the user.
    /// </summary>
    /// <param name="zonelessTimes">the zone of a to-datetime without one: null means UTC (what the admin API, which has no
    /// user's zone, documents); the command line passes the local zone, as Kafka's tools do</param>
    public static OffsetResetSpec Parse(string mode, string? argument, TimeZoneInfo? zonelessTimes = null)
    {
        var m = ParseMode(mode);
        bool needsArgument = m is not (OffsetResetMode.ToEarliest or OffsetResetMode.ToLatest or OffsetResetMode.ToCurrent);
        if (needsArgument && string.IsNullOrWhiteSpace(argument)) throw new FormatException($"{NameOf(m)} needs a value");
        if (!needsArgument && !string.IsNullOrWhiteSpace(argument)) throw new FormatException($"{NameOf(m)} takes no value, got '{argument}'");
        var a = argument?.Trim() ?? "";
        return m switch
        {
            OffsetResetMode.ToEarliest => ToEarliest(),
            OffsetResetMode.ToLatest => ToLatest(),
            OffsetResetMode.ToCurrent => ToCurrent(),
            OffsetResetMode.ToOffset => ToOffset(ParseLong("to-offset", a)),
            OffsetResetMode.ShiftBy => ShiftBy(ParseLong("shift-by", a)),
            OffsetResetMode.ToDatetime => ToDatetime(ParseDatetime(a, zonelessTimes)),
            OffsetResetMode.ByDuration => ByDuration(ParseDuration(a)),
            _ => FromFile(ParseCsv(a)),
        };
    }

    public static OffsetResetMode ParseMode(string mode)
    {
        var key = mode.Trim().TrimStart('-').Replace("_", "").Replace("-", "").ToLowerInvariant();
        for (int i = 0; i < ModeNames.Count; i++)
            if (ModeNames[i].Replace("-", "") == key) return (OffsetResetMode)i;
        throw new FormatException($"unknown reset mode '{mode}'; use one of {string.Join(", ", ModeNames)}");
    }

    private static long ParseLong(string what, string value) =>
        long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? v : throw new FormatException($"{what} needs an integer, got '{value}'");

    private static readonly Regex IsoDate = new(@"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(?<zone>Z|[+-]\d{2}(:?\d{2})?)?$", RegexOptions.CultureInvariant);

    /// <summary>
    /// ISO-8601: <c>2024-05-01</c>, <c>2024-05-01T10:00:00</c>, <c>2024-05-01T10:00:00.250Z</c>, <c>2024-05-01T12:00:00+02:00</c>.
    /// A time with a zone (Z or an offset) is that instant; one without is in <paramref name="zoneless"/> (null: UTC).
    /// </summary>
    public static DateTimeOffset ParseDatetime(string value, TimeZoneInfo? zoneless = null)
    {
        var v = value.Trim();
        var match = IsoDate.Match(v);
        string Bad() => $"to-datetime needs an ISO-8601 date-time such as 2024-05-01T10:00:00Z, got '{value}'";
        if (!match.Success) throw new FormatException(Bad());
        if (match.Groups["zone"].Success || zoneless is null || zoneless == TimeZoneInfo.Utc)
        {
            if (!DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var dt))
                throw new FormatException(Bad());
            return dt;
        }
        if (!DateTime.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.None, out var local)) throw new FormatException(Bad());
        local = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        if (zoneless.IsInvalidTime(local))
            throw new FormatException($"to-datetime '{value}' does not exist in the time zone {zoneless.Id} (clocks skip it); give the zone, e.g. {v}Z");
        // An ambiguous time (clocks set back) is read as standard time, as TimeZoneInfo does.
        return new DateTimeOffset(TimeZoneInfo.ConvertTimeToUtc(local, zoneless), TimeSpan.Zero);
    }

    private static readonly Regex IsoDuration = new(
        @"^P(?:(?<w>\d+)W)?(?:(?<d>\d+)D)?(?:T(?:(?<h>\d+)H)?(?:(?<m>\d+)M)?(?:(?<s>\d+(?:[.,]\d+)?)S)?)?$", RegexOptions.CultureInvariant);

    /// <summary>ISO-8601 duration with fixed-length parts: PnW, PnD, PTnH, PTnM, PTn.nS and combinations (P1DT2H30M).</summary>
    public static TimeSpan ParseDuration(string value)
    {
        var v = value.Trim().ToUpperInvariant();
        var match = IsoDuration.Match(v);
        bool any = match.Success && (match.Groups["w"].Success || match.Groups["d"].Success || match.Groups["h"].Success || match.Groups["m"].Success || match.Groups["s"].Success);
        if (!any || v.EndsWith('T'))
        {
            if (v.StartsWith('-')) throw new FormatException($"by-duration needs a positive duration, got '{value}'");
            throw new FormatException($"by-duration needs an ISO-8601 duration such as PT2H, PT30M or P1DT12H (years and months are not fixed lengths: use days), got '{value}'");
        }
        try
        {
            double Part(string name) => match.Groups[name].Success ? double.Parse(match.Groups[name].Value.Replace(',', '.'), CultureInfo.InvariantCulture) : 0;
            return TimeSpan.FromDays(Part("w") * 7 + Part("d")) + TimeSpan.FromHours(Part("h")) + TimeSpan.FromMinutes(Part("m")) + TimeSpan.FromSeconds(Part("s"));
        }
        catch (OverflowException)
        {
            throw new FormatException($"by-duration '{value}' is too long");
        }
    }

    /// <summary>
    /// A from-file plan: one <c>topic,partition,offset</c> per line (Kafka's reset-offsets CSV). Blank lines, lines
    /// starting with # and a header line <c>topic,partition,offset</c> are skipped.
    /// </summary>
    public static IReadOnlyList<OffsetResetFileRow> ParseCsv(string text)
    {
        var rows = new List<OffsetResetFileRow>();
        int lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var fields = line.Split(',');
            if (rows.Count == 0 && fields.Length == 3 && fields[0].Trim().Equals("topic", StringComparison.OrdinalIgnoreCase)) continue;
            if (fields.Length != 3) throw new FormatException($"from-file line {lineNumber}: expected topic,partition,offset, got '{line}'");
            var topic = fields[0].Trim();
            if (topic.Length == 0) throw new FormatException($"from-file line {lineNumber}: empty topic");
            if (!int.TryParse(fields[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var partition))
                throw new FormatException($"from-file line {lineNumber}: partition must be a non-negative integer, got '{fields[1].Trim()}'");
            if (!long.TryParse(fields[2].Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var offset))
                throw new FormatException($"from-file line {lineNumber}: offset must be an integer, got '{fields[2].Trim()}'");
            rows.Add(new OffsetResetFileRow(topic, partition, offset));
        }
        if (rows.Count == 0) throw new FormatException("from-file: the plan has no rows");
        return rows;
    }

    /// <summary>The mode as the command line writes it: <c>to-offset 42</c>, <c>by-duration PT2H</c>.</summary>
    public override string ToString() => Mode switch
    {
        OffsetResetMode.ToOffset => $"to-offset {Offset}",
        OffsetResetMode.ShiftBy => $"shift-by {Shift.ToString("+0;-0;0", CultureInfo.InvariantCulture)}",
        OffsetResetMode.ToDatetime => $"to-datetime {Datetime.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffZ}",
        OffsetResetMode.ByDuration => $"by-duration {System.Xml.XmlConvert.ToString(Duration)}",
        OffsetResetMode.FromFile => $"from-file ({FileRows.Count} rows)",
        _ => NameOf(Mode),
    };
}

/// <summary>Which partitions to reset: one topic (all its partitions, or the listed ones), or every partition the group has committed.</summary>
public sealed record OffsetResetScope
{
    private OffsetResetScope() { }

    public string? Topic { get; private init; }
    /// <summary>With <see cref="Topic"/>: the partitions; null means all of the topic's partitions.</summary>
    public IReadOnlyList<int>? Partitions { get; private init; }
    public bool AllTopics { get; private init; }

    public static OffsetResetScope ForTopic(string topic, IReadOnlyList<int>? partitions = null)
    {
        if (string.IsNullOrWhiteSpace(topic)) throw new FormatException("the topic must not be empty");
        if (partitions is { Count: 0 }) partitions = null;
        if (partitions?.Any(p => p < 0) == true) throw new FormatException("partitions must not be negative");
        return new OffsetResetScope { Topic = topic, Partitions = partitions?.Distinct().Order().ToArray() };
    }

    /// <summary>Every partition the group has a committed offset for.</summary>
    public static OffsetResetScope All { get; } = new() { AllTopics = true };

    /// <summary>Parses the command line's <c>--topic</c> value: <c>events</c> or <c>events:0,2,5</c> (Kafka's form).</summary>
    public static OffsetResetScope ParseTopic(string value)
    {
        int colon = value.IndexOf(':');
        if (colon < 0) return ForTopic(value.Trim());
        var partitions = new List<int>();
        foreach (var p in value[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            partitions.Add(int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new FormatException($"bad partition '{p}' in '{value}'"));
        return ForTopic(value[..colon].Trim(), partitions);
    }

    public override string ToString() => AllTopics ? "all topics" : Partitions is null ? Topic! : $"{Topic}:{string.Join(',', Partitions)}";
}

/// <summary>A partition's valid offset range: [log start offset, log end offset].</summary>
public sealed record PartitionRange(string Topic, int Partition, long LogStartOffset, long LogEndOffset);

/// <summary>One line of a plan: where the group is (null: nothing committed), what the mode asked for, and what will be committed.</summary>
public sealed record OffsetResetRow(string Topic, int Partition, long? Current, long Requested, long Target, bool Clamped, long LogStartOffset, long LogEndOffset)
{
    /// <summary>Why the target differs from the request; null when it does not.</summary>
    public string? ClampNote => !Clamped ? null
        : Requested < LogStartOffset ? $"requested {Requested}, below log start {LogStartOffset}: clamped"
        : $"requested {Requested}, beyond log end {LogEndOffset}: clamped";
}

/// <summary>The result of planning: rows sorted by topic and partition, errors (the plan must not be executed) and warnings.</summary>
public sealed record OffsetResetPlan(OffsetResetSpec Spec, IReadOnlyList<OffsetResetRow> Rows, IReadOnlyList<string> Errors, IReadOnlyList<string> Warnings)
{
    public bool IsValid => Errors.Count == 0;

    /// <summary>The plan as a text table (TOPIC PARTITION CURRENT TARGET NOTE), then errors and warnings.</summary>
    public string FormatTable()
    {
        var lines = new List<string[]> { new[] { "TOPIC", "PARTITION", "CURRENT", "TARGET", "NOTE" } };
        foreach (var r in Rows)
            lines.Add([r.Topic, r.Partition.ToString(CultureInfo.InvariantCulture), r.Current?.ToString(CultureInfo.InvariantCulture) ?? "-",
                r.Target.ToString(CultureInfo.InvariantCulture), r.ClampNote ?? ""]);
        var widths = Enumerable.Range(0, 5).Select(i => lines.Max(l => l[i].Length)).ToArray();
        var sb = new StringBuilder();
        foreach (var l in lines)
        {
            for (int i = 0; i < l.Length; i++)
            {
                if (i > 0) sb.Append("  ");
                sb.Append(i == l.Length - 1 ? l[i] : l[i].PadRight(widths[i]));
            }
            sb.Length = sb.ToString().TrimEnd().Length;
            sb.Append('\n');
        }
        foreach (var e in Errors) sb.Append("error: ").Append(e).Append('\n');
        foreach (var w in Warnings) sb.Append("warning: ").Append(w).Append('\n');
        return sb.ToString();
    }
}

/// <summary>
/// Plans an offset reset without touching anything: from the group's committed offsets, each partition's valid range
/// and a timestamp lookup it computes, per partition, the requested target and the target clamped into
/// [log start, log end]. Shared by the admin API and the command line; it has no I/O and no clock of its own.
/// </summary>
public static class OffsetResetPlanner
{
    /// <param name="spec">the mode</param>
    /// <param name="scope">the partitions; may be null only for from-file (then the file's rows are the scope)</param>
    /// <param name="committed">the group's committed offsets</param>
    /// <param name="partitions">the range of every existing partition of the topics involved (a topic scope resets all of a topic's partitions listed here)</param>
    /// <param name="offsetForTimestamp">(topic, partition, unix ms) → the first offset whose timestamp is at or after it, or null when no record is that new</param>
    /// <param name="now">the time by-duration counts back from</param>
    public static OffsetResetPlan Plan(
        OffsetResetSpec spec,
        OffsetResetScope? scope,
        IReadOnlyDictionary<(string Topic, int Partition), long> committed,
        IEnumerable<PartitionRange> partitions,
        Func<string, int, long, long?> offsetForTimestamp,
        DateTimeOffset now)
    {
        var ranges = new Dictionary<(string, int), PartitionRange>();
        foreach (var p in partitions) ranges[(p.Topic, p.Partition)] = p;
        var errors = new List<string>();
        var warnings = new List<string>();

        // Which partitions, and (from-file) what each asks for.
        var selected = new List<(string Topic, int Partition, long? FileOffset)>();
        if (spec.Mode == OffsetResetMode.FromFile)
        {
            foreach (var r in spec.FileRows)
            {
                if (scope is { AllTopics: false } && (r.Topic != scope.Topic || (scope.Partitions is not null && !scope.Partitions.Contains(r.Partition)))) continue;
                selected.Add((r.Topic, r.Partition, r.Offset));
            }
            if (selected.Count == 0 && spec.FileRows.Count > 0) warnings.Add($"no row of the file is in the scope ({scope})");
        }
        else if (scope is null)
        {
            throw new ArgumentException("a scope (a topic or all topics) is needed for " + spec);
        }
        else if (scope.AllTopics)
        {
            foreach (var key in committed.Keys.OrderBy(k => k.Topic, StringComparer.Ordinal).ThenBy(k => k.Partition))
            {
                if (ranges.ContainsKey(key)) selected.Add((key.Topic, key.Partition, null));
                else warnings.Add($"{key.Topic}-{key.Partition} has a committed offset but the partition no longer exists; left out");
            }
            if (committed.Count == 0) warnings.Add("the group has no committed offsets, so 'all topics' selects nothing");
        }
        else
        {
            var topicPartitions = ranges.Values.Where(r => r.Topic == scope.Topic).Select(r => r.Partition).Order().ToList();
            if (topicPartitions.Count == 0) errors.Add($"topic '{scope.Topic}' does not exist");
            else if (scope.Partitions is null) selected.AddRange(topicPartitions.Select(p => (scope.Topic!, p, (long?)null)));
            else selected.AddRange(scope.Partitions.Select(p => (scope.Topic!, p, (long?)null)));
        }

        long timestamp = spec.Mode switch
        {
            OffsetResetMode.ToDatetime => spec.Datetime.ToUnixTimeMilliseconds(),
            OffsetResetMode.ByDuration => Subtract(now, spec.Duration).ToUnixTimeMilliseconds(),
            _ => 0,
        };

        var rows = new List<OffsetResetRow>(selected.Count);
        foreach (var (topic, partition, fileOffset) in selected)
        {
            if (!ranges.TryGetValue((topic, partition), out var range))
            {
                int count = ranges.Values.Count(r => r.Topic == topic);
                errors.Add(count == 0 ? $"{topic}-{partition}: topic '{topic}' does not exist" : $"{topic}-{partition}: no such partition ('{topic}' has {count})");
                continue;
            }
            long? current = committed.TryGetValue((topic, partition), out var c) ? c : null;
            long start = range.LogStartOffset, end = Math.Max(range.LogStartOffset, range.LogEndOffset);
            long requested;
            switch (spec.Mode)
            {
                case OffsetResetMode.ToEarliest: requested = start; break;
                case OffsetResetMode.ToLatest: requested = end; break;
                case OffsetResetMode.ToOffset: requested = spec.Offset; break;
                case OffsetResetMode.FromFile: requested = fileOffset!.Value; break;
                case OffsetResetMode.ToCurrent:
                    // Like Kafka: a partition without a committed offset goes to the log end.
                    requested = current ?? end;
                    break;
                case OffsetResetMode.ShiftBy:
                    if (current is null)
                    {
                        errors.Add($"{topic}-{partition}: cannot shift, the group has no committed offset there");
                        continue;
                    }
                    requested = SaturatingAdd(current.Value, spec.Shift);
                    break;
                default: // to-datetime, by-duration
                    requested = offsetForTimestamp(topic, partition, Math.Max(0, timestamp)) ?? end;
                    break;
            }
            long target = Math.Clamp(requested, start, end);
            rows.Add(new OffsetResetRow(topic, partition, current, requested, target, target != requested, start, end));
        }
        rows.Sort((a, b) => a.Topic != b.Topic ? string.CompareOrdinal(a.Topic, b.Topic) : a.Partition.CompareTo(b.Partition));
        return new OffsetResetPlan(spec, rows, errors, warnings);
    }

    private static long SaturatingAdd(long a, long b)
    {
        long r = unchecked(a + b);
        if (((a ^ r) & (b ^ r)) < 0) return b > 0 ? long.MaxValue : long.MinValue;
        return r;
    }

    private static DateTimeOffset Subtract(DateTimeOffset now, TimeSpan duration) =>
        now - DateTimeOffset.MinValue < duration + TimeSpan.FromDays(1) ? DateTimeOffset.UnixEpoch : now - duration;
}
