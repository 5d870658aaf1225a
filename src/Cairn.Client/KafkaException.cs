using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>
/// An error reported by a broker (its <see cref="ErrorCode"/>) or met on the way to one (network failures are
/// <see cref="ErrorCode.NetworkException"/>, timeouts <see cref="ErrorCode.RequestTimedOut"/>).
/// <see cref="IsRetriable"/> says whether the same operation may succeed when tried again.
/// </summary>
public class KafkaException : Exception
{
    public KafkaException(ErrorCode error, string message, Exception? innerException = null, TopicPartition? topicPartition = null)
        : base(message, innerException)
    {
        Error = error;
        TopicPartition = topicPartition;
    }

    /// <summary>The Kafka error code.</summary>
    public ErrorCode Error { get; }

    /// <summary>Whether trying the operation again may succeed (leadership moves, timeouts, lost connections, ...).</summary>
    public bool IsRetriable => KafkaErrors.IsRetriable(Error);

    /// <summary>The partition the error is about, when there is one.</summary>
    public TopicPartition? TopicPartition { get; }

    /// <summary>An exception for an error code returned by a broker, with the broker's message when it sent one.</summary>
    public static KafkaException FromCode(ErrorCode error, string context, string? brokerMessage = null, TopicPartition? topicPartition = null) =>
        new(error, $"{context}: {KafkaErrors.Describe(error)}" + (string.IsNullOrEmpty(brokerMessage) ? "" : $" ({brokerMessage})"), null, topicPartition);
}

/// <summary>
/// Some items of a multi-item operation (topics, partitions, groups, resources) failed. <see cref="Failures"/> holds
/// each failed item's error; items not listed succeeded. <see cref="KafkaException.Error"/> is the first failure's code.
/// </summary>
public sealed class KafkaOperationException : KafkaException
{
    public KafkaOperationException(string operation, IReadOnlyDictionary<string, KafkaException> failures)
        : base(failures.Values.First().Error, BuildMessage(operation, failures), failures.Values.First(), failures.Values.First().TopicPartition)
    {
        Failures = failures;
    }

    /// <summary>Failed items by name ("topic", "topic/partition", group id, resource name).</summary>
    public IReadOnlyDictionary<string, KafkaException> Failures { get; }

    private static string BuildMessage(string operation, IReadOnlyDictionary<string, KafkaException> failures)
    {
        var first = failures.First();
        return failures.Count == 1
            ? $"{operation} failed for {first.Key}: {first.Value.Message}"
            : $"{operation} failed for {failures.Count} items; {first.Key}: {first.Value.Message}";
    }
}

/// <summary>Which error codes are transient, and readable names for all of them.</summary>
public static class KafkaErrors
{
    /// <summary>Errors that Kafka clients treat as retriable (RetriableException in the Java client).</summary>
    public static bool IsRetriable(ErrorCode error) => error switch
    {
        ErrorCode.CorruptMessage or
        ErrorCode.UnknownTopicOrPartition or
        ErrorCode.LeaderNotAvailable or
        ErrorCode.NotLeaderOrFollower or
        ErrorCode.RequestTimedOut or
        ErrorCode.BrokerNotAvailable or
        ErrorCode.ReplicaNotAvailable or
        ErrorCode.NetworkException or
        ErrorCode.CoordinatorLoadInProgress or
        ErrorCode.CoordinatorNotAvailable or
        ErrorCode.NotCoordinator or
        ErrorCode.NotEnoughReplicas or
        ErrorCode.NotEnoughReplicasAfterAppend or
        ErrorCode.NotController or
        ErrorCode.ConcurrentTransactions or
        ErrorCode.KafkaStorageError or
        ErrorCode.FetchSessionIdNotFound or
        ErrorCode.InvalidFetchSessionEpoch or
        ErrorCode.ListenerNotFound or
        ErrorCode.FencedLeaderEpoch or
        ErrorCode.UnknownLeaderEpoch or
        ErrorCode.OffsetNotAvailable or
        ErrorCode.PreferredLeaderNotAvailable or
        ErrorCode.EligibleLeadersNotAvailable or
        ErrorCode.UnstableOffsetCommit or
        ErrorCode.ThrottlingQuotaExceeded or
        ErrorCode.UnknownTopicId or
        ErrorCode.InconsistentTopicId or
        ErrorCode.FetchSessionTopicIdError => true,
        _ => false,
    };

    /// <summary>Errors after which the cached metadata (leaders, partitions) is likely stale.</summary>
    internal static bool InvalidatesMetadata(ErrorCode error) => error is
        ErrorCode.UnknownTopicOrPartition or ErrorCode.LeaderNotAvailable or ErrorCode.NotLeaderOrFollower or
        ErrorCode.BrokerNotAvailable or ErrorCode.ReplicaNotAvailable or ErrorCode.FencedLeaderEpoch or
        ErrorCode.UnknownLeaderEpoch or ErrorCode.KafkaStorageError or ErrorCode.UnknownTopicId or
        ErrorCode.InconsistentTopicId or ErrorCode.FetchSessionTopicIdError or ErrorCode.NotController or
        ErrorCode.NetworkException;

    /// <summary>Errors after which a group's coordinator must be looked up again.</summary>
    internal static bool InvalidatesCoordinator(ErrorCode error) => error is
        ErrorCode.NotCoordinator or ErrorCode.CoordinatorNotAvailable or ErrorCode.NetworkException or ErrorCode.RequestTimedOut;

    /// <summary>"UNKNOWN_TOPIC_OR_PARTITION (3)" and the like, as Kafka names its errors.</summary>
    public static string Describe(ErrorCode error) => $"{ToKafkaName(error)} ({(short)error})";

    private static string ToKafkaName(ErrorCode error)
    {
        var name = error.ToString();
        if (char.IsDigit(name[0]) || name[0] == '-') return "UNKNOWN_ERROR_CODE";
        var sb = new System.Text.StringBuilder(name.Length + 8);
        for (int i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(name[i]));
        }
        return sb.ToString();
    }
}
