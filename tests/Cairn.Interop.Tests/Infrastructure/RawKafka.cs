using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cairn.Interop.Tests.Infrastructure;

/// <summary>
/// Hand-built Kafka frames over raw sockets (deliberately independent of Cairn.Protocol) for
/// malformed-input and framing tests.
/// </summary>
public static class RawKafka
{
    public const short ApiVersionsKey = 18;
    public const short UnsupportedVersion = 35;

    public static async Task<Socket> ConnectAsync(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        return s;
    }

    /// <summary>A framed ApiVersions request: header v1 for v0-v2, header v2 (flexible) for v3+.</summary>
    public static byte[] ApiVersionsRequest(int correlationId, short version, string clientId = "cairn-raw")
    {
        var body = new List<byte>();
        void I16(short v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteInt16BigEndian(b, v); body.AddRange(b.ToArray()); }
        void I32(int v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); body.AddRange(b.ToArray()); }
        void CompactString(string s) { var b = Encoding.UTF8.GetBytes(s); body.Add((byte)(b.Length + 1)); body.AddRange(b); }

        I16(ApiVersionsKey);
        I16(version);
        I32(correlationId);
        var id = Encoding.UTF8.GetBytes(clientId);
        I16((short)id.Length);
        body.AddRange(id);
        if (version >= 3)
        {
            body.Add(0); // header tagged fields
            CompactString("cairn-interop");
            CompactString("1.0");
            body.Add(0); // body tagged fields
        }
        return Frame(body.ToArray());
    }

    public static byte[] Frame(byte[] payload)
    {
        var f = new byte[payload.Length + 4];
        BinaryPrimitives.WriteInt32BigEndian(f, payload.Length);
        payload.CopyTo(f, 4);
        return f;
    }

    public static async Task SendAsync(Socket s, byte[] bytes)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var sent = 0;
        while (sent < bytes.Length)
            sent += await s.SendAsync(bytes.AsMemory(sent), SocketFlags.None, cts.Token);
    }

    /// <summary>Reads one size-prefixed response frame (bounded).</summary>
    public static async Task<byte[]> ReadFrameAsync(Socket s, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var size = new byte[4];
        await ReadExactlyAsync(s, size, cts.Token);
        var n = BinaryPrimitives.ReadInt32BigEndian(size);
        if (n < 0 || n > 64 * 1024 * 1024) throw new InvalidDataException($"response frame size {n}");
        var payload = new byte[n];
        await ReadExactlyAsync(s, payload, cts.Token);
        return payload;
    }

    private static async Task ReadExactlyAsync(Socket s, byte[] buffer, CancellationToken ct)
    {
        var got = 0;
        while (got < buffer.Length)
        {
            var n = await s.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, ct);
            if (n == 0) throw new EndOfStreamException($"connection closed after {got}/{buffer.Length} bytes");
            got += n;
        }
    }

    public sealed record ApiVersionsResponse(int CorrelationId, short ErrorCode, IReadOnlyList<(short Key, short Min, short Max)> Apis);

    /// <summary>Parses an ApiVersions response (always response header v0) of the given body version.</summary>
    public static ApiVersionsResponse ParseApiVersions(byte[] p, short version)
    {
        var pos = 0;
        int I32() { var v = BinaryPrimitives.ReadInt32BigEndian(p.AsSpan(pos)); pos += 4; return v; }
        short I16() { var v = BinaryPrimitives.ReadInt16BigEndian(p.AsSpan(pos)); pos += 2; return v; }
        uint UVarint()
        {
            uint v = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = p[pos++];
                v |= (uint)(b & 0x7f) << shift;
                if ((b & 0x80) == 0) return v;
            }
        }
        void SkipTags()
        {
            var n = UVarint();
            for (var i = 0; i < n; i++) { UVarint(); pos += (int)UVarint(); }
        }

        var corr = I32();
        var error = I16();
        var apis = new List<(short, short, short)>();
        var count = version >= 3 ? (int)UVarint() - 1 : I32();
        for (var i = 0; i < count; i++)
        {
            apis.Add((I16(), I16(), I16()));
            if (version >= 3) SkipTags();
        }
        return new ApiVersionsResponse(corr, error, apis);
    }

    /// <summary>Sends ApiVersions on the socket and checks the answer (correlation id, no error).</summary>
    public static async Task<ApiVersionsResponse> ApiVersionsAsync(Socket s, int correlationId, short version = 0)
    {
        await SendAsync(s, ApiVersionsRequest(correlationId, version));
        var r = ParseApiVersions(await ReadFrameAsync(s, TimeSpan.FromSeconds(10)), version);
        if (r.CorrelationId != correlationId)
            throw new InvalidDataException($"ApiVersions v{version}: correlation id {r.CorrelationId}, expected {correlationId}");
        if (r.ErrorCode != 0)
            throw new InvalidDataException($"ApiVersions v{version}: error code {r.ErrorCode}");
        return r;
    }

    /// <summary>
    /// True if the peer closes the connection (EOF or reset) within the timeout. Any bytes the
    /// broker sends first (an error response, say) are read and ignored.
    /// </summary>
    public static async Task<bool> IsClosedByPeerAsync(Socket s, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0) return true;
            }
        }
        catch (SocketException)
        {
            return true; // reset
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
