using Cairn.Protocol.Primitives;

namespace Cairn.Tests.Records;

public class Crc32CTests
{
    [Fact]
    public void Matches_the_standard_check_value() =>
        // The CRC-32C "check" value from the CRC catalogue (also RFC 3720 appendix B.4's polynomial).
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));

    [Fact]
    public void Of_empty_input_is_zero() => Assert.Equal(0u, Crc32C.Compute([]));

    [Fact]
    public void Of_32_zero_bytes_matches_rfc3720() =>
        // RFC 3720 B.4: 32 bytes of zeros -> aa 36 91 8a (transmitted little-endian), i.e. 0x8A9136AA.
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));

    [Fact]
    public void Append_in_pieces_equals_one_shot()
    {
        var data = new byte[1000];
        new Random(1).NextBytes(data);
        uint state = ~0u;
        foreach (var chunk in data.Chunk(37)) state = Crc32C.Append(state, chunk);
        Assert.Equal(Crc32C.Compute(data), ~state);
    }

    [Fact]
    public void Three_chain_path_matches_a_bitwise_reference_at_every_length_around_its_rounds()
    {
        // Inputs of 3 KiB and more take the interleaved path; lengths on and beside the round boundaries, and an
        // unaligned start, must give exactly what the textbook bit-at-a-time CRC gives.
        var data = new byte[4 * 3072 + 64];
        new Random(7).NextBytes(data);
        foreach (int length in new[] { 0, 1, 7, 8, 3071, 3072, 3073, 3079, 6143, 6144, 6145, 9216, 4 * 3072 + 63 })
            foreach (int start in new[] { 0, 1 })
            {
                var slice = data.AsSpan(start, length);
                Assert.Equal(BitwiseReference(slice), Crc32C.Compute(slice));
            }
    }

    [Fact]
    public void Append_in_large_pieces_equals_one_shot()
    {
        var data = new byte[100_000];
        new Random(3).NextBytes(data);
        uint state = ~0u;
        foreach (var chunk in data.Chunk(7777)) state = Crc32C.Append(state, chunk);
        Assert.Equal(BitwiseReference(data), ~state);
    }

    private static uint BitwiseReference(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }
}
