using System.Buffers.Binary;

namespace Cairn.Storage;

/// <summary>
/// Sparse offset index of one segment, held in memory and mirrored to the .index file (8 bytes per
/// entry: relative offset int32, file position int32, big-endian). Each entry names the start of a
/// batch: the batch's base offset relative to the segment and its position in the .log file.
/// One writer (under the partition's append lock), any number of lock-free readers: the entry array
/// is published before the count, and a reader reads the count first.
/// </summary>
internal sealed class OffsetIndex
{
    public const int EntrySize = 8;

    internal struct Entry
    {
        public int RelativeOffset;
        public int Position;
    }

    private Entry[] _entries;
    private int _count;

    public OffsetIndex(int capacity = 16) => _entries = new Entry[Math.Max(capacity, 4)];

    public int Count => Volatile.Read(ref _count);

    public Entry this[int i] => Volatile.Read(ref _entries)[i];

    public Entry Last => this[Count - 1];

    public void Append(int relativeOffset, int position)
    {
        int n = _count;
        var arr = _entries;
        if (n == arr.Length)
        {
            var bigger = new Entry[arr.Length * 2];
            Array.Copy(arr, bigger, n);
            Volatile.Write(ref _entries, bigger);
            arr = bigger;
        }
        arr[n].RelativeOffset = relativeOffset;
        arr[n].Position = position;
        Volatile.Write(ref _count, n + 1);
    }

    /// <summary>File position of the last indexed batch whose base offset is at or before <paramref name="relativeOffset"/>, or 0.</summary>
    public int LookupPosition(long relativeOffset)
    {
        int n = Count;
        var arr = Volatile.Read(ref _entries);
        int lo = 0, hi = n - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (arr[mid].RelativeOffset <= relativeOffset) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? 0 : arr[found].Position;
    }

    /// <summary>The largest indexed batch start position at or before <paramref name="position"/>, or 0.</summary>
    public int LookupBoundaryAtOrBefore(long position)
    {
        int n = Count;
        var arr = Volatile.Read(ref _entries);
        int lo = 0, hi = n - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (arr[mid].Position <= position) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? 0 : arr[found].Position;
    }

    public byte[] Serialize(int from = 0)
    {
        var bytes = new byte[(Count - from) * EntrySize];
        SerializeInto(bytes, from);
        return bytes;
    }

    /// <summary>Writes entries [from, Count) into <paramref name="dest"/>; returns bytes written.</summary>
    public int SerializeInto(Span<byte> dest, int from)
    {
        int n = Count, w = 0;
        for (int i = from; i < n; i++, w += EntrySize)
        {
            BinaryPrimitives.WriteInt32BigEndian(dest[w..], _entries[i].RelativeOffset);
            BinaryPrimitives.WriteInt32BigEndian(dest[(w + 4)..], _entries[i].Position);
        }
        return w;
    }

    /// <summary>
    /// Parses an index file. Returns null when it is damaged: size not a multiple of the entry size,
    /// offsets or positions not strictly increasing, negative, or a position at or past <paramref name="logSize"/>.
    /// </summary>
    public static OffsetIndex? TryParse(ReadOnlySpan<byte> bytes, long logSize, long maxRelativeOffset)
    {
        if (bytes.Length % EntrySize != 0) return null;
        int n = bytes.Length / EntrySize;
        var index = new OffsetIndex(n + 16);
        long prevRel = -1, prevPos = -1;
        for (int i = 0; i < n; i++)
        {
            int rel = BinaryPrimitives.ReadInt32BigEndian(bytes[(i * EntrySize)..]);
            int pos = BinaryPrimitives.ReadInt32BigEndian(bytes[(i * EntrySize + 4)..]);
            if (rel <= prevRel || pos <= prevPos || rel < 0 || pos < 0 || pos >= logSize || rel > maxRelativeOffset) return null;
            index.Append(rel, pos);
            prevRel = rel;
            prevPos = pos;
        }
        return index;
    }
}

/// <summary>
/// Time index of one segment, in memory and mirrored to the .timeindex file (12 bytes per entry:
/// timestamp int64, relative offset int32, big-endian). An entry (t, o) means: no record at or before
/// offset o has a timestamp above t, and the batch holding o has max timestamp t. Timestamps strictly increase.
/// </summary>
internal sealed class TimeIndex
{
    public const int EntrySize = 12;

    internal struct Entry
    {
        public long Timestamp;
        public int RelativeOffset;
    }

    private Entry[] _entries;
    private int _count;

    public TimeIndex(int capacity = 16) => _entries = new Entry[Math.Max(capacity, 4)];

    public int Count => Volatile.Read(ref _count);

    public Entry this[int i] => Volatile.Read(ref _entries)[i];

    public long LastTimestamp => Count == 0 ? -1 : this[Count - 1].Timestamp;

    /// <summary>Appends when <paramref name="timestamp"/> is above the last indexed timestamp; returns whether it did.</summary>
    public bool MaybeAppend(long timestamp, int relativeOffset)
    {
        int n = _count;
        if (timestamp <= (n == 0 ? -1 : _entries[n - 1].Timestamp)) return false;
        if (n > 0 && relativeOffset < _entries[n - 1].RelativeOffset) return false;
        var arr = _entries;
        if (n == arr.Length)
        {
            var bigger = new Entry[arr.Length * 2];
            Array.Copy(arr, bigger, n);
            Volatile.Write(ref _entries, bigger);
            arr = bigger;
        }
        arr[n].Timestamp = timestamp;
        arr[n].RelativeOffset = relativeOffset;
        Volatile.Write(ref _count, n + 1);
        return true;
    }

    /// <summary>
    /// Relative offset of the last entry whose timestamp is strictly below <paramref name="timestamp"/>:
    /// every record up to and including that offset is older than the target. -1 when there is none.
    /// </summary>
    public long LookupBefore(long timestamp)
    {
        int n = Count;
        var arr = Volatile.Read(ref _entries);
        int lo = 0, hi = n - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (arr[mid].Timestamp < timestamp) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? -1 : arr[found].RelativeOffset;
    }

    public byte[] Serialize(int from = 0)
    {
        var bytes = new byte[(Count - from) * EntrySize];
        SerializeInto(bytes, from);
        return bytes;
    }

    public int SerializeInto(Span<byte> dest, int from)
    {
        int n = Count, w = 0;
        for (int i = from; i < n; i++, w += EntrySize)
        {
            BinaryPrimitives.WriteInt64BigEndian(dest[w..], _entries[i].Timestamp);
            BinaryPrimitives.WriteInt32BigEndian(dest[(w + 8)..], _entries[i].RelativeOffset);
        }
        return w;
    }

    /// <summary>Parses a time index file; null when damaged (bad size, not increasing, offset out of the segment).</summary>
    public static TimeIndex? TryParse(ReadOnlySpan<byte> bytes, long maxRelativeOffset)
    {
        if (bytes.Length % EntrySize != 0) return null;
        int n = bytes.Length / EntrySize;
        var index = new TimeIndex(n + 16);
        long prevTs = -1, prevRel = -1;
        for (int i = 0; i < n; i++)
        {
            long ts = BinaryPrimitives.ReadInt64BigEndian(bytes[(i * EntrySize)..]);
            int rel = BinaryPrimitives.ReadInt32BigEndian(bytes[(i * EntrySize + 8)..]);
            if (ts <= prevTs || rel < prevRel || rel < 0 || rel > maxRelativeOffset) return null;
            index.MaybeAppend(ts, rel);
            prevTs = ts;
            prevRel = rel;
        }
        return index;
    }
}
