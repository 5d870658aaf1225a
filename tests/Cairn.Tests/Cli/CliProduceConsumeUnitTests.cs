using System.CommandLine;
using System.Text;
using Cairn.Cli.Tool;
using Cairn.Client;
using Cairn.Protocol.Records;

namespace Cairn.Tests.Cli;

/// <summary>The pure parts of `cairn produce` and `cairn consume`: glued kcat options, escapes, delimiters, formats, times.</summary>
public sealed class CliProduceConsumeUnitTests
{
    private static RootCommand Root()
    {
        var root = new RootCommand();
        ToolCommands.AddTo(root);
        return root;
    }

    /// <summary>Rewrites and parses like Program.cs, returning the parse of `cairn ARGS`.</summary>
    private static ParseResult Parse(params string[] args)
    {
        var root = Root();
        return root.Parse(GluedShortOptions.Rewrite(root, args), new ParserConfiguration { ResponseFileTokenReplacer = null });
    }

    [Theory]
    [InlineData(":", "produce", "orders", "-K:", "-H", "source=cli", "-z", "zstd")]
    [InlineData(":", "produce", "orders", "-K", ":", "-H", "source=cli", "-z", "zstd")]
    [InlineData(":", "produce", "orders", "--key-separator=:", "-H", "source=cli", "-z", "zstd")]
    [InlineData(":", "produce", "-K:", "orders", "-Hsource=cli", "-z", "zstd")]
    [InlineData("::", "produce", "orders", "-K::", "-H", "source=cli", "-z", "zstd")]
    [InlineData("=", "produce", "orders", "-K=", "-H", "source=cli", "-z", "zstd")]
    [InlineData("=:", "produce", "orders", "-K=:", "-H", "source=cli", "-z", "zstd")]
    [InlineData("--", "produce", "orders", "-K--", "-H", "source=cli", "-z", "zstd")]
    [InlineData("\\t", "produce", "orders", "-K\\t", "-H", "source=cli", "-z", "zstd")]
    public void Key_separator_glued_or_separate_parses_to_the_same_value(string expected, params string[] args)
    {
        var parse = Parse(args);
        Assert.Empty(parse.Errors);
        Assert.Equal(expected, parse.GetValue<string?>("--key-separator"));
        Assert.Equal(["source=cli"], parse.GetValue<string[]>("--header") ?? []);
        Assert.Equal("zstd", parse.GetValue<string>("--compression"));
        Assert.Equal("orders", parse.GetValue<string>("topic"));
    }

    [Fact]
    public void Glued_delimiter_and_key_parse_and_other_tokens_stay_as_they_are()
    {
        var parse = Parse("produce", "t", "-D;", "-kuser1", "-Z");
        Assert.Empty(parse.Errors);
        Assert.Equal(";", parse.GetValue<string?>("--delimiter"));
        Assert.Equal("user1", parse.GetValue<string?>("--key"));
        Assert.True(parse.GetValue<bool>("--null-empty"));

        var root = Root();
        // The value of another option, everything after --, and other commands are left alone.
        Assert.Equal(["produce", "t", "-H", "-Kx=1"], GluedShortOptions.Rewrite(root, ["produce", "t", "-H", "-Kx=1"]));
        Assert.Equal(["produce", "--", "-K:"], GluedShortOptions.Rewrite(root, ["produce", "--", "-K:"]));
        Assert.Equal(["consume", "t", "-K:"], GluedShortOptions.Rewrite(root, ["consume", "t", "-K:"]));
        Assert.Equal(["produce", "t", "-K=:", "-Z", "-D=\\n"], GluedShortOptions.Rewrite(root, ["produce", "t", "-K:", "-Z", "-D\\n"]));
    }

    [Theory]
    [InlineData("\\n", new byte[] { 10 })]
    [InlineData("\\r\\n", new byte[] { 13, 10 })]
    [InlineData("\\t", new byte[] { 9 })]
    [InlineData("\\0", new byte[] { 0 })]
    [InlineData("\\\\", new byte[] { 92 })]
    [InlineData("\\x1e;", new byte[] { 0x1e, 59 })]
    [InlineData("\\xZZ", new byte[] { 92, 120, 90, 90 })]
    [InlineData("\\q", new byte[] { 92, 113 })]
    [InlineData("a\\", new byte[] { 97, 92 })]
    [InlineData("|é|", new byte[] { 124, 0xC3, 0xA9, 124 })]
    [InlineData("😀", new byte[] { 0xF0, 0x9F, 0x98, 0x80 })]
    public void Escapes_resolve_like_kcat(string text, byte[] expected) => Assert.Equal(expected, Escapes.Unescape(text));

    /// <summary>A stream that hands out at most <c>chunk</c> bytes per read, so delimiters straddle reads.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(chunk, buffer.Length)], cancellationToken);
    }

    private static async Task<List<string>> Split(string input, string delimiter, bool trimCr, int chunk)
    {
        var reader = new DelimitedReader(new TrickleStream(Encoding.UTF8.GetBytes(input), chunk), Escapes.Unescape(delimiter), trimCr);
        var records = new List<string>();
        while (await reader.ReadAsync(CancellationToken.None) is { } r) records.Add(Encoding.UTF8.GetString(r));
        return records;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task Delimited_reader_splits_at_every_delimiter_across_reads(int chunk)
    {
        Assert.Equal(["a", "bb", "", "ccc"], await Split("a\nbb\n\nccc\n", "\\n", true, chunk));
        Assert.Equal(["a", "b"], await Split("a\r\nb", "\\n", true, chunk));
        Assert.Equal(["a\r", "b"], await Split("a\r;b;", ";", false, chunk));
        Assert.Equal(["x", "y;z", "w"], await Split("x;;y;z;;w;;", ";;", false, chunk));
        Assert.Equal(["k1:v1", "k2:v2"], await Split("k1:v1\0k2:v2\0", "\\0", false, chunk));
        Assert.Empty(await Split("", "\\n", true, chunk));
    }

    [Fact]
    public async Task Delimited_reader_keeps_records_larger_than_its_buffer()
    {
        var big = new string('x', 200_000);
        Assert.Equal([big, "y"], await Split(big + "|y", "|", false, 70_000));
    }

    private static ConsumeResult Record(string? key, byte[]? value, long timestampMs, long offset = 42) =>
        new(new TopicPartition("orders", 3), offset, DateTimeOffset.FromUnixTimeMilliseconds(timestampMs), TimestampType.CreateTime,
            // Typed nulls: a null byte[] would convert to an empty memory.
            key is null ? default(ReadOnlyMemory<byte>?) : Encoding.UTF8.GetBytes(key), value is null ? default(ReadOnlyMemory<byte>?) : value, [new RecordHeader("h", Encoding.UTF8.GetBytes("v"))], null, false);

    private static string Render(RecordFormat format, ConsumeResult r)
    {
        using var output = new MemoryStream();
        format.Write(output, r);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    [Fact]
    public void Format_prints_iso_timestamps_and_hex_or_base64_keys_and_values()
    {
        var r = Record("k1", [0x00, 0xff, 0x41], 1_767_323_045_123);
        Assert.Equal("orders/3@42 2026-01-02T03:04:05.123Z 1767323045123 h=v\n",
            Render(RecordFormat.Parse("%t/%p@%o %D %T %h\\n"), r));
        Assert.Equal("6b31 00ff41 2 3", Render(RecordFormat.Parse("%k %v %K %V", BinaryEncoding.Hex, BinaryEncoding.Hex), r));
        Assert.Equal("azE= AP9B", Render(RecordFormat.Parse("%k %s", BinaryEncoding.Base64, BinaryEncoding.Base64), r));
        Assert.Equal("k1\t\u0000\u00ffA", Render(RecordFormat.Parse("%k\\t%v"), r).Replace("\ufffd", "\u00ff"));
        Assert.Equal("[] -1 -1 100% 😀", Render(RecordFormat.Parse("[%k] %K %V 100%% 😀"), Record(null, null, 0)));
        var e = Assert.Throws<UsageException>(() => RecordFormat.Parse("%x"));
        Assert.Contains("unknown field '%x'", e.Message);
        Assert.Contains("%D", e.Message);
        Assert.Throws<UsageException>(() => RecordFormat.ParseEncoding("binary", "--value-format"));
        Assert.Equal(BinaryEncoding.Base64, RecordFormat.ParseEncoding("BASE64", "--value-format"));
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("5s", 5000)]
    [InlineData("1.5s", 1500)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("3", 3000)]
    [InlineData("PT30S", 30_000)]
    public void Durations_parse(string text, long ms) => Assert.Equal(TimeSpan.FromMilliseconds(ms), CliValues.ParseDuration(text, "--idle-timeout"));

    [Theory]
    [InlineData("")]
    [InlineData("5x")]
    [InlineData("0s")]
    [InlineData("-1s")]
    [InlineData("P")]
    public void Bad_durations_are_usage_errors_naming_the_option(string text) =>
        Assert.Contains("--idle-timeout", Assert.Throws<UsageException>(() => CliValues.ParseDuration(text, "--idle-timeout")).Message);

    [Fact]
    public void Timestamps_and_until_parse()
    {
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), CliValues.ParseTimestamp("1700000000000", "--timestamp"));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), CliValues.ParseTimestamp("@1700000000000", "--timestamp"));
        Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), CliValues.ParseTimestamp("2026-01-02T03:04:05Z", "--timestamp"));
        Assert.Contains("--timestamp", Assert.Throws<UsageException>(() => CliValues.ParseTimestamp("yesterday", "--timestamp")).Message);
        Assert.Contains("out of range", Assert.Throws<UsageException>(() => CliValues.ParseTimestamp("99999999999999999999", "--timestamp")).Message);

        Assert.Equal(new ConsumeCommand.UntilSpec(7, null), ConsumeCommand.UntilSpec.Parse("7"));
        Assert.Equal(new ConsumeCommand.UntilSpec(null, DateTimeOffset.FromUnixTimeMilliseconds(5)), ConsumeCommand.UntilSpec.Parse("@5"));
        Assert.Null(ConsumeCommand.UntilSpec.Parse(null));
        Assert.Contains("--until", Assert.Throws<UsageException>(() => ConsumeCommand.UntilSpec.Parse("2026-13-01")).Message);

        var byOffset = new ConsumeCommand.UntilSpec(2, null);
        Assert.False(byOffset.IsBeyond(Record("k", [1], 0, offset: 0)));
        Assert.False(byOffset.EndsAfter(Record("k", [1], 0, offset: 0)));
        Assert.False(byOffset.IsBeyond(Record("k", [1], 0, offset: 1)));
        Assert.True(byOffset.EndsAfter(Record("k", [1], 0, offset: 1)));
        Assert.True(byOffset.IsBeyond(Record("k", [1], 0, offset: 2)));
        Assert.False(byOffset.IsBeyond(Record("k", [1], 100_000_000_000_000, offset: 1)));
        var byTime = new ConsumeCommand.UntilSpec(null, DateTimeOffset.FromUnixTimeMilliseconds(1000));
        Assert.True(byTime.IsBeyond(Record("k", [1], 1000)));
        Assert.False(byTime.IsBeyond(Record("k", [1], 999)));
        Assert.True(byTime.DoneAtEnd(0, DateTimeOffset.FromUnixTimeMilliseconds(1000)));
        Assert.False(byTime.DoneAtEnd(0, DateTimeOffset.FromUnixTimeMilliseconds(999)));
        Assert.True(byOffset.DoneAtEnd(2, DateTimeOffset.UnixEpoch));
        Assert.False(byOffset.DoneAtEnd(1, DateTimeOffset.UnixEpoch));
    }
}
