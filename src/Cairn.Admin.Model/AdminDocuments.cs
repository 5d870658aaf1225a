using System.Text.Json;

namespace Cairn.Admin.Model;

/// <summary>
/// The JSON documents the admin HTTP API serves and the command line prints with <c>--output json</c> (one shape for
/// both: GroupDocuments.cs, TopicDocuments.cs), and how both serialize them.
/// </summary>
public static partial class AdminDocuments
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        // Served as application/json with nosniff, never embedded in HTML: keep quotes and apostrophes readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    // After Json in this file: static initializers run in text order within a file (across a partial class's files the
    // order is undefined, so nothing in the other parts may need Json while initializing).
    private static readonly JsonSerializerOptions IndentedJson = new(Json) { WriteIndented = true };

    /// <summary>The JSON text of a document, indented, as the command line prints it.</summary>
    public static string ToJsonText<T>(T document) => JsonSerializer.Serialize(document, IndentedJson);
}
