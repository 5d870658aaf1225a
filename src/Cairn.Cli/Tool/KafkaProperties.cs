using System.Globalization;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary>
/// Kafka client properties from <c>--command-config FILE</c> and <c>-X key=value</c> (later ones win), under the
/// names Kafka's Java client and librdkafka use. Connection properties are applied to <see cref="KafkaClientOptions"/>
/// here; producer and consumer properties are kept for the commands that use them (<see cref="ToolContext.TryGetProperty"/>).
/// A name not listed is a usage error: a typo must not be silently ignored.
/// </summary>
internal static class KafkaProperties
{
    /// <summary>Properties that configure the connection, and their librdkafka aliases (same meaning).</summary>
    public static readonly IReadOnlyDictionary<string, string> ConnectionAliases = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bootstrap.servers"] = "bootstrap.servers",
        ["metadata.broker.list"] = "bootstrap.servers",
        ["client.id"] = "client.id",
        ["request.timeout.ms"] = "request.timeout.ms",
        ["socket.timeout.ms"] = "request.timeout.ms",
        ["metadata.max.age.ms"] = "metadata.max.age.ms",
        ["topic.metadata.refresh.interval.ms"] = "metadata.max.age.ms",
        ["retries"] = "retries",
        ["message.send.max.retries"] = "retries",
        ["retry.backoff.ms"] = "retry.backoff.ms",
    };

    /// <summary>Producer and consumer properties: accepted here, used by produce and consume (<see cref="ClientPropertyMapping"/>).</summary>
    public static readonly IReadOnlySet<string> ClientNames = new HashSet<string>(StringComparer.Ordinal)
    {
        // consumer
        "auto.offset.reset", "enable.auto.commit", "auto.commit.interval.ms", "group.id", "group.instance.id", "isolation.level",
        "fetch.max.wait.ms", "fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes", "max.partition.fetch.bytes", "fetch.message.max.bytes",
        "check.crcs", "enable.partition.eof", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
        "max.poll.records", "partition.assignment.strategy",
        // producer
        "acks", "request.required.acks", "compression.type", "compression.codec", "linger.ms", "queue.buffering.max.ms",
        "batch.size", "enable.idempotence", "max.in.flight.requests.per.connection", "max.in.flight", "delivery.timeout.ms",
        "message.timeout.ms", "buffer.memory", "partitioner",
    };

    /// <summary>Reads a Java properties file of client properties: <c>key=value</c> (or <c>key: value</c>), <c>#</c> and <c>!</c> comments.</summary>
    public static List<KeyValuePair<string, string>> ReadFile(string path)
    {
        if (!File.Exists(path))
            throw new UsageException(Directory.Exists(path) ? $"--command-config: '{path}' is a directory, not a properties file" : $"--command-config: no such file '{path}'");
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ToolException($"--command-config: cannot read '{path}': {e.Message}");
        }
        var result = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line[0] is '#' or '!') continue;
            int sep = line.IndexOfAny(['=', ':']);
            if (sep <= 0) throw new UsageException($"--command-config: {path}:{i + 1}: expected key=value, got '{line}'");
            result.Add(new(line[..sep].Trim(), line[(sep + 1)..].Trim()));
        }
        return result;
    }

    /// <summary>Parses <c>-X key=value</c> items (a value may hold '=': "sasl.jaas.config=... password=x").</summary>
    public static List<KeyValuePair<string, string>> ParseItems(IEnumerable<string> items) =>
        KeyValues.Parse(items, "-X").Select(kv => KeyValuePair.Create(kv.Key.Trim(), kv.Value)).ToList();

    /// <summary>Merges the file's and -X's properties (later wins) and refuses unknown names.</summary>
    public static Dictionary<string, string> Merge(IEnumerable<KeyValuePair<string, string>> fromFile, IEnumerable<KeyValuePair<string, string>> fromFlags)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (source, items) in new[] { ("--command-config", fromFile), ("-X", fromFlags) })
            foreach (var (key, value) in items)
            {
                if (!ConnectionAliases.ContainsKey(key) && !ClientNames.Contains(key))
                    throw new UsageException($"{source}: unknown or unsupported client property '{key}'{Suggest(key)}");
                merged[key] = value;
            }
        return merged;
    }

    private static string Suggest(string key)
    {
        var close = ConnectionAliases.Keys.Concat(ClientNames)
            .Select(n => (Name: n, Distance: Distance(key, n)))
            .Where(c => c.Distance <= Math.Max(2, key.Length / 4))
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal)
            .Take(3).Select(c => c.Name).ToList();
        return close.Count > 0 ? $" (did you mean {string.Join(" or ", close)}?)" : "";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) d[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int previous = d[0];
            d[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int current = d[j];
                d[j] = Math.Min(Math.Min(d[j] + 1, d[j - 1] + 1), previous + (a[i - 1] == b[j - 1] ? 0 : 1));
                previous = current;
            }
        }
        return d[b.Length];
    }

    /// <summary>
    /// Applies the connection properties to <paramref name="options"/>. <paramref name="used"/> collects the names applied.
    /// </summary>
    public static KafkaClientOptions Apply(KafkaClientOptions options, IReadOnlyDictionary<string, string> properties, ISet<string> used)
    {
        foreach (var (key, value) in properties)
        {
            if (!ConnectionAliases.TryGetValue(key, out var canonical)) continue;
            options = canonical switch
            {
                "bootstrap.servers" => options with { BootstrapServers = NonEmpty(key, value) },
                "client.id" => options with { ClientId = NonEmpty(key, value) },
                "request.timeout.ms" => options with { RequestTimeout = TimeSpan.FromMilliseconds(Millis(key, value, positive: true)) },
                "metadata.max.age.ms" => options with { MetadataMaxAge = TimeSpan.FromMilliseconds(Millis(key, value, positive: false)) },
                "retries" => options with { Retries = (int)Math.Min(int.MaxValue, Millis(key, value, positive: false)) },
                "retry.backoff.ms" => options with { RetryBackoff = TimeSpan.FromMilliseconds(Millis(key, value, positive: false)) },
                _ => throw new InvalidOperationException($"no mapping for {canonical}"),
            };
            used.Add(key);
        }
        return options;
    }

    private static string NonEmpty(string key, string value) =>
        value.Trim() is { Length: > 0 } v ? v : throw new UsageException($"{key}: a value is required");

    /// <summary>A whole, non-negative (or positive) number, as the *.ms properties and retries take.</summary>
    public static long Millis(string key, string value, bool positive)
    {
        if (!long.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n))
            throw new UsageException($"{key}: '{value}' is not a whole number");
        if (n < (positive ? 1 : 0)) throw new UsageException($"{key}: must be {(positive ? "positive" : "zero or more")}, got {n}");
        return n;
    }
}
