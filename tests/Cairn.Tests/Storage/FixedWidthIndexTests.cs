using Cairn.Storage;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Tests.Storage;

/// <summary>The generic index alone: order rules, lookups, parsing and the persisted tail, for both entry layouts.</summary>
public sealed class FixedWidthIndexTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static FixedWidthIndex<OffsetIndexEntry> Offsets(params (int Rel, int Pos)[] entries)
    {
        var index = new FixedWidthIndex<OffsetIndexEntry>(capacity: 1);
        foreach (var (rel, pos) in entries) index.Append(new OffsetIndexEntry(rel, pos));
        return index;
    }

    [Fact]
    public void Offset_lookups_find_the_last_entry_at_or_before()
    {
        var index = Offsets((10, 100), (20, 250), (35, 400));
        Assert.Equal(0, index.LookupPosition(9));
        Assert.Equal(100, index.LookupPosition(10));
        Assert.Equal(250, index.LookupPosition(34));
        Assert.Equal(400, index.LookupPosition(1_000));
        Assert.Equal(0, index.LookupBoundaryAtOrBefore(99));
        Assert.Equal(250, index.LookupBoundaryAtOrBefore(399));
        Assert.Equal(400, index.LookupBoundaryAtOrBefore(400));
        Assert.Equal(0, Offsets().LookupPosition(5));
    }

    [Fact]
    public void Time_entries_are_appended_only_when_they_keep_the_order()
    {
        var index = new FixedWidthIndex<TimeIndexEntry>();
        Assert.False(index.TryAppend(new TimeIndexEntry(-1, 0)));   // no timestamp
        Assert.True(index.TryAppend(new TimeIndexEntry(100, 3)));
        Assert.False(index.TryAppend(new TimeIndexEntry(100, 5)));  // timestamp must increase
        Assert.False(index.TryAppend(new TimeIndexEntry(150, 2)));  // offset must not go back
        Assert.True(index.TryAppend(new TimeIndexEntry(150, 3)));
        Assert.True(index.TryAppend(new TimeIndexEntry(900, 40)));
        Assert.Equal(3, index.Count);
        Assert.Equal(-1, index.LookupBefore(100));
        Assert.Equal(3, index.LookupBefore(101));
        Assert.Equal(3, index.LookupBefore(900));
        Assert.Equal(40, index.LookupBefore(long.MaxValue));
    }

    [Fact]
    public void Serialize_and_parse_round_trip_and_growth_keeps_entries()
    {
        var index = Offsets();
        for (int i = 1; i <= 100; i++) index.Append(new OffsetIndexEntry(i * 2, i * 50));
        var bytes = index.Serialize();
        Assert.Equal(100 * 8, bytes.Length);
        var parsed = FixedWidthIndex<OffsetIndexEntry>.TryParse(bytes, logSize: 100 * 50 + 1, maxRelativeOffset: 200);
        Assert.NotNull(parsed);
        Assert.Equal(100, parsed.Count);
        for (int i = 0; i < 100; i++) Assert.Equal(index[i], parsed[i]);
        Assert.Equal(index.Serialize(40), parsed.Serialize(40));
    }

    [Fact]
    public void Parse_rejects_what_a_damaged_file_looks_like()
    {
        var good = Offsets((2, 10), (4, 20)).Serialize();
        Assert.NotNull(FixedWidthIndex<OffsetIndexEntry>.TryParse(good, 21, 4));
        Assert.Null(FixedWidthIndex<OffsetIndexEntry>.TryParse(good[..^1], 21, 4));       // partial entry
        Assert.Null(FixedWidthIndex<OffsetIndexEntry>.TryParse(good, 20, 4));             // position at the log end
        Assert.Null(FixedWidthIndex<OffsetIndexEntry>.TryParse(good, 21, 3));             // offset past the segment
        Assert.Null(FixedWidthIndex<OffsetIndexEntry>.TryParse(Offsets((4, 10), (2, 20)).Serialize(), 21, 4));
        Assert.Null(FixedWidthIndex<OffsetIndexEntry>.TryParse(Offsets((2, 20), (4, 20)).Serialize(), 21, 4));

        var time = new FixedWidthIndex<TimeIndexEntry>();
        time.Append(new TimeIndexEntry(50, 1));
        time.Append(new TimeIndexEntry(40, 2)); // out of order: Append does not check, the parser must
        Assert.Null(FixedWidthIndex<TimeIndexEntry>.TryParse(time.Serialize(), 0, 10));
        Assert.Null(FixedWidthIndex<TimeIndexEntry>.TryParse(time.Serialize(1), 0, 1)); // offset past the segment
        Assert.NotNull(FixedWidthIndex<TimeIndexEntry>.TryParse(time.Serialize(1), 0, 2));
    }

    [Fact]
    public void Write_tail_appends_only_the_new_entries_at_their_place()
    {
        var path = Path.Combine(_dir.Sub("tail"), "x.timeindex");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var index = new FixedWidthIndex<TimeIndexEntry>();
        using (SafeFileHandle file = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite))
        {
            int persisted = 0;
            for (int i = 0; i < 3; i++) index.TryAppend(new TimeIndexEntry(1000 + i, i));
            persisted = index.WriteTail(file, persisted);
            Assert.Equal(3, persisted);
            Assert.Equal(3, index.WriteTail(file, persisted)); // nothing new: nothing written
            // More than fits on the stack at once.
            for (int i = 3; i < 200; i++) index.TryAppend(new TimeIndexEntry(1000 + i, i));
            persisted = index.WriteTail(file, persisted);
            Assert.Equal(200, persisted);
        }
        Assert.Equal(index.Serialize(), File.ReadAllBytes(path));
    }
}
