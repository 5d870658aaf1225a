using System.Security.Cryptography;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;

namespace Cairn.Fuzz;

/// <summary>
/// Turns request frames recorded by fuzz/capture/proxy.py into the seed corpus: a few frames for each client, API and
/// version (the smallest distinct ones, so the corpus stays small) under request/, and the distinct record-batch payloads
/// of their Produce requests under records/.
/// </summary>
internal static class Seeds
{
    private const int FramesPerKind = 3;
    private const int MaxFrameBytes = 32 * 1024;
    private const int MaxRecordsFiles = 60;

    public static int Write(string framesDir, string corpusDir)
    {
        var requestDir = Directory.CreateDirectory(Path.Combine(corpusDir, "request")).FullName;
        var recordsDir = Directory.CreateDirectory(Path.Combine(corpusDir, "records")).FullName;
        var frames = Directory.EnumerateFiles(framesDir).Select(File.ReadAllBytes).Where(f => f.Length <= MaxFrameBytes)
            .DistinctBy(Convert.ToHexString).Select(f => (Frame: f, Header: HeaderOf(f))).Where(x => x.Header is not null).ToList();
        int requests = 0, records = 0;
        foreach (var kind in frames.GroupBy(x => (Client: Sanitize(x.Header!.ClientId), x.Header!.ApiKey, x.Header.ApiVersion)))
        {
            int i = 0;
            foreach (var (frame, _) in kind.OrderBy(x => x.Frame.Length).Take(FramesPerKind))
            {
                File.WriteAllBytes(Path.Combine(requestDir, $"{kind.Key.Client}-{kind.Key.ApiKey}-v{kind.Key.ApiVersion}-{i++}"), frame);
                requests++;
            }
        }
        var payloads = frames.Where(x => x.Header!.ApiKey == ApiKey.Produce).SelectMany(x => RecordsOf(x.Frame, x.Header!))
            .DistinctBy(Convert.ToHexString).OrderBy(p => p.Length).Take(MaxRecordsFiles);
        foreach (var payload in payloads)
        {
            var codec = payload.Length > RecordBatchHeader.AttributesOffset + 1 ? (CompressionCodec)(payload[RecordBatchHeader.AttributesOffset + 1] & 7) : 0;
            File.WriteAllBytes(Path.Combine(recordsDir, $"{codec}-{Convert.ToHexString(SHA256.HashData(payload))[..12].ToLowerInvariant()}"), payload);
            records++;
        }
        Console.WriteLine($"{requests} request frames from {frames.Count} distinct, {records} record payloads -> {corpusDir}");
        return requests > 0 ? 0 : 1;
    }

    private static RequestHeader? HeaderOf(byte[] frame)
    {
        try
        {
            var header = RequestHeader.Read(new KafkaReader(frame));
            return MessageCatalog.Request(header.ApiKey) is { } d && d.Versions.Contains(header.ApiVersion) ? header : null;
        }
        catch (MalformedMessageException)
        {
            return null;
        }
    }

    private static IEnumerable<byte[]> RecordsOf(byte[] frame, RequestHeader header)
    {
        var reader = new KafkaReader(frame);
        RequestHeader.Read(reader);
        var produce = MessageSerializer.Read<ProduceRequest>(reader, header.ApiVersion);
        foreach (var t in produce.TopicData)
            foreach (var p in t.PartitionData)
                if (p.Records is MemoryRecords { Length: > 0 } r) yield return r.Bytes.ToArray();
    }

    private static string Sanitize(string? clientId) =>
        string.Concat((clientId ?? "anonymous").Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
}
