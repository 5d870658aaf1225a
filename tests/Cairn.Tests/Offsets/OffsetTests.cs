using Cairn.Offsets;

namespace Cairn.Tests.Offsets;

public sealed class OffsetTests
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 20, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Kinds_and_values()
    {
        Assert.Equal(OffsetKind.Earliest, Offset.Earliest.Kind);
        Assert.Equal(OffsetKind.Latest, Offset.Latest.Kind);
        Assert.Equal(42, Offset.Sequence(42).SequenceValue);
        Assert.True(Offset.Sequence(0).IsSequence);
        Assert.Equal(Noon, Offset.Timestamp(Noon).TimestampValue);
        Assert.Equal("x", Offset.Custom("x").CustomValue);
        Assert.Equal(OffsetKind.Earliest, default(Offset).Kind);
    }

    [Fact]
    public void Invalid_values_and_wrong_kinds_throw_InvalidOffsetException()
    {
        Assert.Throws<InvalidOffsetException>(() => Offset.Sequence(-1));
        Assert.Throws<InvalidOffsetException>(() => Offset.Latest.SequenceValue);
        Assert.Throws<InvalidOffsetException>(() => Offset.Sequence(1).TimestampValue);
        Assert.Throws<InvalidOffsetException>(() => Offset.Sequence(1).CustomValue);
        Assert.Throws<ArgumentNullException>(() => Offset.Custom(null!));
        // Part of the hierarchy, so one catch covers every Cairn.Offsets failure.
        Assert.IsAssignableFrom<OffsetStoreException>(Assert.Throws<InvalidOffsetException>(() => Offset.Sequence(-5)));
    }

    [Fact]
    public void Timestamps_keep_the_instant_whatever_the_offset()
    {
        var local = new DateTimeOffset(2026, 11, 20, 14, 0, 0, TimeSpan.FromHours(2));
        Assert.Equal(Offset.Timestamp(Noon), Offset.Timestamp(local));
        Assert.Equal(TimeSpan.Zero, Offset.Timestamp(local).TimestampValue.Offset);
    }

    [Fact]
    public void Equality_is_by_content()
    {
        Assert.Equal(Offset.Sequence(5), Offset.Sequence(5));
        Assert.True(Offset.Sequence(5) == Offset.Sequence(5));
        Assert.True(Offset.Sequence(5) != Offset.Sequence(6));
        Assert.NotEqual(Offset.Sequence(0), Offset.Earliest);
        Assert.NotEqual(Offset.Custom("a"), Offset.Custom("A"));
        Assert.Equal(Offset.Custom("a").GetHashCode(), Offset.Custom("a").GetHashCode());
        Assert.False(Offset.Sequence(1).Equals("seq:1"));
        Assert.True(Offset.Sequence(1).Equals((object)Offset.Sequence(1)));
        Assert.Equal(3, new HashSet<Offset> { Offset.Sequence(1), Offset.Sequence(1), Offset.Latest, Offset.Custom("x") }.Count);
    }

    [Fact]
    public void Ordering_within_a_kind_and_earliest_latest_around_everything()
    {
        Assert.True(Offset.Sequence(1) < Offset.Sequence(2));
        Assert.True(Offset.Sequence(2) >= Offset.Sequence(2));
        Assert.True(Offset.Timestamp(Noon) < Offset.Timestamp(Noon.AddTicks(1)));
        foreach (var o in new[] { Offset.Sequence(0), Offset.Sequence(long.MaxValue), Offset.Timestamp(Noon), Offset.Custom("z") })
        {
            Assert.True(Offset.Earliest < o);
            Assert.True(o < Offset.Latest);
            Assert.True(Offset.AreComparable(o, Offset.Earliest));
        }
        Assert.True(Offset.Earliest < Offset.Latest);
        Assert.Equal(0, Offset.Custom("a").CompareTo(Offset.Custom("a")));
        Assert.Equal(
            [Offset.Earliest, Offset.Sequence(1), Offset.Sequence(3), Offset.Latest],
            new[] { Offset.Latest, Offset.Sequence(3), Offset.Earliest, Offset.Sequence(1) }.Order());
    }

    [Fact]
    public void Offsets_that_cannot_be_ordered_throw()
    {
        Assert.False(Offset.AreComparable(Offset.Sequence(1), Offset.Timestamp(Noon)));
        Assert.False(Offset.AreComparable(Offset.Custom("a"), Offset.Custom("b")));
        Assert.Throws<InvalidOffsetException>(() => Offset.Sequence(1) < Offset.Timestamp(Noon));
        Assert.Throws<InvalidOffsetException>(() => Offset.Custom("a").CompareTo(Offset.Custom("b")));
    }

    [Fact]
    public void Next_is_the_following_sequence()
    {
        Assert.Equal(Offset.Sequence(8), Offset.Sequence(7).Next());
        Assert.Equal(Offset.Sequence(1), Offset.Sequence(0).Next());
        Assert.Throws<InvalidOffsetException>(() => Offset.Latest.Next());
        Assert.Throws<InvalidOffsetException>(() => Offset.Timestamp(Noon).Next());
        Assert.Throws<OverflowException>(() => Offset.Sequence(long.MaxValue).Next());
    }

    [Theory]
    [InlineData("earliest")]
    [InlineData("latest")]
    [InlineData("seq:0")]
    [InlineData("seq:9223372036854775807")]
    [InlineData("ts:2026-11-20T10:00:00.0000000+00:00")]
    [InlineData("ts:0001-01-01T00:00:00.0000000+00:00")]
    [InlineData("custom:")]
    [InlineData("custom:custom:seq:1")]
    [InlineData("custom:line\nbreak ü")]
    public void Text_round_trips(string text)
    {
        var offset = Offset.Parse(text);
        Assert.Equal(text, offset.ToString());
        Assert.Equal(offset, Offset.Parse(offset.ToString()));
        Assert.True(Offset.TryParse(text, out var parsed));
        Assert.Equal(offset, parsed);
    }

    [Fact]
    public void Text_form_of_each_kind()
    {
        Assert.Equal("seq:42", Offset.Sequence(42).ToString());
        Assert.Equal("ts:2026-11-20T12:00:00.0000000+00:00", Offset.Timestamp(Noon).ToString());
        Assert.Equal("custom:abc", Offset.Custom("abc").ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Earliest")]
    [InlineData("seq:")]
    [InlineData("seq:-1")]
    [InlineData("seq:+1")]
    [InlineData("seq: 1")]
    [InlineData("seq:1.5")]
    [InlineData("seq:99999999999999999999")]
    [InlineData("ts:yesterday")]
    [InlineData("ts:2026-11-20")]
    [InlineData("42")]
    public void Malformed_text_is_rejected(string? text)
    {
        Assert.False(Offset.TryParse(text, out _));
        if (text is not null)
        {
            var ex = Assert.Throws<InvalidOffsetException>(() => Offset.Parse(text));
            Assert.Contains(text, ex.Message);
        }
    }

    [Fact]
    public void Kafka_sources_are_topic_slash_partition()
    {
        Assert.Equal("orders/3", OffsetSource.ForKafka("orders", 3));
        Assert.Equal(("orders", 3), OffsetSource.ParseKafka("orders/3"));
        // Topics cannot hold '/', but the partition is whatever follows the last one anyway.
        Assert.Equal(("a/b", 12), OffsetSource.ParseKafka("a/b/12"));
        Assert.True(OffsetSource.TryParseKafka(OffsetSource.ForKafka("t.x-y_z", 0), out var topic, out var partition));
        Assert.Equal(("t.x-y_z", 0), (topic, partition));
        foreach (var bad in new[] { "", "orders", "orders/", "/3", "orders/-1", "orders/x", "orders/ 1" })
        {
            Assert.False(OffsetSource.TryParseKafka(bad, out _, out _));
            Assert.Throws<ArgumentException>(() => OffsetSource.ParseKafka(bad));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => OffsetSource.ForKafka("orders", -1));
        Assert.ThrowsAny<ArgumentException>(() => OffsetSource.ForKafka("", 0));
    }
}
