namespace Cairn.Storage;

/// <summary>
/// Small files the broker keeps next to the logs (cluster id, producer id block, the group store's write-sequence
/// record), written so that a crash or power loss leaves the old or the new content. Other assemblies share
/// <see cref="FileIO.WriteAtomic"/> through it instead of copying it.
/// </summary>
public static class DurableFile
{
    /// <summary>Temp file, fsync, rename over <paramref name="path"/>, fsync the directory.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content) => FileIO.WriteAtomic(path, content);
}
