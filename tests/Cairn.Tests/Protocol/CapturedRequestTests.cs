using System.Text.Json;
using Cairn.Protocol;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Schema;

namespace Cairn.Tests.Protocol;

/// <summary>
/// Request frames captured from kcat (librdkafka 2.0), kafka-python 2.0 and kafkajs 2.2 through a logging proxy
/// in front of Cairn: each must decode to its last byte and encode back to the very same bytes.
/// </summary>
public class CapturedRequestTests
{
    private sealed record Captured(string Client, short Api, short Version, string Hex);

    public static IEnumerable<object[]> Frames()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Protocol", "captured-requests.json");
        var frames = JsonSerializer.Deserialize<List<Captured>>(File.ReadAllText(path), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        return frames.Select(f => new object[] { f.Client, (ApiKey)f.Api, f.Version, f.Hex });
    }

    [Theory]
    [MemberData(nameof(Frames))]
    public void Real_client_requests_decode_fully_and_encode_back_identically(string client, ApiKey api, short version, string hex)
    {
        var frame = Convert.FromHexString(hex);
        var reader = new KafkaReader(frame);
        var header = RequestHeader.Read(reader);
        Assert.Equal((api, version), (header.ApiKey, header.ApiVersion));
        Assert.False(string.IsNullOrEmpty(header.ClientId), $"{client} sends a client id");

        var type = MessageCatalog.Request(api)!.Type;
        var read = typeof(MessageSerializer).GetMethod(nameof(MessageSerializer.Read), [typeof(KafkaReader), typeof(short)])!.MakeGenericMethod(type);
        var message = read.Invoke(null, [reader, version])!;
        Assert.Equal(frame.Length, reader.Position);

        using var writer = new KafkaWriter();
        header.Write(writer);
        typeof(MessageSerializer).GetMethod(nameof(MessageSerializer.Write))!.MakeGenericMethod(type).Invoke(null, [writer, message, version]);
        Assert.Equal(hex, Convert.ToHexString(writer.WrittenSpan), ignoreCase: true);
    }
}
