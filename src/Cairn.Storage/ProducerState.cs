using System.Buffers.Binary;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;

namespace Cairn.Storage;

/// <summary>
/// Idempotent-producer state of one partition: per producer id the current epoch and the last five
/// appended batches (first/last sequence, first/last offset). Guarded by the partition's append lock.
/// </summary>
internal sealed class ProducerStateManager
{
    public const int CachedBatches = 5;

    internal struct BatchMeta
    {
        public int FirstSeq;
        public int LastSeq;
        public long BaseOffset;
        public long LastOffset;
        public long Timestamp;
    }

    internal sealed class Entry
    {
        public short Epoch;
        public readonly BatchMeta[] Batches = new BatchMeta[CachedBatches];
        public int Count;
        public int Next;
        public BatchMeta Last => Batches[(Next + CachedBatches - 1) % CachedBatches];

        public void Add(in BatchMeta m)
        {
            Batches[Next] = m;
            Next = (Next + 1) % CachedBatches;
            if (Count < CachedBatches) Count++;
        }

        public void Clear() { Count = 0; Next = 0; }
    }

    public enum Check { Ok, Duplicate, OutOfOrderSequence, InvalidEpoch }

    private readonly Dictionary<long, Entry> _producers = new();

    public int Count => _producers.Count;

    public static int LastSequence(int baseSequence, int lastOffsetDelta) =>
        baseSequence > int.MaxValue - lastOffsetDelta ? lastOffsetDelta - (int.MaxValue - baseSequence) - 1 : baseSequence + lastOffsetDelta;

    private static bool InSequence(int lastSeq, int nextSeq) =>
        nextSeq == lastSeq + 1 || (lastSeq == int.MaxValue && nextSeq == 0);

    /// <summary>
    /// Checks batch <paramref name="i"/> of a request against the stored state (or against an earlier batch of
    /// the same producer in the same request). A duplicate of one of the cached batches yields its metadata.
    /// Unknown producers are accepted at any sequence (their state may have been removed with old segments).
    /// </summary>
    public Check Validate(ReadOnlySpan<BatchInfo> batches, int i, out BatchMeta duplicate)
    {
        duplicate = default;
        ref readonly var b = ref batches[i];
        int lastSeq = LastSequence(b.BaseSequence, b.LastOffsetDelta);
        for (int j = i - 1; j >= 0; j--)
        {
            ref readonly var prev = ref batches[j];
            if (prev.ProducerId != b.ProducerId || !prev.HasSequence) continue;
            if (b.ProducerEpoch < prev.ProducerEpoch) return Check.InvalidEpoch;
            if (b.ProducerEpoch > prev.ProducerEpoch) return b.BaseSequence == 0 ? Check.Ok : Check.OutOfOrderSequence;
            return InSequence(LastSequence(prev.BaseSequence, prev.LastOffsetDelta), b.BaseSequence) ? Check.Ok : Check.OutOfOrderSequence;
        }
        if (!_producers.TryGetValue(b.ProducerId, out var e)) return Check.Ok;
        if (b.ProducerEpoch < e.Epoch) return Check.InvalidEpoch;
        if (b.ProducerEpoch > e.Epoch) return b.BaseSequence == 0 ? Check.Ok : Check.OutOfOrderSequence;
        for (int k = 0; k < e.Count; k++)
        {
            ref readonly var m = ref e.Batches[k];
            if (m.FirstSeq == b.BaseSequence && m.LastSeq == lastSeq)
            {
                duplicate = m;
                return Check.Duplicate;
            }
        }
        if (e.Count == 0) return Check.Ok;
        return InSequence(e.Last.LastSeq, b.BaseSequence) ? Check.Ok : Check.OutOfOrderSequence;
    }

    public void Update(long producerId, short epoch, int baseSequence, int lastOffsetDelta, long baseOffset, long timestamp)
    {
        if (!_producers.TryGetValue(producerId, out var e))
        {
            e = new Entry { Epoch = epoch };
            _producers[producerId] = e;
        }
        else if (epoch != e.Epoch)
        {
            e.Epoch = epoch;
            e.Clear();
        }
        e.Add(new BatchMeta
        {
            FirstSeq = baseSequence,
            LastSeq = LastSequence(baseSequence, lastOffsetDelta),
            BaseOffset = baseOffset,
            LastOffset = baseOffset + lastOffsetDelta,
            Timestamp = timestamp,
        });
    }

    /// <summary>Replays one batch header read from disk (recovery).</summary>
    public void Replay(in RecordBatchHeader h)
    {
        if (h.ProducerId < 0 || h.BaseSequence < 0 || h.IsControl) return;
        if (_producers.TryGetValue(h.ProducerId, out var e) && h.ProducerEpoch < e.Epoch) return;
        Update(h.ProducerId, h.ProducerEpoch, h.BaseSequence, h.LastOffsetDelta, h.BaseOffset, h.MaxTimestamp);
    }

    /// <summary>Forgets producers whose last batch lies entirely before the log start offset.</summary>
    public void RemoveBefore(long logStartOffset)
    {
        List<long>? dead = null;
        foreach (var (pid, e) in _producers)
            if (e.Count > 0 && e.Last.LastOffset < logStartOffset) (dead ??= []).Add(pid);
        if (dead is null) return;
        foreach (var pid in dead) _producers.Remove(pid);
    }

    public void Clear() => _producers.Clear();

    public bool TryGetEpoch(long producerId, out short epoch)
    {
        epoch = -1;
        if (!_producers.TryGetValue(producerId, out var e)) return false;
        epoch = e.Epoch;
        return true;
    }

    // Snapshot (written at clean shutdown): magic, next offset, entries, CRC-32C of everything before it.
    private const int SnapshotMagic = 0x43505331; // "CPS1"

    public byte[] Serialize(long nextOffset)
    {
        int size = 4 + 8 + 4 + 4;
        foreach (var e in _producers.Values) size += 8 + 2 + 4 + e.Count * (4 + 4 + 8 + 8 + 8);
        var buf = new byte[size];
        var s = buf.AsSpan();
        BinaryPrimitives.WriteInt32BigEndian(s, SnapshotMagic);
        BinaryPrimitives.WriteInt64BigEndian(s[4..], nextOffset);
        BinaryPrimitives.WriteInt32BigEndian(s[12..], _producers.Count);
        int p = 16;
        foreach (var (pid, e) in _producers)
        {
            BinaryPrimitives.WriteInt64BigEndian(s[p..], pid); p += 8;
            BinaryPrimitives.WriteInt16BigEndian(s[p..], e.Epoch); p += 2;
            BinaryPrimitives.WriteInt32BigEndian(s[p..], e.Count); p += 4;
            for (int k = 0; k < e.Count; k++)
            {
                // oldest first, so replaying in order rebuilds the ring
                ref readonly var m = ref e.Batches[(e.Next - e.Count + k + 2 * CachedBatches) % CachedBatches];
                BinaryPrimitives.WriteInt32BigEndian(s[p..], m.FirstSeq); p += 4;
                BinaryPrimitives.WriteInt32BigEndian(s[p..], m.LastSeq); p += 4;
                BinaryPrimitives.WriteInt64BigEndian(s[p..], m.BaseOffset); p += 8;
                BinaryPrimitives.WriteInt64BigEndian(s[p..], m.LastOffset); p += 8;
                BinaryPrimitives.WriteInt64BigEndian(s[p..], m.Timestamp); p += 8;
            }
        }
        BinaryPrimitives.WriteUInt32BigEndian(s[p..], Crc32C.Compute(s[..p]));
        return buf;
    }

    /// <summary>Loads a snapshot if it is intact and was taken at <paramref name="expectedNextOffset"/>.</summary>
    public bool TryLoad(ReadOnlySpan<byte> s, long expectedNextOffset)
    {
        try
        {
            if (s.Length < 20 || BinaryPrimitives.ReadInt32BigEndian(s) != SnapshotMagic) return false;
            if (Crc32C.Compute(s[..^4]) != BinaryPrimitives.ReadUInt32BigEndian(s[^4..])) return false;
            if (BinaryPrimitives.ReadInt64BigEndian(s[4..]) != expectedNextOffset) return false;
            int n = BinaryPrimitives.ReadInt32BigEndian(s[12..]);
            int p = 16;
            var loaded = new Dictionary<long, Entry>(n);
            for (int i = 0; i < n; i++)
            {
                long pid = BinaryPrimitives.ReadInt64BigEndian(s[p..]); p += 8;
                var e = new Entry { Epoch = BinaryPrimitives.ReadInt16BigEndian(s[p..]) }; p += 2;
                int count = BinaryPrimitives.ReadInt32BigEndian(s[p..]); p += 4;
                if (count < 0 || count > CachedBatches) return false;
                for (int k = 0; k < count; k++)
                {
                    var m = new BatchMeta
                    {
                        FirstSeq = BinaryPrimitives.ReadInt32BigEndian(s[p..]),
                        LastSeq = BinaryPrimitives.ReadInt32BigEndian(s[(p + 4)..]),
                        BaseOffset = BinaryPrimitives.ReadInt64BigEndian(s[(p + 8)..]),
                        LastOffset = BinaryPrimitives.ReadInt64BigEndian(s[(p + 16)..]),
                        Timestamp = BinaryPrimitives.ReadInt64BigEndian(s[(p + 24)..]),
                    };
                    p += 32;
                    e.Add(m);
                }
                loaded[pid] = e;
            }
            _producers.Clear();
            foreach (var (k, v) in loaded) _producers[k] = v;
            return true;
        }
        catch (ArgumentOutOfRangeException)
        {
            return false;
        }
    }
}
