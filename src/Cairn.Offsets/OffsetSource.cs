using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Cairn.Offsets;

/// <summary>Builds and parses source names. A Kafka source is "topic/partition", e.g. "orders/3".</summary>
public static class OffsetSource
{
    /// <summary>The source name of a Kafka topic partition: "topic/partition".</summary>
    public static string ForKafka(string topic, int partition)
    {
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        return topic + "/" + partition.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Parses "topic/partition" back into its parts (the partition is what follows the last '/').</summary>
    public static bool TryParseKafka([NotNullWhen(true)] string? source, [NotNullWhen(true)] out string? topic, out int partition)
    {
        topic = null;
        partition = 0;
        if (string.IsNullOrEmpty(source)) return false;
        int slash = source.LastIndexOf('/');
        if (slash <= 0 || slash == source.Length - 1) return false;
        if (!int.TryParse(source.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out partition)) return false;
        topic = source[..slash];
        return true;
    }

    /// <summary>Parses "topic/partition"; throws <see cref="ArgumentException"/> when the text is not of that form.</summary>
    public static (string Topic, int Partition) ParseKafka(string source) =>
        TryParseKafka(source, out var topic, out var partition)
            ? (topic, partition)
            : throw new ArgumentException($"'{source}' is not a Kafka source (topic/partition)", nameof(source));

    internal static void Validate(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Length == 0) throw new ArgumentException("a source name cannot be empty", nameof(source));
    }
}
