using System.Reflection;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Fuzz;

/// <summary>
/// The request decoder, as a connection runs it: one frame (without its 4-byte size) is a request header, then the body
/// of that API and version decoded through the message declarations. Refusals the broker turns into a closed connection
/// (<see cref="MalformedMessageException"/> and its subclasses, an unknown API or a version no message declares) are
/// expected; any other exception is a crash. A decoded message must also encode, decode again and encode to the same
/// bytes (what the broker echoes back in responses), and the bytes the broker decodes further are fed on: a JoinGroup's
/// consumer-protocol subscriptions, a SyncGroup's assignments, a Produce request's record batches.
/// </summary>
internal static class RequestTarget
{
    private delegate object Reader(KafkaReader reader, short version);
    private delegate void Writer(KafkaWriter writer, object message, short version);

    private static readonly Dictionary<ApiKey, (Reader Read, Writer Write)> Codecs = MessageCatalog.All
        .Where(d => d.Kind == MessageKind.Request)
        .ToDictionary(d => d.ApiKey, d => ((Reader, Writer))typeof(RequestTarget)
            .GetMethod(nameof(CodecsOf), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(d.Type).Invoke(null, null)!);

    private static (Reader, Writer) CodecsOf<T>() where T : class, new() =>
        ((r, v) => MessageSerializer.Read<T>(r, v), (w, m, v) => MessageSerializer.Write(w, (T)m, v));

    public static void Run(ReadOnlySpan<byte> input)
    {
        var frame = input.ToArray();
        var reader = new KafkaReader(frame);
        RequestHeader header;
        try
        {
            header = RequestHeader.Read(reader);
        }
        catch (MalformedMessageException)
        {
            return;
        }
        if (MessageCatalog.Request(header.ApiKey) is not { } descriptor || !descriptor.Versions.Contains(header.ApiVersion)) return;
        var (read, write) = Codecs[header.ApiKey];
        object message;
        try
        {
            message = read(reader, header.ApiVersion);
        }
        catch (MalformedMessageException)
        {
            return;
        }

        var once = Encode(write, message, header.ApiVersion);
        var again = new KafkaReader(once);
        var decodedAgain = read(again, header.ApiVersion);
        if (again.Remaining != 0)
            throw new InvalidOperationException($"{header.ApiKey} v{header.ApiVersion}: re-encoded body has {again.Remaining} bytes the decoder left");
        var twice = Encode(write, decodedAgain, header.ApiVersion);
        if (!once.AsSpan().SequenceEqual(twice))
            throw new InvalidOperationException($"{header.ApiKey} v{header.ApiVersion}: encoding is not stable: {Convert.ToHexString(once)} then {Convert.ToHexString(twice)}");

        switch (message)
        {
            case JoinGroupRequest join:
                foreach (var p in join.Protocols) Expect(() => ConsumerProtocol.ReadSubscription(p.Metadata));
                break;
            case SyncGroupRequest sync:
                foreach (var a in sync.Assignments) Expect(() => ConsumerProtocol.ReadAssignment(a.Assignment));
                break;
            case ProduceRequest produce:
                foreach (var t in produce.TopicData)
                    foreach (var p in t.PartitionData)
                        if (p.Records is MemoryRecords records) RecordsTarget.Run(records.Bytes.Span);
                break;
        }
    }

    private static byte[] Encode(Writer write, object message, short version)
    {
        using var writer = new KafkaWriter();
        write(writer, message, version);
        return writer.WrittenSpan.ToArray();
    }

    private static void Expect(Action decode)
    {
        try
        {
            decode();
        }
        catch (MalformedMessageException)
        {
        }
    }
}
