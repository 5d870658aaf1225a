namespace Cairn.Storage;

/// <summary>
/// Durable small-file writes for other assemblies (the broker's SQLite group store keeps its write-sequence record with
/// it), so they share <see cref="FileIO.WriteAtomic"/> instead of copying it.
/// </summary>
public static class DurableFile
{
    /// <summary>Writes a small file atomically and durably: temp file, fsync, rename over the target, fsync the directory.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content) => FileIO.WriteAtomic(path, content);
}
