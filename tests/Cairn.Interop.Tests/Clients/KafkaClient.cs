using System.Text.Json;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Clients;

/// <summary>What a client library can express, so test data and comparisons fit each one.</summary>
public sealed record ClientCaps
{
    public required IReadOnlyList<string> Codecs { get; init; }

    /// <summary>Can produce a record with a null value.</summary>
    public bool NullValue { get; init; } = true;

    /// <summary>Can produce a record whose key and value are both null (kafka-python refuses).</summary>
    public bool NullKeyAndNullValue { get; init; } = true;

    /// <summary>Headers can differ per record (kcat: one fixed set per invocation).</summary>
    public bool PerRecordHeaders { get; init; } = true;

    /// <summary>Can produce a header with a null value (kafka-python writes it as empty; kafkajs throws).</summary>
    public bool NullHeaderValues { get; init; } = true;

    /// <summary>Produces and reports interleaved duplicate header names in order (kafkajs groups them by name).</summary>
    public bool OrderedDuplicateHeaders { get; init; } = true;

    /// <summary>Can set explicit record timestamps (kcat cannot).</summary>
    public bool Timestamps { get; init; } = true;

    /// <summary>Consumed headers are exact bytes (kcat prints them as text).</summary>
    public bool ExactHeadersOnConsume { get; init; } = true;
}

public interface IKafkaClient
{
    string Name { get; }
    ClientCaps Caps { get; }

    Task<ProduceResult> ProduceAsync(string bootstrap, string topic, IReadOnlyList<OutRecord> records,
        string codec = "none", bool idempotent = false);

    /// <summary>
    /// Starts a consumer and returns once it is positioned (for Latest: once the end offset is
    /// resolved, so records produced afterwards are the ones it must see).
    /// </summary>
    Task<RunningConsumer> StartConsumeAsync(string bootstrap, string topic, int count, StartAt start,
        int[]? partitions = null, TimeSpan? timeout = null);
}

public static class KafkaClientExtensions
{
    /// <summary>Consumes up to <paramref name="count"/> records (bounded by <paramref name="timeout"/>).</summary>
    public static async Task<ConsumeResult> ConsumeAsync(this IKafkaClient client, string bootstrap, string topic,
        int count, StartAt start, int[]? partitions = null, TimeSpan? timeout = null)
    {
        await using var c = await client.StartConsumeAsync(bootstrap, topic, count, start, partitions, timeout);
        return await c.FinishAsync();
    }
}

/// <summary>A consumer process that has been started and positioned.</summary>
public abstract class RunningConsumer(ChildProcess process, TimeSpan timeout) : IAsyncDisposable
{
    protected ChildProcess Process { get; } = process;
    protected TimeSpan Timeout { get; } = timeout;

    /// <summary>Waits (bounded) for the consumer to finish and returns what it consumed.</summary>
    public abstract Task<ConsumeResult> FinishAsync();

    public ValueTask DisposeAsync() => Process.DisposeAsync();
}

/// <summary>The four client libraries under test.</summary>
public static class KafkaClients
{
    public static readonly KcatClient Kcat = new();

    public static readonly ScriptClient KafkaPython = ScriptClient.Python("kafka-python", "kp_client.py", new ClientCaps
    {
        Codecs = ["none", "gzip", "snappy", "lz4", "zstd"],
        NullKeyAndNullValue = false,
        NullHeaderValues = false,
    });

    public static readonly ScriptClient Confluent = ScriptClient.Python("confluent-kafka", "ck_client.py", new ClientCaps
    {
        Codecs = ["none", "gzip", "snappy", "lz4", "zstd"],
    });

    public static readonly ScriptClient Kafkajs = ScriptClient.Node("kafkajs", "kjs_client.js", new ClientCaps
    {
        Codecs = ["none", "gzip", "snappy"],
        NullHeaderValues = false,
        OrderedDuplicateHeaders = false,
    });

    public static IReadOnlyList<IKafkaClient> All => [Kcat, KafkaPython, Confluent, Kafkajs];

    public static IKafkaClient ByName(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"unknown client {name}");

    public static IEnumerable<object[]> Names() => All.Select(c => new object[] { c.Name });

    /// <summary>The clients with an admin API driver (all but kcat).</summary>
    public static IEnumerable<object[]> AdminNames() => new[] { KafkaPython, Confluent, Kafkajs }.Select(c => new object[] { c.Name });

    public static ScriptClient Script(string name) => (ScriptClient)ByName(name);
}

internal static class JsonLines
{
    public static IEnumerable<JsonElement> Parse(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            var t = line.Trim();
            if (!t.StartsWith('{')) continue;
            JsonElement e;
            try
            {
                e = JsonDocument.Parse(t).RootElement.Clone();
            }
            catch (JsonException)
            {
                continue;
            }
            yield return e;
        }
    }

    public static bool IsEvent(JsonElement e, string name) =>
        e.TryGetProperty("event", out var ev) && ev.GetString() == name;
}
