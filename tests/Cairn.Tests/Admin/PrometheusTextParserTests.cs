namespace Cairn.Tests.Admin;

/// <summary>The test parser must be strict, or the exporter tests prove nothing: each malformed input is rejected.</summary>
public class PrometheusTextParserTests
{
    private const string Valid = """
        # HELP c_total A counter with a \\ backslash and a \n newline
        # TYPE c_total counter
        c_total{api="Produce"} 3
        c_total{api="Fetch",x="a\"b\\c\nd"} 1 1700000000000
        # TYPE g gauge
        g -1.5e3
        # a comment
        # TYPE h histogram
        h_bucket{le="0.1"} 1
        h_bucket{le="1"} 2
        h_bucket{le="+Inf"} 3
        h_sum 4.5
        h_count 3

        """;

    [Fact]
    public void Accepts_valid_exposition_and_reads_it()
    {
        var families = PrometheusTextParser.Parse(Valid.Replace("\r\n", "\n"));
        Assert.Equal("counter", families["c_total"].Type);
        Assert.Equal("A counter with a \\ backslash and a \n newline", families["c_total"].Help);
        Assert.Equal("a\"b\\c\nd", families.Single("c_total", ("api", "Fetch"), ("x", "a\"b\\c\nd")).Label("x"));
        Assert.Equal(1700000000000, families.Single("c_total", ("api", "Fetch"), ("x", "a\"b\\c\nd")).Timestamp);
        Assert.Equal(-1500, families.Single("g").Value);
        Assert.Equal(3, families.Single("h_count").Value);
        Assert.Equal(2, families.Single("h_bucket", ("le", "1")).Value);
    }

    [Theory]
    [InlineData("# TYPE g gauge\ng 1", "line feed")]
    [InlineData("g 1\n", "no TYPE")]
    [InlineData("# TYPE g gauge\ng 1\n# TYPE g gauge\n", "after its samples")]
    [InlineData("# TYPE g gauge\n# TYPE g counter\ng 1\n", "second TYPE")]
    [InlineData("# HELP g x\n# HELP g y\n# TYPE g gauge\ng 1\n", "second HELP")]
    [InlineData("# TYPE g gauge\ng 1\ng 2\n", "duplicate series")]
    [InlineData("# TYPE g gauge\ng{a=\"1\",b=\"2\"} 1\ng{b=\"2\",a=\"1\"} 2\n", "duplicate series")]
    [InlineData("# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n", "duplicate label")]
    [InlineData("# TYPE g gauge\ng{a=\"\\t\"} 1\n", "invalid escape")]
    [InlineData("# TYPE g gauge\ng{a=\"x} 1\n", "unterminated")]
    [InlineData("# TYPE g gauge\ng{1a=\"x\"} 1\n", "bad label name")]
    [InlineData("# TYPE g gauge\ng{__a=\"x\"} 1\n", "reserved")]
    [InlineData("# TYPE g gauge\ng{a=x} 1\n", "expected \"")]
    [InlineData("# TYPE g gauge\ng one\n", "bad value")]
    [InlineData("# TYPE g gauge\ng 1 2.5\n", "bad timestamp")]
    [InlineData("# TYPE g gauge\ng 1 2 3\n", "optional timestamp")]
    [InlineData("# TYPE g gauge\ng{a=\"x\"}1\n", "whitespace")]
    [InlineData("# TYPE 1g gauge\n", "bad metric name")]
    [InlineData("# TYPE g gauges\n", "unknown type")]
    [InlineData("# TYPE c counter\nc -1\n", "negative")]
    [InlineData("# TYPE c counter\nc_total 1\n", "no TYPE")]
    [InlineData("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 2\n", "kept together")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "+Inf")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", "not cumulative")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", "does not increase")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", "_count")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", "no _sum")]
    [InlineData("# TYPE h histogram\nh_bucket 1\n", "without le")]
    [InlineData("# TYPE h histogram\nh 1\n", "not _bucket")]
    [InlineData("# HELP g bad \\q escape\n# TYPE g gauge\ng 1\n", "invalid escape")]
    [InlineData("# TYPE g gauge\r\ng 1\r\n", "carriage return")]
    public void Rejects_malformed_exposition(string text, string expected)
    {
        var e = Assert.Throws<PrometheusTextParser.FormatError>(() => PrometheusTextParser.Parse(text));
        Assert.Contains(expected, e.Message);
    }
}
