global using OffsetIndex = Cairn.Storage.FixedWidthIndex<Cairn.Storage.OffsetIndexEntry>;
global using TimeIndex = Cairn.Storage.FixedWidthIndex<Cairn.Storage.TimeIndexEntry>;

using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>
/// The layout of one entry of a <see cref="FixedWidthIndex{TEntry}"/>: its width and big-endian encoding in the
/// index file, and the order consecutive entries keep (what makes a loaded file trustworthy).
/// </summary>
internal interface IIndexEntry<TSelf> where TSelf : struct, IIndexEntry<TSelf>
{
    static abstract int Size { get; }
    /// <summary>The virtual entry before the first, so the first entry is checked by <see cref="Follows"/> too.</summary>
    static abstract TSelf BeforeFirst { get; }
    static abstract TSelf Read(ReadOnlySpan<byte> source);
    void Write(Span<byte> destination);
    /// <summary>Whether this entry may come right after <paramref name="previous"/>.</summary>
    bool Follows(in TSelf previous);
    /// <summary>Whether the entry points inside a segment of <paramref name="logSize"/> bytes ending at <paramref name="maxRelativeOffset"/>.</summary>
    bool IsWithin(long logSize, long maxRelativeOffset);
}

/// <summary>A binary-search question: true for a leading run of the entries, false for the rest.</summary>
internal interface IIndexProbe<TEntry>
{
    bool IsAtOrBefore(in TEntry entry);
}

/// <summary>
/// A sparse index of one segment with fixed-width entries, held in memory and mirrored to its file (entries
/// back to back, no header). One writer (under the partition's append lock), any number of lock-free readers:
/// the entry array is published before the count, and a reader reads the count first.
/// </summary>
internal sealed class FixedWidthIndex<TEntry> where TEntry : struct, IIndexEntry<TEntry>
{
    // Small tails are encoded on the stack: room for 64 offset entries or 43 time entries.
    private const int StackBytes = 516;

    private TEntry[] _entries;
    private int _count;

    public FixedWidthIndex(int capacity = 16) => _entries = new TEntry[Math.Max(capacity, 4)];

    public static int EntrySize => TEntry.Size;

    public int Count => Volatile.Read(ref _count);

    public TEntry this[int i] => Volatile.Read(ref _entries)[i];

    /// <summary>Appends without checking the order (the caller's rule already guarantees it).</summary>
    public void Append(in TEntry entry)
    {
        int n = _count;
        var arr = _entries;
        if (n == arr.Length)
        {
            var bigger = new TEntry[arr.Length * 2];
            Array.Copy(arr, bigger, n);
            Volatile.Write(ref _entries, bigger);
            arr = bigger;
        }
        arr[n] = entry;
        Volatile.Write(ref _count, n + 1);
    }

    /// <summary>Appends when the entry keeps the index's order after the last one; returns whether it did.</summary>
    public bool TryAppend(in TEntry entry)
    {
        int n = _count;
        if (!entry.Follows(n == 0 ? TEntry.BeforeFirst : _entries[n - 1])) return false;
        Append(entry);
        return true;
    }

    /// <summary>Position of the last entry the probe accepts (the probe accepts a leading run), or -1.</summary>
    public int FindLast<TProbe>(in TProbe probe) where TProbe : struct, IIndexProbe<TEntry>
    {
        int n = Count;
        var arr = Volatile.Read(ref _entries);
        int lo = 0, hi = n - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (probe.IsAtOrBefore(arr[mid])) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }

    /// <summary>The file image of entries [from, Count).</summary>
    public byte[] Serialize(int from = 0)
    {
        var bytes = new byte[(Count - from) * TEntry.Size];
        SerializeInto(bytes, from);
        return bytes;
    }

    /// <summary>Writes entries [from, Count) into <paramref name="dest"/>; returns bytes written.</summary>
    public int SerializeInto(Span<byte> dest, int from)
    {
        int n = Count, w = 0;
        for (int i = from; i < n; i++, w += TEntry.Size) _entries[i].Write(dest[w..]);
        return w;
    }

    /// <summary>Writes the entries from <paramref name="persisted"/> on at their place in <paramref name="file"/>; returns the new persisted count.</summary>
    public int WriteTail(SafeFileHandle file, int persisted)
    {
        int n = Count;
        if (n <= persisted) return persisted;
        int bytes = (n - persisted) * TEntry.Size;
        byte[]? rented = bytes > StackBytes ? ArrayPool<byte>.Shared.Rent(bytes) : null;
        try
        {
            Span<byte> buf = rented ?? stackalloc byte[StackBytes];
            int w = SerializeInto(buf, persisted);
            RandomAccess.Write(file, buf[..w], (long)persisted * TEntry.Size);
            return n;
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Parses an index file. Returns null when it is damaged: a partial trailing entry, entries out of order, or an
    /// entry pointing outside the segment (<see cref="IIndexEntry{TSelf}.IsWithin"/>).
    /// </summary>
    public static FixedWidthIndex<TEntry>? TryParse(ReadOnlySpan<byte> bytes, long logSize, long maxRelativeOffset)
    {
        if (bytes.Length % TEntry.Size != 0) return null;
        int n = bytes.Length / TEntry.Size;
        var index = new FixedWidthIndex<TEntry>(n + 16);
        var previous = TEntry.BeforeFirst;
        for (int i = 0; i < n; i++)
        {
            var entry = TEntry.Read(bytes[(i * TEntry.Size)..]);
            if (!entry.Follows(previous) || !entry.IsWithin(logSize, maxRelativeOffset)) return null;
            index.Append(entry);
            previous = entry;
        }
        return index;
    }
}

/// <summary>
/// An .index entry (8 bytes: relative offset int32, file position int32): the batch whose base offset is
/// segment base + <see cref="RelativeOffset"/> starts at <see cref="Position"/> in the .log file. Both strictly increase.
/// </summary>
internal readonly record struct OffsetIndexEntry(int RelativeOffset, int Position) : IIndexEntry<OffsetIndexEntry>
{
    public static int Size => 8;
    public static OffsetIndexEntry BeforeFirst => new(-1, -1);

    public static OffsetIndexEntry Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadInt32BigEndian(source), BinaryPrimitives.ReadInt32BigEndian(source[4..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, RelativeOffset);
        BinaryPrimitives.WriteInt32BigEndian(destination[4..], Position);
    }

    public bool Follows(in OffsetIndexEntry previous) => RelativeOffset > previous.RelativeOffset && Position > previous.Position;

    public bool IsWithin(long logSize, long maxRelativeOffset) =>
        RelativeOffset >= 0 && Position >= 0 && Position < logSize && RelativeOffset <= maxRelativeOffset;
}

/// <summary>
/// A .timeindex entry (12 bytes: timestamp int64, relative offset int32). (t, o) means: no record at or before
/// offset o has a timestamp above t, and the batch holding o has max timestamp t. Timestamps strictly increase,
/// offsets never decrease.
/// </summary>
internal readonly record struct TimeIndexEntry(long Timestamp, int RelativeOffset) : IIndexEntry<TimeIndexEntry>
{
    public static int Size => 12;
    public static TimeIndexEntry BeforeFirst => new(-1, -1);

    public static TimeIndexEntry Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadInt64BigEndian(source), BinaryPrimitives.ReadInt32BigEndian(source[8..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64BigEndian(destination, Timestamp);
        BinaryPrimitives.WriteInt32BigEndian(destination[8..], RelativeOffset);
    }

    public bool Follows(in TimeIndexEntry previous) => Timestamp > previous.Timestamp && RelativeOffset >= previous.RelativeOffset;

    // Time entries name offsets only; their positions come from the offset index.
    public bool IsWithin(long logSize, long maxRelativeOffset) => RelativeOffset >= 0 && RelativeOffset <= maxRelativeOffset;
}

/// <summary>The questions the read path asks the two indexes.</summary>
internal static class IndexLookups
{
    /// <summary>File position of the last indexed batch whose base offset is at or before <paramref name="relativeOffset"/>, or 0.</summary>
    public static int LookupPosition(this OffsetIndex index, long relativeOffset)
    {
        int i = index.FindLast(new OffsetAtOrBefore(relativeOffset));
        return i < 0 ? 0 : index[i].Position;
    }

    /// <summary>The largest indexed batch start position at or before <paramref name="position"/>, or 0.</summary>
    public static int LookupBoundaryAtOrBefore(this OffsetIndex index, long position)
    {
        int i = index.FindLast(new PositionAtOrBefore(position));
        return i < 0 ? 0 : index[i].Position;
    }

    /// <summary>
    /// Relative offset of the last entry whose timestamp is strictly below <paramref name="timestamp"/>: every record
    /// up to and including that offset is older than the target. -1 when there is none.
    /// </summary>
    public static long LookupBefore(this TimeIndex index, long timestamp)
    {
        int i = index.FindLast(new TimestampBefore(timestamp));
        return i < 0 ? -1 : index[i].RelativeOffset;
    }

    private readonly struct OffsetAtOrBefore(long relativeOffset) : IIndexProbe<OffsetIndexEntry>
    {
        public bool IsAtOrBefore(in OffsetIndexEntry entry) => entry.RelativeOffset <= relativeOffset;
    }

    private readonly struct PositionAtOrBefore(long position) : IIndexProbe<OffsetIndexEntry>
    {
        public bool IsAtOrBefore(in OffsetIndexEntry entry) => entry.Position <= position;
    }

    private readonly struct TimestampBefore(long timestamp) : IIndexProbe<TimeIndexEntry>
    {
        public bool IsAtOrBefore(in TimeIndexEntry entry) => entry.Timestamp < timestamp;
    }
}
