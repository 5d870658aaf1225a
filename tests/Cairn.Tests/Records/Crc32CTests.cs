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
}
