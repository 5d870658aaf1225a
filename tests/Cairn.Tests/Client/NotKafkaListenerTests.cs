using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Cairn.Client;
using Cairn.Protocol;

namespace Cairn.Tests.Client;

/// <summary>Bootstrap addresses that are not Kafka listeners: the error says what answered, not a frame size.</summary>
public sealed class NotKafkaListenerTests
{
    /// <summary>Accepts connections, reads the request's first bytes and answers <paramref name="reply"/>, then closes.</summary>
    private static async Task<KafkaException> ListTopicsAgainstAsync(byte[] reply)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var serving = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    using var socket = await listener.AcceptSocketAsync();
                    var buffer = new byte[4096];
                    _ = await socket.ReceiveAsync(buffer);
                    await socket.SendAsync(reply);
                    socket.Shutdown(SocketShutdown.Both);
                }
            }
            catch (Exception) { }
        });
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            await using var admin = new KafkaAdminClient(new KafkaClientOptions
            {
                BootstrapServers = $"127.0.0.1:{port}", RequestTimeout = TimeSpan.FromSeconds(60), Retries = 2, RetryBackoff = TimeSpan.FromMilliseconds(10),
            });
            var sw = Stopwatch.StartNew();
            var e = await Assert.ThrowsAnyAsync<KafkaException>(() => admin.ListTopicsAsync());
            Assert.InRange(sw.ElapsedMilliseconds, 0, 30_000); // not retried into the request timeout (60 s; generous for a loaded box)
            Assert.False(e.IsRetriable, e.ToString());
            Assert.Contains($"127.0.0.1:{port}", e.Message);
            return e;
        }
        finally
        {
            listener.Stop();
            await serving.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public async Task An_http_server_is_recognised()
    {
        var e = await ListTopicsAgainstAsync(Encoding.ASCII.GetBytes("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        Assert.EndsWith("answered like HTTP; is this the admin port?", e.Message);
        Assert.DoesNotContain("1213486160", e.Message);
    }

    [Fact]
    public async Task An_absurd_frame_size_is_not_a_kafka_broker()
    {
        var reply = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(reply, int.MaxValue);
        var e = await ListTopicsAgainstAsync(reply);
        Assert.Contains("did not answer like a Kafka broker", e.Message);
        Assert.Equal(ErrorCode.UnknownServerError, e.Error);
    }

    [Fact]
    public async Task A_refused_connection_says_so_in_one_line()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var admin = new KafkaAdminClient(new KafkaClientOptions { BootstrapServers = $"127.0.0.1:{port}", Retries = 0 });
        var e = await Assert.ThrowsAsync<KafkaException>(() => admin.ListTopicsAsync());
        Assert.Equal(ErrorCode.NetworkException, e.Error);
        Assert.Equal($"cannot connect to 127.0.0.1:{port}: connection refused", e.Message);
    }
}
