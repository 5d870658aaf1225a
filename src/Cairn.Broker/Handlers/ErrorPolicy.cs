using System.Data.Common;
using System.Net.Sockets;
using Cairn.Protocol;

namespace Cairn.Broker.Handlers;

/// <summary>
/// The one rule for what a failure becomes on the wire, for every API. A failure a response can express becomes
/// that API's error code, set everywhere in a response for the same request (<see cref="IApiHandler.ErrorResponse"/>),
/// as Kafka's <c>AbstractRequest.getErrorResponse</c> does; only a malformed request closes the connection.
/// </summary>
internal static class ErrorPolicy
{
    /// <summary>For the partition whose stored records could not be read while its response was written.</summary>
    public const ErrorCode UnreadableRecords = ErrorCode.KafkaStorageError;

    /// <summary>The error code a failure of handling a request of <paramref name="api"/> is reported with.</summary>
    public static ErrorCode CodeFor(ApiKey api, Exception failure)
    {
        if (!IsStorageFailure(failure)) return ErrorCode.UnknownServerError;
        if (IsGroupApi(api))
        {
            // The group store (a file or a database) failing is the coordinator being unavailable. COORDINATOR_NOT_AVAILABLE
            // is retriable in every client (Java, librdkafka, kafka-python, kafkajs): they look the coordinator up again
            // and retry the commit or join, which is what a store that comes back needs. KAFKA_STORAGE_ERROR is not in
            // these APIs' documented errors (Kafka itself maps a storage failure of its offsets topic to a coordinator
            // error), and the Java consumer fails a commit outright on a code it does not expect.
            return ErrorCode.CoordinatorNotAvailable;
        }
        // KAFKA_STORAGE_ERROR is retriable too: clients refresh metadata and retry the partition.
        return IsLogApi(api) ? ErrorCode.KafkaStorageError : ErrorCode.UnknownServerError;
    }

    /// <summary>
    /// A failure of the durable layer behind an API rather than of the broker's own logic: files (I/O errors, permissions,
    /// a handle closed under the reader), a database (its errors, time-outs, a lost connection), anywhere in the chain of causes.
    /// </summary>
    public static bool IsStorageFailure(Exception failure)
    {
        for (Exception? e = failure; e is not null; e = e.InnerException)
        {
            if (e is IOException or UnauthorizedAccessException or ObjectDisposedException or DbException or TimeoutException or SocketException)
                return true;
        }
        return false;
    }

    /// <summary>APIs served by the group coordinator and its store.</summary>
    private static bool IsGroupApi(ApiKey api) => api is ApiKey.FindCoordinator or ApiKey.JoinGroup or ApiKey.SyncGroup or ApiKey.Heartbeat
        or ApiKey.LeaveGroup or ApiKey.OffsetCommit or ApiKey.OffsetFetch or ApiKey.DescribeGroups or ApiKey.ListGroups
        or ApiKey.DeleteGroups or ApiKey.OffsetDelete;

    /// <summary>APIs that read or write partition logs, whose responses carry KAFKA_STORAGE_ERROR per partition or topic.</summary>
    private static bool IsLogApi(ApiKey api) => api is ApiKey.Produce or ApiKey.Fetch or ApiKey.ListOffsets or ApiKey.DeleteRecords
        or ApiKey.CreateTopics or ApiKey.DeleteTopics or ApiKey.CreatePartitions or ApiKey.DescribeLogDirs;
}
