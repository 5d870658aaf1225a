using System.Runtime.InteropServices;

namespace Cairn.Offsets.Internal;

/// <summary>
/// Crash-safe file replacement: write a temp file, fsync it, rename it over the target, fsync the directory.
/// After a crash at any point the target holds either its old or its new content, never a mix.
/// </summary>
internal static partial class Durability
{
    private const int EINTR = 4;
    private const int EINVAL = 22;

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> via <paramref name="tempPath"/> (same directory).</summary>
    public static async Task ReplaceFileAsync(string path, string tempPath, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        await using (var temp = new FileStream(tempPath, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.None,
            Options = FileOptions.Asynchronous,
            BufferSize = 0,
        }))
        {
            await temp.WriteAsync(content, cancellationToken).ConfigureAwait(false);
            temp.Flush(flushToDisk: true);
        }
        File.Move(tempPath, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Deletes <paramref name="path"/> (if present) and makes the removal durable.</summary>
    public static void DeleteFile(string path)
    {
        if (!File.Exists(path)) return;
        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Creates <paramref name="directory"/> (and parents) durably.</summary>
    public static void CreateDirectory(string directory)
    {
        var full = Path.GetFullPath(directory);
        if (Directory.Exists(full)) return;
        var parent = Path.GetDirectoryName(full);
        if (parent is not null) CreateDirectory(parent);
        Directory.CreateDirectory(full);
        if (parent is not null) SyncDirectory(parent);
    }

    /// <summary>
    /// fsyncs a directory so that renames, creations and deletions inside it survive a crash. .NET has no API for
    /// this: on Unix it opens the directory O_RDONLY and calls fsync(2) through libc. On Windows it does nothing
    /// (NTFS journals metadata, and directories cannot be flushed through a handle there).
    /// </summary>
    public static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd;
        do fd = open(directory, O_RDONLY);
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open directory '{directory}' to fsync it: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
        try
        {
            int rc;
            do rc = fsync(fd);
            while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);
            if (rc < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                // Some file systems cannot fsync a directory; they report EINVAL and have nothing to flush.
                if (errno != EINVAL)
                    throw new IOException($"fsync of directory '{directory}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    private const int O_RDONLY = 0;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int close(int fd);
}
