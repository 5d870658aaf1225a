using System.Buffers;
using System.Buffers.Binary;
using Cairn.Protocol.Records;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

internal static class FileIO
{
    public const FileShare Share = FileShare.ReadWrite | FileShare.Delete;

    /// <summary>Reads until <paramref name="dest"/> is full or the file ends; returns bytes read.</summary>
    public static int ReadFully(SafeFileHandle file, Span<byte> dest, long position)
    {
        int total = 0;
        while (total < dest.Length)
        {
            int n = RandomAccess.Read(file, dest[total..], position + total);
            if (n <= 0) break;
            total += n;
        }
        return total;
    }

    public static SafeFileHandle OpenReadWrite(string path, FileMode mode) =>
        File.OpenHandle(path, mode, FileAccess.ReadWrite, Share);

    /// <summary>Writes a small file atomically and durably: temp file, fsync, rename over the target, fsync the directory.</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> content)
    {
        // A short name: path + ".tmp" could exceed the file name limit for a 249-character topic.
        var tmp = Path.Combine(Path.GetDirectoryName(path) ?? ".", Guid.NewGuid().ToString("N") + ".tmp");
        using (var h = File.OpenHandle(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            RandomAccess.Write(h, content, 0);
            RandomAccess.FlushToDisk(h);
        }
        try
        {
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        // Without it a power loss after the rename may leave the old file (or none) in the directory.
        FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>fsyncs a directory so that creations, renames and deletions in it survive a power loss (no-op on Windows).</summary>
    public static void FlushDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd;
        do fd = NativeMethods.open(directory, NativeMethods.O_RDONLY | NativeMethods.O_DIRECTORY);
        while (fd < 0 && Marshal.GetLastPInvokeError() == NativeMethods.EINTR);
        if (fd < 0) throw new IOException($"cannot open directory {directory} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            int rc;
            do rc = NativeMethods.fsync(fd);
            while (rc < 0 && Marshal.GetLastPInvokeError() == NativeMethods.EINTR);
            // Some file systems cannot fsync a directory; they report EINVAL and have nothing to flush.
            if (rc < 0 && Marshal.GetLastPInvokeError() is var errno and not NativeMethods.EINVAL)
                throw new IOException($"fsync of directory {directory} failed (errno {errno})");
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    public static byte[]? TryReadAll(string path)
    {
        try { return File.Exists(path) ? File.ReadAllBytes(path) : null; }
        catch (IOException) { return null; }
    }

    public static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

internal static partial class NativeMethods
{
    public const int O_RDONLY = 0;
    public const int EINTR = 4;
    public const int EINVAL = 22;
    // Linux value; macOS uses 0x100000. Only a hint: open(2) of a directory with O_RDONLY works without it.
    public static readonly int O_DIRECTORY = OperatingSystem.IsMacOS() ? 0x100000 : 0x10000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int close(int fd);
}

/// <summary>
/// Buffered positional reader over a segment file for short header walks on the hot read path; the
/// buffer is the caller's (stackalloc). Reads at most up to <c>limit</c>.
/// </summary>
internal ref struct BatchCursor
{
    private readonly SafeFileHandle _file;
    private readonly Span<byte> _buffer;
    private readonly long _limit;
    private long _bufStart;
    private int _bufLen;

    public BatchCursor(SafeFileHandle file, Span<byte> buffer, long limit)
    {
        _file = file;
        _buffer = buffer;
        _limit = limit;
    }

    /// <summary>Reads (baseOffset, total size, lastOffsetDelta) of the batch at <paramref name="pos"/>; false if it is not there.</summary>
    public bool TryReadHeader(long pos, out long baseOffset, out int totalSize, out int lastOffsetDelta)
    {
        const int Needed = RecordBatchHeader.LastOffsetDeltaOffset + 4;
        baseOffset = 0; totalSize = 0; lastOffsetDelta = 0;
        if (pos + Needed > _limit) return false;
        if (pos < _bufStart || pos + Needed > _bufStart + _bufLen)
        {
            int toRead = (int)Math.Min(_buffer.Length, _limit - pos);
            _bufLen = FileIO.ReadFully(_file, _buffer[..toRead], pos);
            _bufStart = pos;
            if (_bufLen < Needed) return false;
        }
        var h = _buffer.Slice((int)(pos - _bufStart), Needed);
        baseOffset = BinaryPrimitives.ReadInt64BigEndian(h);
        int batchLength = BinaryPrimitives.ReadInt32BigEndian(h[RecordBatchHeader.BatchLengthOffset..]);
        lastOffsetDelta = BinaryPrimitives.ReadInt32BigEndian(h[RecordBatchHeader.LastOffsetDeltaOffset..]);
        if (batchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead || lastOffsetDelta < 0) return false;
        totalSize = batchLength + RecordBatchHeader.LogOverhead;
        return true;
    }
}

/// <summary>
/// Chunked positional reader for cold paths (recovery scans, timestamp lookups): reads the file in
/// large chunks from a pooled buffer and hands out spans of it; grows for batches bigger than a chunk.
/// </summary>
internal sealed class ChunkReader : IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly long _limit;
    private byte[] _buffer;
    private long _bufStart;
    private int _bufLen;

    public ChunkReader(SafeFileHandle file, long limit, int chunkSize = 1 << 20)
    {
        _file = file;
        _limit = limit;
        _buffer = ArrayPool<byte>.Shared.Rent((int)Math.Clamp(limit, 4096, chunkSize));
    }

    /// <summary>Bytes [pos, pos+count), or an empty span when they are not all within the limit / file.</summary>
    public ReadOnlySpan<byte> Get(long pos, int count)
    {
        if (count < 0 || pos < 0 || pos + count > _limit) return default;
        if (pos >= _bufStart && pos + count <= _bufStart + _bufLen)
            return _buffer.AsSpan((int)(pos - _bufStart), count);
        if (count > _buffer.Length)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(count);
        }
        int toRead = (int)Math.Min(_buffer.Length, _limit - pos);
        _bufLen = FileIO.ReadFully(_file, _buffer.AsSpan(0, toRead), pos);
        _bufStart = pos;
        if (_bufLen < count) return default;
        return _buffer.AsSpan(0, count);
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}
