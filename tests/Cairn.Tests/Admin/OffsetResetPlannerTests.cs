using Cairn.Admin.Model;

namespace Cairn.Tests.Admin;

public class OffsetResetPlannerTests
{
    private static readonly DateTimeOffset Now = new(2024, 5, 1, 12, 0, 0, TimeSpan.Zero);

    // "events" has 3 partitions: [10, 100], [0, 50], [0, 0] (empty); "other" has 1: [5, 20].
    private static readonly PartitionRange[] Ranges =
    [
        new("events", 0, 10, 100), new("events", 1, 0, 50), new("events", 2, 0, 0), new("other", 0, 5, 20),
    ];

    private static readonly Dictionary<(string, int), long> Committed = new() { [("events", 0)] = 40, [("events", 1)] = 50, [("other", 0)] = 7 };

    /// <summary>Timestamps: record n of every partition was written at Now - (100 - n) minutes.</summary>
    private static long? ByTime(string topic, int partition, long ms)
    {
        var range = Ranges.Single(r => r.Topic == topic && r.Partition == partition);
        for (long o = range.LogStartOffset; o < range.LogEndOffset; o++)
            if (Now.AddMinutes(-(100 - o)).ToUnixTimeMilliseconds() >= ms) return o;
        return null;
    }

    private static OffsetResetPlan Plan(OffsetResetSpec spec, OffsetResetScope? scope, IReadOnlyDictionary<(string, int), long>? committed = null) =>
        OffsetResetPlanner.Plan(spec, scope, committed ?? Committed, Ranges, ByTime, Now);

    private static (string, int, long?, long, long, bool)[] Rows(OffsetResetPlan plan) =>
        plan.Rows.Select(r => (r.Topic, r.Partition, r.Current, r.Requested, r.Target, r.Clamped)).ToArray();

    [Fact]
    public void To_earliest_takes_every_partition_of_the_topic_to_its_log_start()
    {
        var plan = Plan(OffsetResetSpec.ToEarliest(), OffsetResetScope.ForTopic("events"));
        Assert.True(plan.IsValid);
        Assert.Equal(new (string, int, long?, long, long, bool)[]
        {
            ("events", 0, 40, 10, 10, false), ("events", 1, 50, 0, 0, false), ("events", 2, null, 0, 0, false),
        }, Rows(plan));
    }

    [Fact]
    public void To_latest_takes_the_listed_partitions_to_the_log_end()
    {
        var plan = Plan(OffsetResetSpec.ToLatest(), OffsetResetScope.ForTopic("events", [1, 0, 1]));
        Assert.Equal(new (string, int, long?, long, long, bool)[] { ("events", 0, 40, 100, 100, false), ("events", 1, 50, 50, 50, false) }, Rows(plan));
    }

    [Fact]
    public void To_offset_is_clamped_into_each_partitions_range_and_says_so()
    {
        var plan = Plan(OffsetResetSpec.ToOffset(30), OffsetResetScope.All);
        Assert.Equal(new (string, int, long?, long, long, bool)[]
        {
            ("events", 0, 40, 30, 30, false), ("events", 1, 50, 30, 30, false), ("other", 0, 7, 30, 20, true),
        }, Rows(plan));
        Assert.Equal("requested 30, beyond log end 20: clamped", plan.Rows[2].ClampNote);

        var low = Plan(OffsetResetSpec.ToOffset(3), OffsetResetScope.ForTopic("events", [0]));
        Assert.Equal(("events", 0, (long?)40, 3L, 10L, true), Rows(low).Single());
        Assert.Equal("requested 3, below log start 10: clamped", low.Rows[0].ClampNote);
        Assert.Contains("below log start 10: clamped", low.FormatTable());
    }

    [Fact]
    public void Shift_by_moves_from_the_committed_offset_and_clamps()
    {
        var back = Plan(OffsetResetSpec.ShiftBy(-35), OffsetResetScope.ForTopic("events", [0, 1]));
        Assert.Equal(new (string, int, long?, long, long, bool)[] { ("events", 0, 40, 5, 10, true), ("events", 1, 50, 15, 15, false) }, Rows(back));
        var forward = Plan(OffsetResetSpec.ShiftBy(+8), OffsetResetScope.ForTopic("other"));
        Assert.Equal(("other", 0, (long?)7, 15L, 15L, false), Rows(forward).Single());
        var huge = Plan(OffsetResetSpec.ShiftBy(long.MaxValue), OffsetResetScope.ForTopic("other"));
        Assert.Equal((long.MaxValue, 20L, true), (huge.Rows[0].Requested, huge.Rows[0].Target, huge.Rows[0].Clamped));
    }

    [Fact]
    public void Shift_by_without_a_committed_offset_is_an_error()
    {
        var plan = Plan(OffsetResetSpec.ShiftBy(1), OffsetResetScope.ForTopic("events"));
        Assert.False(plan.IsValid);
        Assert.Contains(plan.Errors, e => e.Contains("events-2") && e.Contains("no committed offset"));
        Assert.Equal(2, plan.Rows.Count);
    }

    [Fact]
    public void To_current_keeps_committed_offsets_and_sends_uncommitted_partitions_to_the_log_end()
    {
        var plan = Plan(OffsetResetSpec.ToCurrent(), OffsetResetScope.ForTopic("events"));
        Assert.Equal(new (string, int, long?, long, long, bool)[]
        {
            ("events", 0, 40, 40, 40, false), ("events", 1, 50, 50, 50, false), ("events", 2, null, 0, 0, false),
        }, Rows(plan));
        // A committed offset that fell below the log start (retention) is clamped up.
        var stale = Plan(OffsetResetSpec.ToCurrent(), OffsetResetScope.ForTopic("events", [0]), new Dictionary<(string, int), long> { [("events", 0)] = 2 });
        Assert.Equal(("events", 0, (long?)2, 2L, 10L, true), Rows(stale).Single());
    }

    [Fact]
    public void To_datetime_finds_the_first_record_at_or_after_it()
    {
        // Record n was written at Now - (100 - n) min: 70 minutes ago is offset 30.
        var plan = Plan(OffsetResetSpec.ToDatetime(Now.AddMinutes(-70)), OffsetResetScope.ForTopic("events", [0, 1]));
        Assert.Equal(new (string, int, long?, long, long, bool)[] { ("events", 0, 40, 30, 30, false), ("events", 1, 50, 30, 30, false) }, Rows(plan));
        // Before everything: the log start; after everything: the log end.
        Assert.Equal(10, Plan(OffsetResetSpec.ToDatetime(Now.AddDays(-1)), OffsetResetScope.ForTopic("events", [0])).Rows[0].Target);
        Assert.Equal(100, Plan(OffsetResetSpec.ToDatetime(Now.AddDays(1)), OffsetResetScope.ForTopic("events", [0])).Rows[0].Target);
        Assert.Equal(0, Plan(OffsetResetSpec.ToDatetime(Now), OffsetResetScope.ForTopic("events", [2])).Rows[0].Target);
    }

    [Fact]
    public void By_duration_counts_back_from_now()
    {
        var plan = Plan(OffsetResetSpec.ByDuration(TimeSpan.FromMinutes(25)), OffsetResetScope.ForTopic("events", [0, 1]));
        // 25 minutes ago is offset 75: inside partition 0, beyond partition 1's end (50) → its log end.
        Assert.Equal(new (string, int, long?, long, long, bool)[] { ("events", 0, 40, 75, 75, false), ("events", 1, 50, 50, 50, false) }, Rows(plan));
        Assert.Equal(10, Plan(OffsetResetSpec.ByDuration(TimeSpan.FromDays(365 * 100)), OffsetResetScope.ForTopic("events", [0])).Rows[0].Target);
    }

    [Fact]
    public void From_file_takes_each_rows_offset_clamped_and_checks_partitions_exist()
    {
        var spec = OffsetResetSpec.Parse("from-file", "topic,partition,offset\n# comment\nevents,1,12\n\nother,0,1\nevents,0,1000\n");
        var plan = Plan(spec, null);
        Assert.True(plan.IsValid);
        Assert.Equal(new (string, int, long?, long, long, bool)[]
        {
            ("events", 0, 40, 1000, 100, true), ("events", 1, 50, 12, 12, false), ("other", 0, 7, 1, 5, true),
        }, Rows(plan));

        var scoped = Plan(spec, OffsetResetScope.ForTopic("events", [1]));
        Assert.Equal(("events", 1, (long?)50, 12L, 12L, false), Rows(scoped).Single());

        var missing = Plan(OffsetResetSpec.Parse("from-file", "events,7,1\nnope,0,1"), null);
        Assert.False(missing.IsValid);
        Assert.Contains(missing.Errors, e => e.Contains("events-7") && e.Contains("has 3"));
        Assert.Contains(missing.Errors, e => e.Contains("'nope' does not exist"));
    }

    [Fact]
    public void All_topics_means_the_partitions_the_group_has_committed()
    {
        var committed = new Dictionary<(string, int), long> { [("other", 0)] = 6, [("events", 1)] = 1, [("gone", 0)] = 3 };
        var plan = Plan(OffsetResetSpec.ToEarliest(), OffsetResetScope.All, committed);
        Assert.Equal(new[] { ("events", 1), ("other", 0) }, plan.Rows.Select(r => (r.Topic, r.Partition)));
        Assert.Contains(plan.Warnings, w => w.Contains("gone-0"));
        Assert.True(plan.IsValid);
        var none = Plan(OffsetResetSpec.ToEarliest(), OffsetResetScope.All, new Dictionary<(string, int), long>());
        Assert.Empty(none.Rows);
        Assert.NotEmpty(none.Warnings);
    }

    [Fact]
    public void Unknown_topics_and_partitions_are_errors()
    {
        Assert.Contains("does not exist", Plan(OffsetResetSpec.ToEarliest(), OffsetResetScope.ForTopic("nope")).Errors.Single());
        var plan = Plan(OffsetResetSpec.ToEarliest(), OffsetResetScope.ForTopic("events", [0, 9]));
        Assert.Contains("events-9", plan.Errors.Single());
        Assert.Throws<ArgumentException>(() => Plan(OffsetResetSpec.ToEarliest(), null));
    }

    [Fact]
    public void The_table_shows_partition_current_and_target()
    {
        var table = Plan(OffsetResetSpec.ToOffset(60), OffsetResetScope.ForTopic("events")).FormatTable();
        var lines = table.TrimEnd('\n').Split('\n');
        Assert.Equal("TOPIC   PARTITION  CURRENT  TARGET  NOTE", lines[0]);
        Assert.Equal("events  0          40       60", lines[1]);
        Assert.Equal("events  1          50       50      requested 60, beyond log end 50: clamped", lines[2]);
        Assert.Equal("events  2          -        0       requested 60, beyond log end 0: clamped", lines[3]);
    }

    // ------------------------------------------------------------------ parsing

    [Theory]
    [InlineData("to-earliest", null, OffsetResetMode.ToEarliest)]
    [InlineData("--to-latest", "", OffsetResetMode.ToLatest)]
    [InlineData("toCurrent", null, OffsetResetMode.ToCurrent)]
    [InlineData("to_offset", "42", OffsetResetMode.ToOffset)]
    [InlineData("shift-by", "-3", OffsetResetMode.ShiftBy)]
    [InlineData("shift-by", "+3", OffsetResetMode.ShiftBy)]
    [InlineData("to-datetime", "2024-05-01T10:00:00Z", OffsetResetMode.ToDatetime)]
    [InlineData("by-duration", "PT2H", OffsetResetMode.ByDuration)]
    [InlineData("from-file", "t,0,1", OffsetResetMode.FromFile)]
    public void Modes_parse_from_their_command_line_names(string mode, string? argument, OffsetResetMode expected) =>
        Assert.Equal(expected, OffsetResetSpec.Parse(mode, argument).Mode);

    [Theory]
    [InlineData("to-nowhere", null, "unknown reset mode")]
    [InlineData("to-offset", null, "needs a value")]
    [InlineData("to-offset", "4.5", "integer")]
    [InlineData("to-earliest", "3", "takes no value")]
    [InlineData("to-datetime", "yesterday", "ISO-8601")]
    [InlineData("to-datetime", "05/01/2024", "ISO-8601")]
    [InlineData("by-duration", "2h", "ISO-8601 duration")]
    [InlineData("by-duration", "P1M", "years and months")]
    [InlineData("by-duration", "PT", "ISO-8601 duration")]
    [InlineData("by-duration", "-PT1H", "positive")]
    [InlineData("from-file", "t,0", "line 1")]
    [InlineData("from-file", "t,0,1\nt,x,1", "line 2")]
    [InlineData("from-file", "t,0,1\nt,0,2", "more than once")]
    [InlineData("from-file", "# only a comment", "no rows")]
    public void Bad_arguments_are_explained(string mode, string? argument, string message)
    {
        var e = Assert.Throws<FormatException>(() => OffsetResetSpec.Parse(mode, argument));
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00")]
    [InlineData("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00+00:00")]
    [InlineData("2024-05-01T10:00:00.250", "2024-05-01T10:00:00.25+00:00")]
    [InlineData("2024-05-01", "2024-05-01T00:00:00+00:00")]
    public void Datetimes_are_iso_8601_and_utc_without_a_zone(string text, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), OffsetResetSpec.ParseDatetime(text));

    [Theory]
    [InlineData("PT2H", 2 * 3600)]
    [InlineData("PT30M", 1800)]
    [InlineData("PT1.5S", 1.5)]
    [InlineData("P1DT12H", 36 * 3600)]
    [InlineData("P1W", 7 * 86400)]
    [InlineData("pt10m", 600)]
    public void Durations_are_iso_8601(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), OffsetResetSpec.ParseDuration(text));

    [Fact]
    public void The_topic_scope_parses_kafkas_topic_colon_partitions_form()
    {
        var scope = OffsetResetScope.ParseTopic("events:2,0,2");
        Assert.Equal("events", scope.Topic);
        Assert.Equal(new[] { 0, 2 }, scope.Partitions);
        Assert.Null(OffsetResetScope.ParseTopic("events").Partitions);
        Assert.Throws<FormatException>(() => OffsetResetScope.ParseTopic("events:x"));
        Assert.Equal("events:0,2", scope.ToString());
    }

    [Fact]
    public void Specs_print_as_the_command_line_writes_them()
    {
        Assert.Equal("to-offset 42", OffsetResetSpec.ToOffset(42).ToString());
        Assert.Equal("shift-by -3", OffsetResetSpec.ShiftBy(-3).ToString());
        Assert.Equal("shift-by +3", OffsetResetSpec.ShiftBy(3).ToString());
        Assert.Equal("by-duration PT2H", OffsetResetSpec.ByDuration(TimeSpan.FromHours(2)).ToString());
        Assert.Equal("to-datetime 2024-05-01T10:00:00.000Z", OffsetResetSpec.ToDatetime(new DateTimeOffset(2024, 5, 1, 12, 0, 0, TimeSpan.FromHours(2))).ToString());
    }
}
