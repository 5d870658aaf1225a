using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Cairn.Protocol.Primitives;

/// <summary>CRC-32C (Castagnoli) as used by record batch v2, on the CPU's CRC instructions.</summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>Continues a running (non-inverted) CRC state; start with ~0u and invert at the end.</summary>
    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        var longs = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (var l in longs)
            state = BitOperations.Crc32C(state, BitConverter.IsLittleEndian ? l : BinaryPrimitives.ReverseEndianness(l));
        foreach (var b in data[(longs.Length * 8)..])
            state = BitOperations.Crc32C(state, b);
        return state;
    }
}
