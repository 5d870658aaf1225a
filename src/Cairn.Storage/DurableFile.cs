namespace Cairn.Storage;

/// <summary>Small files the broker keeps next to the logs (cluster id, producer id block), written so that a crash or power loss leaves the old or the new content.</summary>
public static class DurableFile
{
    /// <summary>Temp file, fsync, rename over <paramref name="path"/>, fsync the directory.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content) => FileIO.WriteAtomic(path, content);
}
