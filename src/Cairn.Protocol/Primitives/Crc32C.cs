using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Cairn.Protocol.Primitives;

/// <summary>CRC-32C (Castagnoli) as used by record batch v2, on the CPU's CRC instructions.</summary>
/// <remarks>
/// Every produced batch is checked once on append, so this runs over every byte a broker takes in. One chain of CRC
/// instructions is bound by their latency (about 3 cycles for 8 bytes, where the CPU could start one per cycle), so
/// input of three blocks or more is done as three independent chains over consecutive blocks, joined by shifting
/// the earlier chains' states past the later blocks (multiplication by x^(8·bytes) mod P, as zlib's crc32_combine).
/// </remarks>
public static class Crc32C
{
    private const uint Poly = 0x82F63B78; // reflected Castagnoli polynomial
    private const int Block = 1024;       // bytes per chain and round; a multiple of 8

    // Shift tables: ShiftN[j * 256 + v] is the state (v << 8j) moved past N bytes of zeros. The shift is linear in
    // the state, so a whole state moves by XOR-ing the entries of its four bytes.
    private static readonly uint[] Shift1 = ShiftTable(Block);
    private static readonly uint[] Shift2 = ShiftTable(2 * Block);

    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>Continues a running (non-inverted) CRC state; start with ~0u and invert at the end.</summary>
    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        if (data.Length >= 3 * Block && BitConverter.IsLittleEndian)
        {
            ref byte p = ref MemoryMarshal.GetReference(data);
            int rounds = data.Length / (3 * Block);
            for (int r = 0; r < rounds; r++)
            {
                uint a = state, b = 0, c = 0;
                for (int i = 0; i < Block; i += 8)
                {
                    a = BitOperations.Crc32C(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
                    b = BitOperations.Crc32C(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, Block + i)));
                    c = BitOperations.Crc32C(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, 2 * Block + i)));
                }
                state = Shift(Shift2, a) ^ Shift(Shift1, b) ^ c;
                p = ref Unsafe.Add(ref p, 3 * Block);
            }
            data = data[(rounds * 3 * Block)..];
        }
        return AppendSerial(state, data);
    }

    private static uint AppendSerial(uint state, ReadOnlySpan<byte> data)
    {
        var longs = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (var l in longs)
            state = BitOperations.Crc32C(state, BitConverter.IsLittleEndian ? l : BinaryPrimitives.ReverseEndianness(l));
        foreach (var b in data[(longs.Length * 8)..])
            state = BitOperations.Crc32C(state, b);
        return state;
    }

    private static uint Shift(uint[] table, uint state) =>
        table[(byte)state] ^ table[256 + (byte)(state >> 8)] ^ table[512 + (byte)(state >> 16)] ^ table[768 + (int)(state >> 24)];

    private static uint[] ShiftTable(int bytes)
    {
        uint k = PowerOfX(8L * bytes);
        var table = new uint[4 * 256];
        for (int j = 0; j < 4; j++)
            for (uint v = 0; v < 256; v++)
                table[j * 256 + (int)v] = MultiplyModP(k, v << (8 * j));
        return table;
    }

    /// <summary>x^n mod P in the reflected representation (x^0 is the top bit), by repeated squaring.</summary>
    private static uint PowerOfX(long n)
    {
        uint result = 1u << 31, square = 1u << 30; // x^0, x^1
        for (; n > 0; n >>= 1)
        {
            if ((n & 1) != 0) result = MultiplyModP(result, square);
            square = MultiplyModP(square, square);
        }
        return result;
    }

    /// <summary>a·b mod P for reflected polynomials (zlib's multmodp).</summary>
    private static uint MultiplyModP(uint a, uint b)
    {
        uint product = 0;
        for (uint m = 1u << 31; m != 0; m >>= 1)
        {
            if ((a & m) != 0) product ^= b;
            b = (b & 1) != 0 ? (b >> 1) ^ Poly : b >> 1;
        }
        return product;
    }
}
