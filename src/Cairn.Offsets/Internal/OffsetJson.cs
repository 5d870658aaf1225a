using System.Buffers;
using System.Text.Json;

namespace Cairn.Offsets.Internal;

/// <summary>The JSON documents file-based stores write.</summary>
internal static class OffsetJson
{
    public const string Format = "cairn-offsets";
    public const int Version = 1;

    /// <summary>{"format":"cairn-offsets","version":1,"offsets":{"source":"seq:42",...}} with sources in ordinal order.</summary>
    public static byte[] WriteOffsetsFile(IReadOnlyDictionary<string, Offset> offsets)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("format", Format);
            writer.WriteNumber("version", Version);
            writer.WriteStartObject("offsets");
            foreach (var source in offsets.Keys.Order(StringComparer.Ordinal))
                writer.WriteString(source, offsets[source].ToString());
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    public static Dictionary<string, Offset> ReadOffsetsFile(ReadOnlyMemory<byte> content, string path)
    {
        using var doc = Parse(content, path);
        var root = doc.RootElement;
        CheckHeader(root, path);
        if (!root.TryGetProperty("offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Object)
            throw Corrupt(path, null, "it has no \"offsets\" object");
        var result = new Dictionary<string, Offset>(StringComparer.Ordinal);
        foreach (var property in offsets.EnumerateObject())
        {
            if (property.Name.Length == 0) throw Corrupt(path, null, "it holds an empty source name");
            var offset = ReadOffset(property.Value, path, property.Name);
            if (!result.TryAdd(property.Name, offset)) throw Corrupt(path, property.Name, "the source appears twice");
        }
        return result;
    }

    /// <summary>{"format":"cairn-offsets","version":1,"source":"orders/3","offset":"seq:42"}</summary>
    public static byte[] WriteSourceFile(string source, Offset offset)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("format", Format);
            writer.WriteNumber("version", Version);
            writer.WriteString("source", source);
            writer.WriteString("offset", offset.ToString());
            writer.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    public static (string Source, Offset Offset) ReadSourceFile(ReadOnlyMemory<byte> content, string path)
    {
        using var doc = Parse(content, path);
        var root = doc.RootElement;
        CheckHeader(root, path);
        if (!root.TryGetProperty("source", out var sourceElement) || sourceElement.ValueKind != JsonValueKind.String ||
            sourceElement.GetString() is not { Length: > 0 } source)
            throw Corrupt(path, null, "it has no \"source\" string");
        if (!root.TryGetProperty("offset", out var offsetElement)) throw Corrupt(path, source, "it has no \"offset\"");
        return (source, ReadOffset(offsetElement, path, source));
    }

    private static JsonDocument Parse(ReadOnlyMemory<byte> content, string path)
    {
        if (content.Length == 0) throw Corrupt(path, null, "it is empty");
        try
        {
            return JsonDocument.Parse(content, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException ex)
        {
            throw Corrupt(path, null, "it is not valid JSON: " + ex.Message, ex);
        }
    }

    private static void CheckHeader(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Corrupt(path, null, "its top level is not a JSON object");
        if (!root.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.String || format.GetString() != Format)
            throw Corrupt(path, null, $"it is not a {Format} file (no \"format\": \"{Format}\")");
        if (!root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out var v))
            throw Corrupt(path, null, "it has no numeric \"version\"");
        if (v != Version) throw Corrupt(path, null, $"its format version {v} is not supported (this library reads version {Version})");
    }

    private static Offset ReadOffset(JsonElement element, string path, string source)
    {
        if (element.ValueKind != JsonValueKind.String) throw Corrupt(path, source, $"the offset is a JSON {element.ValueKind}, not a string");
        var text = element.GetString();
        try
        {
            if (Offset.TryParse(text, out var offset)) return offset;
        }
        catch (InvalidOffsetException ex)
        {
            throw Corrupt(path, source, $"'{text}' is not an offset", ex);
        }
        throw Corrupt(path, source, $"'{text}' is not an offset");
    }

    private static OffsetSerializationException Corrupt(string path, string? source, string reason, Exception? inner = null) =>
        new($"offset file '{path}' cannot be read{(source is null ? "" : $" (source '{source}')")}: {reason}", source, path, inner);
}
