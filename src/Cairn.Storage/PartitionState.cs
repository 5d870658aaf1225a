using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Cairn.Storage;

/// <summary>
/// What the jobs of one partition log share: the segment list, the offsets, the producer state and the append
/// lock that guards changes to them. Appends, retention and rolls change the list under <see cref="Lock"/>; reads
/// take <see cref="Segments"/> and the offsets with volatile reads and never lock.
/// </summary>
internal sealed class PartitionState(string directory, string name, LogConfig config, StorageOptions options, TimeProvider time,
    ILogger logger, DeferredCloser closer, FileHandleBudget files)
{
    public readonly string Directory = directory;
    public readonly string Name = name;
    public readonly StorageOptions Options = options;
    public readonly TimeProvider Time = time;
    public readonly ILogger Logger = logger;
    public readonly DeferredCloser Closer = closer;
    /// <summary>The broker-wide budget of open segment files (shared by every partition of a <see cref="LogManager"/>).</summary>
    public readonly FileHandleBudget Files = files;
    public readonly Lock Lock = new();
    public readonly ProducerStateManager Producers = new();
    public readonly LogStartCheckpoint Checkpoint = new(Path.Combine(directory, PartitionLog.LogStartCheckpointFile), name, logger);

    public volatile LogConfig Config = config;
    public volatile bool Closed;
    /// <summary>Why recovery left this partition offline (then <see cref="Closed"/> is set too); null when it is not.</summary>
    public volatile string? OfflineReason;

    /// <summary>What a closed partition answers: gone (deleted / shut down), or offline because of its files.</summary>
    public Cairn.Protocol.ErrorCode ClosedError =>
        OfflineReason is null ? Cairn.Protocol.ErrorCode.UnknownTopicOrPartition : Cairn.Protocol.ErrorCode.KafkaStorageError;

    /// <summary>Oldest first; the last one is <see cref="Active"/>. Replaced, never changed in place, under <see cref="Lock"/>.</summary>
    public LogSegment[] Segments = [];
    /// <summary>The segment appends go to. Under <see cref="Lock"/>.</summary>
    public LogSegment Active = null!;
    /// <summary>The next offset to assign: the high-water mark. Written under <see cref="Lock"/>, read volatile.</summary>
    public long NextOffset;
    /// <summary>The first readable offset. Written under <see cref="Lock"/> (or by recovery), read volatile.</summary>
    public long LogStartOffset;

    public long NowMs => Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Starts a new active segment at the next offset; the old one's indexes are flushed and released in the background.</summary>
    public LogSegment RollLocked(long nowMs, string reason)
    {
        var old = Active;
        old.Seal();
        var seg = LogSegment.Create(Directory, NextOffset, Files, Logger, Name);
        seg.IndexInterval = Config.IndexIntervalBytes;
        var segs = Segments;
        var next = new LogSegment[segs.Length + 1];
        Array.Copy(segs, next, segs.Length);
        next[^1] = seg;
        Volatile.Write(ref Segments, next);
        Active = seg;
        Logger.LogInformation("{Partition}: rolled new segment at offset {Base} ({Reason}; previous segment {OldBase}, {Size} bytes)",
            Name, seg.BaseOffset, reason, old.BaseOffset, old.Size);
        _ = Task.Run(async () =>
        {
            await Files.RollFlushes.WaitAsync().ConfigureAwait(false);
            try { old.FlushAndReleaseIndexFiles(); }
            catch (ObjectDisposedException) { }
            catch (IOException e) { Logger.LogWarning(e, "{Partition}: flushing rolled segment {Base} failed", Name, old.BaseOffset); }
            finally { Files.RollFlushes.Release(); }
        });
        return seg;
    }
}

/// <summary>
/// The log start offset checkpoint file ("0\n&lt;offset&gt;\n": version, value), written atomically whenever
/// DeleteRecords or retention moves the log start offset, so the low watermark survives a restart.
/// </summary>
internal sealed class LogStartCheckpoint(string path, string name, ILogger logger)
{
    private readonly Lock _lock = new();
    private long _written = -1;

    /// <summary>The stored value, or 0 when there is none or it cannot be read.</summary>
    public long Read()
    {
        var bytes = FileIO.TryReadAll(path);
        if (bytes is null) return 0;
        var text = Encoding.ASCII.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (text.Length >= 2 && text[0] == "0" && long.TryParse(text[1], NumberStyles.None, CultureInfo.InvariantCulture, out var v)) return v;
        logger.LogWarning("{Partition}: unreadable log start offset checkpoint, using the first segment's base offset", name);
        return 0;
    }

    /// <summary>Records that the file already holds <paramref name="value"/>.</summary>
    public void Assume(long value)
    {
        lock (_lock) _written = value;
    }

    /// <summary>Writes <paramref name="logStartOffset"/>'s current value unless the file already holds it.</summary>
    public void Write(ref long logStartOffset)
    {
        lock (_lock)
        {
            long value = Volatile.Read(ref logStartOffset);
            if (value == _written) return;
            FileIO.WriteAtomic(path, Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"0\n{value}\n")));
            _written = value;
        }
    }
}
