namespace Cairn.Storage;

/// <summary>
/// A partition whose files cannot be trusted as they are (e.g. a gap between segments): it stays offline, its files
/// untouched, and answers KAFKA_STORAGE_ERROR until an operator repairs it. An <see cref="IOException"/> so that
/// callers treating storage failures alike keep doing so.
/// </summary>
public sealed class PartitionOfflineException(string message) : IOException(message);
