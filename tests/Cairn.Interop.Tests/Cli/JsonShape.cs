using System.Text.Json;

namespace Cairn.Interop.Tests.Cli;

/// <summary>Compares the JSON of the command line with the admin API's for the same object (one shape for both).</summary>
internal static class JsonShape
{
    /// <summary>
    /// Property names and nesting of two documents, with the value kinds; null matches anything (a value one side cannot
    /// know), arrays are compared element by element as far as both go.
    /// </summary>
    private static void CollectDifferences(JsonElement a, JsonElement b, string path, List<string> differences)
    {
        if (a.ValueKind == JsonValueKind.Null || b.ValueKind == JsonValueKind.Null) return;
        static bool IsBool(JsonValueKind k) => k is JsonValueKind.True or JsonValueKind.False;
        if (a.ValueKind != b.ValueKind && !(IsBool(a.ValueKind) && IsBool(b.ValueKind)))
        {
            differences.Add($"{path}: {a.ValueKind} in the CLI, {b.ValueKind} in the admin API");
            return;
        }
        if (a.ValueKind == JsonValueKind.Object)
        {
            var an = a.EnumerateObject().Select(p => p.Name).ToList();
            var bn = b.EnumerateObject().Select(p => p.Name).ToList();
            if (!an.SequenceEqual(bn)) differences.Add($"{path}: properties [{string.Join(", ", an)}] in the CLI, [{string.Join(", ", bn)}] in the admin API");
            foreach (var name in an.Intersect(bn)) CollectDifferences(a.GetProperty(name), b.GetProperty(name), $"{path}.{name}", differences);
        }
        else if (a.ValueKind == JsonValueKind.Array)
        {
            for (int i = 0; i < Math.Min(a.GetArrayLength(), b.GetArrayLength()); i++) CollectDifferences(a[i], b[i], $"{path}[{i}]", differences);
        }
    }

    public static void AssertSame(JsonElement cli, JsonElement api, string what)
    {
        var differences = new List<string>();
        CollectDifferences(cli, api, "$", differences);
        Assert.True(differences.Count == 0, $"{what}: the CLI and the admin API differ:\n{string.Join("\n", differences)}\nCLI: {cli}\nadmin API: {api}");
    }

    /// <summary>An HTTP client for the admin API on <paramref name="port"/>, once it answers /healthz (within 30 s).</summary>
    public static async Task<HttpClient> AdminClientAsync(int port)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                if ((await http.GetAsync("healthz")).IsSuccessStatusCode) return http;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline) { }
            if (DateTime.UtcNow >= deadline)
            {
                http.Dispose();
                throw new TimeoutException("the admin API did not answer within 30 s");
            }
            await Task.Delay(200);
        }
    }
}
