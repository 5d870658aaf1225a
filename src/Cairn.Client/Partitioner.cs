namespace Cairn.Client;

/// <summary>The partitioner of the Java client (and librdkafka's murmur2_random): murmur2 of the key, made positive, modulo the partition count.</summary>
public static class Partitioner
{
    /// <summary>Kafka's murmur2 (Utils.murmur2 in the Java client), seed 0x9747b28c.</summary>
    public static int Murmur2(ReadOnlySpan<byte> data)
    {
        int length = data.Length;
        const uint m = 0x5bd1e995;
        const int r = 24;
        uint h = 0x9747b28c ^ (uint)length;
        int length4 = length / 4;
        for (int i = 0; i < length4; i++)
        {
            int i4 = i * 4;
            uint k = data[i4] | ((uint)data[i4 + 1] << 8) | ((uint)data[i4 + 2] << 16) | ((uint)data[i4 + 3] << 24);
            k *= m;
            k ^= k >> r;
            k *= m;
            h *= m;
            h ^= k;
        }
        int tail = length & ~3;
        switch (length % 4)
        {
            case 3:
                h ^= (uint)data[tail + 2] << 16;
                goto case 2;
            case 2:
                h ^= (uint)data[tail + 1] << 8;
                goto case 1;
            case 1:
                h ^= data[tail];
                h *= m;
                break;
        }
        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return (int)h;
    }

    /// <summary>
    /// A partition for a record without key (the start of a sticky run): a random one among the partitions that have
    /// a leader, as Kafka's partitioners pick from availablePartitionsForTopic; any partition when none has one.
    /// Keyed records hash over all partitions instead (<see cref="ForKey"/>), so a key keeps its partition.
    /// </summary>
    internal static int ForUnkeyed(IReadOnlyList<Internal.PartitionMetadata> partitions, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions.Count, 1);
        int available = 0;
        foreach (var p in partitions) if (p.Leader >= 0) available++;
        if (available == 0) return partitions[random.Next(partitions.Count)].Partition;
        int pick = random.Next(available);
        foreach (var p in partitions)
            if (p.Leader >= 0 && pick-- == 0) return p.Partition;
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>The partition of a (non-null) key among <paramref name="partitionCount"/> partitions.</summary>
    public static int ForKey(ReadOnlySpan<byte> key, int partitionCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitionCount, 1);
        return (Murmur2(key) & 0x7fffffff) % partitionCount;
    }
}
