using Cairn.Protocol;
using Cairn.Protocol.Records;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

/// <summary>
/// log.max.open.files: with 50 partitions of several segments each and a budget of 12 descriptors, appends, reads,
/// retention and restart all work, and the descriptors open under the data directory never pass the budget plus a
/// slack: 1 for the directory's .lock file, plus 3 per concurrent storage operation (a leased handle that could not be
/// closed, and one short-lived file: an index read at open, an atomic metadata write, a directory fsync). Three operations
/// at most run at once here: the test's thread and two background fsyncs of rolled segments, or two recovery threads.
/// </summary>
public sealed class FileHandleBudgetTests : IDisposable
{
    private const int Budget = 12;
    private const int Partitions = 50;
    private const int RecoveryThreads = 2;
    private const int Slack = 1 + 3 * 3;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private StorageOptions Options() => new()
    {
        DataDirectory = _dir.Path, RunBackgroundTasks = false, MaxOpenFiles = Budget, RecoveryThreads = RecoveryThreads,
    };

    private static KeyValuePair<string, string?> Kv(string k, string? v) => new(k, v);

    /// <summary>Descriptors of this process that point under the data directory (other tests run in parallel elsewhere).</summary>
    private int OpenUnderDataDir()
    {
        int n = 0;
        foreach (var fd in new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos())
        {
            try
            {
                if (fd.LinkTarget is { } target && target.StartsWith(_dir.Path, StringComparison.Ordinal)) n++;
            }
            catch (IOException) { } // closed while we looked
        }
        return n;
    }

    /// <summary>Samples the descriptor count in the background while <paramref name="work"/> runs; returns the largest seen.</summary>
    private async Task<int> MaxOpenDuringAsync(Func<Task> work)
    {
        int max = OpenUnderDataDir();
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                int n = OpenUnderDataDir();
                if (n > Volatile.Read(ref max)) Volatile.Write(ref max, n);
                Thread.Sleep(1);
            }
        });
        try { await work(); }
        finally
        {
            await stop.CancelAsync();
            await sampler;
        }
        return Math.Max(max, OpenUnderDataDir());
    }

    /// <summary>
    /// With no lease held the budget holds exactly: waits (bounded) for the background fsyncs of rolled segments, which
    /// hold leases, to finish, and returns the count of open segment files.
    /// </summary>
    private static async Task<int> SettledOpenFiles(LogManager m)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (m.OpenFileCount > Budget && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(10);
        return m.OpenFileCount;
    }

    /// <summary>Every stored byte of a partition from the log start, read one segment at a time as Fetch does.</summary>
    private static byte[] ReadAll(PartitionLog log)
    {
        var all = new MemoryStream();
        long offset = log.LogStartOffset;
        while (offset < log.HighWatermark)
        {
            var r = log.Read(offset, 1 << 20);
            Assert.Equal(ErrorCode.None, r.Error);
            var bytes = new byte[r.Records.Length];
            r.Records.CopyTo(bytes);
            all.Write(bytes);
            offset = LastNextOffset(bytes);
        }
        return all.ToArray();
    }

    private static long LastNextOffset(ReadOnlySpan<byte> batches)
    {
        long next = -1;
        int pos = 0;
        while (pos < batches.Length)
        {
            Assert.True(RecordBatchHeader.TryRead(batches[pos..], out var h));
            next = h.NextOffset;
            pos += h.TotalSize;
        }
        return next;
    }

    /// <summary>Appends <paramref name="batches"/> batches to every partition; returns what each partition stored, in order.</summary>
    private static List<byte[]>[] AppendEverywhere(TopicLog topic, int batches, int round)
    {
        var stored = new List<byte[]>[topic.PartitionCount];
        for (int p = 0; p < stored.Length; p++)
        {
            stored[p] = [];
            for (int b = 0; b < batches; b++)
            {
                var batch = TestBatch.Simple(3, valueSize: 100, fill: (byte)(0x41 + (p + b + round) % 26));
                var r = topic.GetPartition(p)!.Append(batch);
                Assert.Equal(ErrorCode.None, r.Error);
                stored[p].Add(batch); // the append wrote the assigned offset into these very bytes
            }
        }
        return stored;
    }

    [Fact]
    public async Task Fifty_partitions_of_several_segments_are_written_read_retained_and_reopened_within_the_budget()
    {
        var expected = new List<byte[]>[Partitions];
        int maxSeen;
        {
            var m = await LogManager.OpenAsync(Options());
            await using var _ = m;
            maxSeen = await MaxOpenDuringAsync(() =>
            {
                // 1 KiB segments, an index entry per batch: each partition gets 5-6 segments from 16 batches of ~0.4 KiB.
                var created = m.CreateTopic("many", Partitions, [Kv("segment.bytes", "1024"), Kv("index.interval.bytes", "1")]);
                Assert.Equal(ErrorCode.None, created.Error);
                var stored = AppendEverywhere(created.Topic!, 16, 0);
                for (int p = 0; p < Partitions; p++) expected[p] = stored[p];
                return Task.CompletedTask;
            });
            Assert.True(m.TryGetTopic("many", out var topic));
            Assert.All(topic.Partitions, p => Assert.True(p.SegmentCount >= 5, $"{p}: {p.SegmentCount} segments"));
            Assert.InRange(await SettledOpenFiles(m), 1, Budget);

            maxSeen = Math.Max(maxSeen, await MaxOpenDuringAsync(() =>
            {
                foreach (var p in topic.Partitions) Assert.Equal(Concat(expected[p.Partition]), ReadAll(p));
                return Task.CompletedTask;
            }));
            Assert.True(m.FileReopenCount > 0, "reads of 250 segments through 12 descriptors must have reopened files");
            Assert.InRange(await SettledOpenFiles(m), 1, Budget);
        }
        Assert.InRange(maxSeen, 1, Budget + Slack);

        // Restart: recovery opens every segment through the same budget, then everything reads back the same.
        var reopened = await LogManager.OpenAsync(Options());
        await using (reopened)
        {
            int maxAtRestart = await MaxOpenDuringAsync(() =>
            {
                Assert.True(reopened.TryGetTopic("many", out var topic));
                foreach (var p in topic.Partitions) Assert.Equal(Concat(expected[p.Partition]), ReadAll(p));
                // Appends still land after the restart.
                var more = AppendEverywhere(topic, 2, 1);
                for (int p = 0; p < Partitions; p++) expected[p].AddRange(more[p]);
                foreach (var p in topic.Partitions) Assert.Equal(Concat(expected[p.Partition]), ReadAll(p));
                return Task.CompletedTask;
            });
            Assert.InRange(maxAtRestart, 1, Budget + Slack);
            Assert.InRange(await SettledOpenFiles(reopened), 1, Budget);
        }
    }

    [Fact]
    public async Task A_fetch_payload_built_before_retention_deleted_its_segment_is_still_copied_after_its_handle_was_closed()
    {
        var m = await LogManager.OpenAsync(Options());
        await using var _ = m;
        var created = m.CreateTopic("ret", Partitions, [Kv("segment.bytes", "1024"), Kv("file.delete.delay.ms", "60000")]);
        var topic = created.Topic!;
        var stored = AppendEverywhere(topic, 12, 0);

        // A response referencing the first segment of every partition, not yet written out.
        var pending = topic.Partitions.Select(p => p.Read(0, 1 << 20)).ToArray();
        Assert.All(pending, r => Assert.Equal(ErrorCode.None, r.Error));

        // Retention drops those segments; then reading elsewhere closes their (idle) handles to stay within the budget.
        foreach (var p in topic.Partitions) Assert.Equal(ErrorCode.None, p.DeleteRecords(p.HighWatermark - 3).Error);
        Assert.All(topic.Partitions, p => Assert.Equal(1, p.SegmentCount));
        Assert.Contains(Directory.EnumerateFiles(Path.Combine(_dir.Path, "ret-0")), f => f.EndsWith(".log.deleted", StringComparison.Ordinal));
        foreach (var p in topic.Partitions) Assert.Equal(ErrorCode.None, p.Read(p.LogStartOffset, 1 << 20).Error);
        Assert.InRange(await SettledOpenFiles(m), 1, Budget);

        // Writing the response now reopens the renamed files: the bytes are the ones stored.
        for (int p = 0; p < Partitions; p++)
        {
            var bytes = new byte[pending[p].Records.Length];
            pending[p].Records.CopyTo(bytes);
            Assert.Equal(Concat(stored[p].Take(CountBatches(bytes))), bytes);
        }
        Assert.InRange(await SettledOpenFiles(m), 1, Budget);
        Assert.InRange(OpenUnderDataDir(), 1, Budget + Slack);
    }

    [Fact]
    public async Task Reads_racing_retention_and_appends_never_fail_and_stay_within_the_budget()
    {
        var m = await LogManager.OpenAsync(Options());
        await using var _ = m;
        var topic = m.CreateTopic("race", 20, [Kv("segment.bytes", "1024"), Kv("file.delete.delay.ms", "0")]).Topic!;
        AppendEverywhere(topic, 8, 0);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int failures = 0, reads = 0;
        int maxSeen = await MaxOpenDuringAsync(async () =>
        {
            var readers = Enumerable.Range(0, 2).Select(t => Task.Run(() =>
            {
                for (int i = 0; i < 3000 && !cts.IsCancellationRequested; i++)
                {
                    var p = topic.GetPartition((i * 7 + t) % 20)!;
                    var r = p.Read(p.LogStartOffset, 1 << 20);
                    if (r.Error is not (ErrorCode.None or ErrorCode.OffsetOutOfRange)) Interlocked.Increment(ref failures);
                    else if (r.Error == ErrorCode.None && r.Records.Length > 0)
                    {
                        var bytes = new byte[r.Records.Length];
                        try { r.Records.CopyTo(bytes); }
                        // file.delete.delay.ms=0: a payload whose segment was deleted meanwhile may no longer be copied.
                        catch (ObjectDisposedException) { continue; }
                        if (LastNextOffset(bytes) <= 0) Interlocked.Increment(ref failures);
                    }
                    Interlocked.Increment(ref reads);
                }
            })).ToArray();
            for (int round = 1; round <= 30 && !cts.IsCancellationRequested; round++)
            {
                AppendEverywhere(topic, 2, round);
                foreach (var p in topic.Partitions) p.DeleteRecords(p.HighWatermark - 2);
            }
            await Task.WhenAll(readers);
        });
        Assert.Equal(0, failures);
        Assert.True(reads > 0);
        // Two readers, the writer: at most three operations hold a lease at once.
        Assert.InRange(maxSeen, 1, Budget + 1 + 3 * 3);
        // Possibly 0: the last files used may all belong to segments the last DeleteRecords removed.
        Assert.InRange(await SettledOpenFiles(m), 0, Budget);
        Assert.Empty(Directory.EnumerateFiles(_dir.Path, "*.deleted", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_leased_handle_is_never_closed_under_its_user()
    {
        var budget = new FileHandleBudget(2);
        var paths = Enumerable.Range(0, 4).Select(i => _dir.Sub($"f{i}")).ToArray();
        foreach (var path in paths) File.WriteAllBytes(path, [(byte)path[^1]]);
        var files = paths.Select(path => SegmentFile.Open(budget, path, FileMode.Open)).ToArray();
        Assert.Equal(2, budget.OpenCount);

        using (var held = files[0].Acquire())
        {
            // Every other file is used in turn: the held one stays open although it is the least recently used.
            for (int round = 0; round < 3; round++)
                for (int i = 1; i < files.Length; i++)
                    using (var l = files[i].Acquire())
                        Assert.Equal((byte)paths[i][^1], Read1(l));
            Assert.True(files[0].IsOpen);
            Assert.Equal((byte)'0', Read1(held));

            // Disposed while leased: closed when the lease ends, not before.
            files[0].Dispose();
            Assert.True(files[0].IsOpen);
            Assert.Equal((byte)'0', Read1(held));
        }
        Assert.False(files[0].IsOpen);
        Assert.Throws<ObjectDisposedException>(() => files[0].Acquire());
        Assert.InRange(budget.OpenCount, 0, 2);

        // A file that vanished cannot be reopened: an IOException for the caller, not a crash, and no lease left behind.
        var gone = files[3];
        for (int i = 0; i < 10 && gone.IsOpen; i++)
            using (files[1].Acquire()) using (files[2].Acquire()) { }
        Assert.False(gone.IsOpen);
        File.Delete(paths[3]);
        Assert.ThrowsAny<IOException>(() => gone.Acquire());
        Assert.False(gone.IsOpen);
        foreach (var f in files) f.Dispose();
        Assert.Equal(0, budget.OpenCount);
    }

    [Fact]
    public void Trim_closes_the_least_recently_used_handles_down_to_the_limit_less_a_slack()
    {
        var budget = new FileHandleBudget(32);
        var paths = Enumerable.Range(0, 100).Select(i => _dir.Sub($"g{i}")).ToArray();
        foreach (var path in paths) File.WriteAllBytes(path, [1]);
        var files = new List<SegmentFile>();
        foreach (var path in paths)
        {
            files.Add(SegmentFile.Open(budget, path, FileMode.Open));
            Assert.InRange(budget.OpenCount, 1, 32);
        }
        // Evicted in batches of at most 1/16 of the limit past it: never fewer open than the limit less that slack.
        Assert.InRange(budget.OpenCount, 30, 32);
        Assert.Equal(files.Count(f => f.IsOpen), budget.OpenCount);

        // A file registered without opening it opens on first use; that is not a reopen. A closed one reopening is.
        var lazyPath = _dir.Sub("lazy");
        File.WriteAllBytes(lazyPath, [7]);
        var lazy = SegmentFile.OpenLazily(budget, lazyPath);
        Assert.False(lazy.IsOpen);
        long reopens = budget.Reopens;
        using (var l = lazy.Acquire()) Assert.Equal(7, Read1(l));
        Assert.Equal(reopens, budget.Reopens);
        var closed = files.First(f => !f.IsOpen);
        using (var l = closed.Acquire()) Assert.Equal(1, Read1(l));
        Assert.Equal(reopens + 1, budget.Reopens);
        lazy.Dispose();
        foreach (var f in files) f.Dispose();
        Assert.Equal(0, budget.OpenCount);
    }

    private static byte Read1(FileLease lease)
    {
        Span<byte> b = stackalloc byte[1];
        Assert.Equal(1, RandomAccess.Read(lease.Handle, b, 0));
        return b[0];
    }

    private static int CountBatches(ReadOnlySpan<byte> batches)
    {
        int n = 0, pos = 0;
        while (pos < batches.Length)
        {
            Assert.True(RecordBatchHeader.TryRead(batches[pos..], out var h));
            pos += h.TotalSize;
            n++;
        }
        return n;
    }

    private static byte[] Concat(IEnumerable<byte[]> parts) => parts.SelectMany(b => b).ToArray();
}
