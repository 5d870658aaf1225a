namespace Cairn.Offsets;

/// <summary>
/// The base of every error Cairn.Offsets reports. <see cref="SourceName"/> names the source involved
/// (null for operations on a whole store); <see cref="Exception.InnerException"/> carries the cause.
/// </summary>
public class OffsetStoreException : Exception
{
    public OffsetStoreException(string message) : base(message) { }

    public OffsetStoreException(string message, Exception? innerException) : base(message, innerException) { }

    public OffsetStoreException(string message, string? sourceName, Exception? innerException = null)
        : base(message, innerException) => SourceName = sourceName;

    /// <summary>The source the failed operation was about, when there is one.</summary>
    public string? SourceName { get; }

    internal static string Describe(string? sourceName, string what) =>
        sourceName is null ? what : $"{what} (source '{sourceName}')";
}

/// <summary>An offset that is malformed, of the wrong kind for the operation, or cannot be ordered against another.</summary>
public sealed class InvalidOffsetException : OffsetStoreException
{
    public InvalidOffsetException(string message) : base(message) { }

    public InvalidOffsetException(string message, string? sourceName, Exception? innerException = null)
        : base(message, sourceName, innerException) { }
}

/// <summary>Reading or writing the backing storage failed (file system, database connection, ...).</summary>
public class OffsetStoreIOException : OffsetStoreException
{
    public OffsetStoreIOException(string message, string? sourceName, Exception? innerException)
        : base(message, sourceName, innerException) { }
}

/// <summary>
/// Stored data could not be understood: a corrupt or foreign file, a row with an unparseable offset.
/// Never silently treated as "nothing stored". <see cref="Location"/> names the file or table.
/// </summary>
public sealed class OffsetSerializationException : OffsetStoreException
{
    public OffsetSerializationException(string message, string? sourceName, string? location, Exception? innerException = null)
        : base(message, sourceName, innerException) => Location = location;

    /// <summary>Where the unreadable data is (a file path, a table name).</summary>
    public string? Location { get; }
}

/// <summary>An exclusive lock (e.g. a <see cref="LockFileOffsetStore"/> lock file) was not obtained within the timeout.</summary>
public sealed class OffsetLockTimeoutException : OffsetStoreException
{
    public OffsetLockTimeoutException(string message, string? sourceName, string lockPath, TimeSpan timeout, Exception? innerException = null)
        : base(message, sourceName, innerException)
    {
        LockPath = lockPath;
        Timeout = timeout;
    }

    public string LockPath { get; }
    public TimeSpan Timeout { get; }
}

/// <summary>No offset is stored for a source and the reset policy is <see cref="OffsetResetPolicy.None"/>.</summary>
public sealed class OffsetNotFoundException : OffsetStoreException
{
    public OffsetNotFoundException(string sourceName)
        : base($"no offset is stored for source '{sourceName}' and the reset policy is None", sourceName) { }
}
