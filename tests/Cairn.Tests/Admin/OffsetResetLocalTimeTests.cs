using Cairn.Admin.Model;

namespace Cairn.Tests.Admin;

/// <summary>
/// --to-datetime without a zone: the command line reads it in the local zone (Kafka's convention), the admin API in UTC;
/// a zone in the text (Z or an offset) always wins.
/// </summary>
public class OffsetResetLocalTimeTests
{
    private static readonly TimeZoneInfo Tokyo = TimeZoneInfo.FindSystemTimeZoneById("Asia/Tokyo");
    private static readonly TimeZoneInfo NewYork = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");

    private static DateTimeOffset Utc(int y, int mo, int d, int h, int mi = 0) => new(y, mo, d, h, mi, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("2024-05-01T10:00:00", 2024, 5, 1, 1)]      // UTC+9
    [InlineData("2024-05-01 10:00", 2024, 5, 1, 1)]
    [InlineData("2024-05-01", 2024, 4, 30, 15)]             // local midnight
    [InlineData("2024-05-01T10:00:00Z", 2024, 5, 1, 10)]    // the zone in the text wins
    [InlineData("2024-05-01T10:00:00+02:00", 2024, 5, 1, 8)]
    public void A_time_without_a_zone_is_in_the_given_zone(string text, int y, int mo, int d, int h)
    {
        Assert.Equal(Utc(y, mo, d, h), OffsetResetSpec.ParseDatetime(text, Tokyo));
        Assert.Equal(TimeSpan.Zero, OffsetResetSpec.ParseDatetime(text, Tokyo).Offset);
    }

    [Fact]
    public void Without_a_zone_to_read_in_it_is_UTC_as_the_admin_api_documents()
    {
        Assert.Equal(Utc(2024, 5, 1, 10), OffsetResetSpec.ParseDatetime("2024-05-01T10:00:00"));
        Assert.Equal(Utc(2024, 5, 1, 10), OffsetResetSpec.Parse("to-datetime", "2024-05-01T10:00:00").Datetime);
        Assert.Equal(Utc(2024, 5, 1, 1), OffsetResetSpec.Parse("to-datetime", "2024-05-01T10:00:00", Tokyo).Datetime);
    }

    [Fact]
    public void Daylight_saving_is_that_of_the_date()
    {
        Assert.Equal(Utc(2024, 1, 15, 15), OffsetResetSpec.ParseDatetime("2024-01-15T10:00:00", NewYork)); // EST, UTC-5
        Assert.Equal(Utc(2024, 7, 15, 14), OffsetResetSpec.ParseDatetime("2024-07-15T10:00:00", NewYork)); // EDT, UTC-4
    }

    [Fact]
    public void A_local_time_the_clocks_skip_is_refused_with_a_hint()
    {
        var e = Assert.Throws<FormatException>(() => OffsetResetSpec.ParseDatetime("2024-03-10T02:30:00", NewYork));
        Assert.Contains("does not exist", e.Message);
        Assert.Contains("2024-03-10T02:30:00Z", e.Message);
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("2024-13-01T10:00:00")]
    [InlineData("2024-05-01T25:00:00")]
    public void Bad_times_are_refused_in_any_zone(string text)
    {
        Assert.Contains("ISO-8601", Assert.Throws<FormatException>(() => OffsetResetSpec.ParseDatetime(text, Tokyo)).Message);
        Assert.Contains("ISO-8601", Assert.Throws<FormatException>(() => OffsetResetSpec.ParseDatetime(text)).Message);
    }
}
