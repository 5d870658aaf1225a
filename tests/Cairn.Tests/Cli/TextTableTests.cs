using Cairn.Admin.Model;
using Cairn.Cli.Tool;

namespace Cairn.Tests.Cli;

/// <summary>Tables that fit a width without breaking a word: full headers, short headers, fewer columns, then blocks.</summary>
public class TextTableTests
{
    private static readonly TextColumn[] Columns =
    [
        new("NAME"), new("COUNT", "N", RightAligned: true), new("DESCRIPTION", DropOrder: 1), new("OWNER", DropOrder: 2),
    ];

    private static readonly List<string[]> Rows =
    [
        ["alpha", "7", "first-of-all", "someone-with-a-long-name"],
        ["beta", "12345", "second", "x"],
    ];

    [Fact]
    public void Wide_enough_shows_every_column_aligned()
    {
        var layout = TextTable.Fit(Columns, Rows, 200);
        Assert.Equal(
        [
            "NAME   COUNT  DESCRIPTION   OWNER",
            "alpha      7  first-of-all  someone-with-a-long-name",
            "beta   12345  second        x",
        ], layout.Lines);
        Assert.Equal(4, layout.Shown.Count);
    }

    [Fact]
    public void Narrower_drops_the_least_important_columns_first()
    {
        var layout = TextTable.Fit(Columns, Rows, 45);
        Assert.DoesNotContain(2, layout.Shown);
        Assert.Contains(3, layout.Shown);
        Assert.All(layout.Lines, l => Assert.True(l.Length <= 45, l));
        Assert.Contains("someone-with-a-long-name", layout.Lines[1]);

        var narrow = TextTable.Fit(Columns, Rows, 16);
        Assert.Equal([0, 1], narrow.Shown.Order());
        Assert.Equal("NAME   COUNT", narrow.Lines[0]);
    }

    [Fact]
    public void Short_headers_are_used_only_when_the_full_ones_do_not_fit()
    {
        TextColumn[] columns = [new("NAME"), new("PARTITION", "P", RightAligned: true)];
        List<string[]> rows = [["abc", "1"]];
        Assert.Equal("NAME  PARTITION", TextTable.Fit(columns, rows, 80).Lines[0]);
        Assert.Equal(["NAME  P", "abc   1"], TextTable.Fit(columns, rows, 8).Lines);
    }

    [Fact]
    public void When_even_the_essential_columns_do_not_fit_each_row_becomes_a_block()
    {
        var layout = TextTable.Fit(Columns, Rows, 10);
        Assert.Equal(4, layout.Shown.Count);
        Assert.Contains("NAME alpha", layout.Lines);
        Assert.Contains(layout.Lines, l => l.Trim().StartsWith("OWNER", StringComparison.Ordinal) && l.EndsWith("someone-with-a-long-name", StringComparison.Ordinal));
    }

    [Fact]
    public void Wrap_fills_lines_and_never_splits_a_word()
    {
        var lines = TextTable.Wrap("aaa bbb ccc dddddddddddddddd e", 10, "> ");
        Assert.Equal(["> aaa bbb", "  ccc", "  dddddddddddddddd", "  e"], lines);
        Assert.Equal(["x"], TextTable.Wrap("x", 80));
    }

    [Fact]
    public void A_described_group_fits_80_columns_with_every_member_id_whole()
    {
        string Member(int i) => $"rdkafka-{i}-5f3c2a9e-8b7d-4c1e-9f0a-1234567890ab";
        var members = Enumerable.Range(0, 2).Select(i => new AdminDocuments.MemberDto(Member(i), null, $"billing-worker-{i}", "/127.0.0.1",
            [new AdminDocuments.AssignmentDto("orders-from-the-web-shop", [i, i + 2])])).ToList();
        var partitions = Enumerable.Range(0, 4).Select(p => new AdminDocuments.GroupPartitionDto("orders-from-the-web-shop", p, 1_000_000 + p, 12, 2_000_000, 999_999 - p,
            3723.5, p == 0 ? "commit metadata with words" : null, null, null, Member(p % 2), $"billing-worker-{p % 2}", "/127.0.0.1")).ToList();
        var group = new AdminDocuments.GroupDto("billing", "Stable", "consumer", "range", 1, members, partitions, 3_999_990, 3723.5);

        var lines = GroupsCommand.DescribeLines(group, 80);
        Assert.All(lines, l => Assert.True(l.Length <= 80, $"{l.Length} columns: {l}"));
        var words = lines.SelectMany(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        foreach (var m in members)
        {
            Assert.Contains(m.MemberId, words);
            Assert.Contains(m.ClientId + ",", words);
        }
        Assert.Contains("orders-from-the-web-shop", words);
        Assert.Contains("1000003", words);
        Assert.Contains("1h02m", words);
        Assert.Contains("LAG", words);
        Assert.Contains(lines, l => l.Contains("commit metadata with words", StringComparison.Ordinal));

        // Unlimited (piped): one table with Kafka's columns, one line per partition.
        var wide = GroupsCommand.DescribeLines(group, int.MaxValue);
        Assert.Equal(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-START-OFFSET", "LOG-END-OFFSET", "LAG", "LAG-TIME", "CONSUMER-ID", "HOST", "CLIENT-ID", "METADATA"],
            wide[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(2 + partitions.Count, wide.Count);
        Assert.Contains(Member(1), wide[3]);
    }
}
