using System.Buffers.Binary;
using Cairn.Protocol;
using Cairn.Protocol.Records;
using Cairn.Storage;

namespace Cairn.Tests.Storage;

public sealed class PartitionLogTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTime _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));

    public void Dispose() => _dir.Dispose();

    private PartitionLog Open(LogConfig? config = null, string name = "p") =>
        PartitionLog.Open(_dir.Sub(name), "t", 0, config ?? LogConfig.Default with { FileDeleteDelayMs = 0 }, time: _time);

    private static AppendResult Append(PartitionLog log, byte[] batch) => log.Append((byte[])batch.Clone());

    [Fact]
    public void Append_assigns_sequential_offsets_and_stores_bytes_verbatim()
    {
        using var log = Open();
        var b1 = TestBatch.Simple(3);
        var b2 = TestBatch.Simple(1, fill: 0x41);
        var b3 = TestBatch.Simple(5, valueSize: 100);

        var r1 = Append(log, b1);
        var r2 = Append(log, b2);
        var r3 = Append(log, b3);

        Assert.Equal((ErrorCode.None, 0L, 2L), (r1.Error, r1.BaseOffset, r1.LastOffset));
        Assert.Equal((ErrorCode.None, 3L, 3L), (r2.Error, r2.BaseOffset, r2.LastOffset));
        Assert.Equal((ErrorCode.None, 4L, 8L), (r3.Error, r3.BaseOffset, r3.LastOffset));
        Assert.Equal(-1, r1.LogAppendTime);
        Assert.Equal(0, r1.LogStartOffset);
        Assert.Equal(9, log.HighWatermark);

        var read = log.Read(0, 1 << 20);
        Assert.Equal(ErrorCode.None, read.Error);
        Assert.Equal(9, read.HighWatermark);
        var expected = TestBatch.WithBaseOffset(b1, 0).Concat(TestBatch.WithBaseOffset(b2, 3)).Concat(TestBatch.WithBaseOffset(b3, 4)).ToArray();
        Assert.Equal(expected, read.Records.Bytes());
        Assert.Equal(3, TestBatch.Split(read.Records.Bytes()).Count); // CRCs still valid

        // A repeated read of the same offset returns the same bytes.
        Assert.Equal(expected, log.Read(0, 1 << 20).Records.Bytes());
    }

    [Fact]
    public void Several_batches_in_one_append_get_consecutive_offsets()
    {
        using var log = Open();
        var b1 = TestBatch.Simple(2);
        var b2 = TestBatch.Simple(4);
        var input = b1.Concat(b2).ToArray();
        var r = log.Append(input);
        Assert.Equal((0L, 5L), (r.BaseOffset, r.LastOffset));
        var batches = TestBatch.Split(log.Read(0, 10000).Records.Bytes());
        Assert.Equal([(0L, 1L), (2L, 5L)], batches.Select(b => (b.Base, b.Last)));
    }

    [Fact]
    public void Read_from_inside_a_batch_returns_the_whole_batch()
    {
        using var log = Open();
        Append(log, TestBatch.Simple(3));
        var b2 = TestBatch.Simple(5);
        Append(log, b2);
        Append(log, TestBatch.Simple(2));

        var read = log.Read(5, 1 << 20);
        var batches = TestBatch.Split(read.Records.Bytes());
        Assert.Equal(3, batches[0].Base);
        Assert.Equal(TestBatch.WithBaseOffset(b2, 3), batches[0].Bytes);
        Assert.Equal(2, batches.Count);
    }

    [Fact]
    public void Out_of_range_and_high_watermark_reads()
    {
        using var log = Open();
        Append(log, TestBatch.Simple(3));
        Append(log, TestBatch.Simple(3));

        Assert.Equal(ErrorCode.OffsetOutOfRange, log.Read(7, 100).Error);
        Assert.Equal(ErrorCode.OffsetOutOfRange, log.Read(-1, 100).Error);
        var atHwm = log.Read(6, 100);
        Assert.Equal(ErrorCode.None, atHwm.Error);
        Assert.Equal(0, atHwm.Records.Length);

        Assert.Equal(new DeleteRecordsResult(ErrorCode.None, 4), log.DeleteRecords(4));
        var below = log.Read(2, 100);
        Assert.Equal(ErrorCode.OffsetOutOfRange, below.Error);
        Assert.Equal(4, below.LogStartOffset);
        // Offset 4 is inside the batch 3..5, which is returned whole.
        Assert.Equal(3, TestBatch.Split(log.Read(4, 1000).Records.Bytes())[0].Base);
    }

    [Fact]
    public void High_watermark_is_visible_before_any_fsync()
    {
        using var log = Open();
        Append(log, TestBatch.Simple(10));
        Assert.Equal(10, log.HighWatermark);
        Assert.True(log.DurableOffset < 10);
        Assert.Single(TestBatch.Split(log.Read(0, 100000).Records.Bytes()));
    }

    [Fact]
    public async Task FlushAsync_makes_offsets_durable_and_coalesces()
    {
        using var log = Open();
        Append(log, TestBatch.Simple(10));
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => log.FlushAsync(9).AsTask()));
        Assert.Equal(10, log.DurableOffset);
        Assert.True(log.FlushAsync(5).IsCompletedSuccessfully); // already durable: no work
        Append(log, TestBatch.Simple(1));
        await log.FlushAsync(long.MaxValue); // clamped to the log end
        Assert.Equal(11, log.DurableOffset);
    }

    [Fact]
    public async Task AppendAsync_with_flush_on_ack_is_durable_when_acknowledged()
    {
        using var log = PartitionLog.Open(_dir.Sub("ack"), "t", 0, LogConfig.Default, new StorageOptions { FlushOnAck = true }, time: _time);
        var r = await log.AppendAsync(TestBatch.Simple(4), acksAll: true);
        Assert.Equal(3, r.LastOffset);
        Assert.Equal(4, log.DurableOffset);
    }

    [Fact]
    public async Task Flush_messages_triggers_an_fsync()
    {
        using var log = Open(LogConfig.Default with { FlushMessages = 5 });
        await log.AppendAsync(TestBatch.Simple(3));
        Assert.True(log.DurableOffset < 3);
        await log.AppendAsync(TestBatch.Simple(3));
        Assert.Equal(6, log.DurableOffset);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(4096)]
    public void Index_lookups_across_many_batches_find_the_containing_batch(int interval)
    {
        using var log = Open(LogConfig.Default with { IndexIntervalBytes = interval, SegmentBytes = 64 * 1024 });
        var rnd = new Random(42);
        var ranges = new List<(long Base, long Last)>();
        for (int i = 0; i < 600; i++)
        {
            var r = Append(log, TestBatch.Simple(rnd.Next(1, 6), valueSize: rnd.Next(1, 300)));
            ranges.Add((r.BaseOffset, r.LastOffset));
        }
        Assert.True(log.SegmentCount > 1);
        for (long off = 0; off < log.HighWatermark; off += 1)
        {
            var batches = TestBatch.Split(log.Read(off, 1).Records.Bytes());
            Assert.Single(batches); // first batch is larger than 1 byte: returned whole, alone
            Assert.True(batches[0].Base <= off && off <= batches[0].Last, $"offset {off} not in {batches[0].Base}..{batches[0].Last}");
        }
        // Whole batches only, within maxBytes, in order, and never crossing a segment.
        for (long off = 0; off < log.HighWatermark; off += 37)
        {
            var bytes = log.Read(off, 2000).Records.Bytes();
            var batches = TestBatch.Split(bytes);
            Assert.True(bytes.Length <= 2000 || batches.Count == 1);
            for (int i = 1; i < batches.Count; i++) Assert.Equal(batches[i - 1].Last + 1, batches[i].Base);
            Assert.Contains((batches[0].Base, batches[0].Last), ranges);
        }
    }

    [Fact]
    public void First_batch_larger_than_max_bytes_is_returned_whole_unless_hard_limit()
    {
        using var log = Open();
        Append(log, TestBatch.Simple(2, valueSize: 500));
        Append(log, TestBatch.Simple(2));
        var soft = log.Read(0, 10);
        Assert.Single(TestBatch.Split(soft.Records.Bytes()));
        var hard = log.Read(0, 10, minOneBatch: false);
        Assert.Equal(0, hard.Records.Length);
    }

    [Fact]
    public void Segments_roll_by_size_with_kafka_file_names()
    {
        using var log = Open(LogConfig.Default with { SegmentBytes = 1000 });
        for (int i = 0; i < 20; i++) Append(log, TestBatch.Simple(2, valueSize: 100)); // ~ 300 bytes each
        Assert.True(log.SegmentCount >= 6, $"segments: {log.SegmentCount}");
        var bases = log.SegmentBaseOffsets;
        foreach (var b in bases)
        {
            var stem = Path.Combine(log.Directory, b.ToString("D20"));
            Assert.True(File.Exists(stem + ".log"));
            Assert.True(File.Exists(stem + ".index"));
            Assert.True(File.Exists(stem + ".timeindex"));
            Assert.True(new FileInfo(stem + ".log").Length <= 1000);
        }
        // A read stays within one segment.
        var read = TestBatch.Split(log.Read(0, 1 << 20).Records.Bytes());
        Assert.Equal(bases[1] - 1, read[^1].Last);
    }

    [Fact]
    public void Segments_roll_by_age()
    {
        using var log = Open(LogConfig.Default with { SegmentMs = 1000 });
        Append(log, TestBatch.Simple(1));
        _time.Advance(TimeSpan.FromMilliseconds(500));
        Append(log, TestBatch.Simple(1));
        Assert.Equal(1, log.SegmentCount);
        _time.Advance(TimeSpan.FromMilliseconds(501));
        Append(log, TestBatch.Simple(1));
        Assert.Equal(2, log.SegmentCount);
        Assert.Equal(2, log.SegmentBaseOffsets[1]);
    }

    [Fact]
    public void Retention_by_time_deletes_old_segments_and_advances_log_start()
    {
        using var log = Open(LogConfig.Default with { RetentionMs = 60_000, FileDeleteDelayMs = 0 });
        long t0 = _time.NowMs;
        Append(log, TestBatch.Simple(2, timestamp: t0 - 300_000)); // offsets 0-1
        log.Roll();
        Append(log, TestBatch.Simple(2, timestamp: t0 - 120_000)); // 2-3
        log.Roll();
        Append(log, TestBatch.Simple(2, timestamp: t0 - 1_000));   // 4-5
        log.Roll();
        Append(log, TestBatch.Simple(2, timestamp: t0));           // 6-7, active
        var firstLog = Path.Combine(log.Directory, 0L.ToString("D20") + ".log");
        Assert.True(File.Exists(firstLog));

        var r = log.ApplyRetention(_time.Now);
        Assert.Equal(2, r.SegmentsDeleted);
        Assert.Equal(4, r.LogStartOffset);
        Assert.Equal(4, log.LogStartOffset);
        Assert.False(File.Exists(firstLog));
        Assert.Equal(ErrorCode.OffsetOutOfRange, log.Read(1, 100).Error);
        Assert.Equal(4, TestBatch.Split(log.Read(4, 100000).Records.Bytes())[0].Base);

        // Much later everything has expired: the active segment is rolled and deleted too.
        var later = _time.Now.AddDays(1);
        var r2 = log.ApplyRetention(later);
        Assert.Equal(2, r2.SegmentsDeleted);
        Assert.Equal(8, log.LogStartOffset);
        Assert.Equal(8, log.HighWatermark);
        Assert.Equal(1, log.SegmentCount);
        Assert.Equal(8, Append(log, TestBatch.Simple(1)).BaseOffset);
    }

    [Fact]
    public void Retention_by_size_keeps_the_newest_segments()
    {
        using var log = Open(LogConfig.Default with { RetentionMs = -1, RetentionBytes = 700, SegmentBytes = 400 });
        for (int i = 0; i < 10; i++) Append(log, TestBatch.Simple(1, valueSize: 250)); // one ~330 byte batch per segment
        Assert.Equal(10, log.SegmentCount);
        var r = log.ApplyRetention(_time.Now);
        Assert.True(r.SegmentsDeleted >= 7, $"deleted {r.SegmentsDeleted}");
        Assert.True(log.SizeInBytes <= 700 + 400);
        Assert.Equal(log.SegmentBaseOffsets[0], log.LogStartOffset);
        Assert.Equal(10 - log.SegmentCount, log.LogStartOffset);
    }

    [Fact]
    public void Infinite_retention_and_compact_policy_delete_nothing()
    {
        using var log = Open(LogConfig.Default with { RetentionMs = 1, CleanupPolicy = "compact" });
        Append(log, TestBatch.Simple(1, timestamp: 1));
        log.Roll();
        Append(log, TestBatch.Simple(1, timestamp: 1));
        Assert.Equal(0, log.ApplyRetention(_time.Now).SegmentsDeleted);
    }

    [Fact]
    public void DeleteRecords_moves_log_start_and_deletes_whole_segments_below()
    {
        var dir = _dir.Sub("dr");
        using (var log = PartitionLog.Open(dir, "t", 0, LogConfig.Default with { FileDeleteDelayMs = 0 }, time: _time))
        {
            Append(log, TestBatch.Simple(3)); // 0-2
            log.Roll();
            Append(log, TestBatch.Simple(3)); // 3-5
            log.Roll();
            Append(log, TestBatch.Simple(3)); // 6-8

            Assert.Equal(ErrorCode.OffsetOutOfRange, log.DeleteRecords(10).Error);
            var r = log.DeleteRecords(4);
            Assert.Equal(new DeleteRecordsResult(ErrorCode.None, 4), r);
            Assert.Equal([3L, 6L], log.SegmentBaseOffsets);
            Assert.Equal(4, log.DeleteRecords(2).LowWatermark); // never moves back
            Assert.Equal(ErrorCode.OffsetOutOfRange, log.DeleteRecords(-1).Error); // the wire's -1 is the handler's to map
            Assert.Equal(9, log.DeleteRecords(log.HighWatermark).LowWatermark);
            Assert.Equal(9, log.LogStartOffset);
            Assert.Equal([6L], log.SegmentBaseOffsets); // the active segment stays
        }
        using (var log = PartitionLog.Open(dir, "t", 0, LogConfig.Default, time: _time))
        {
            Assert.Equal(9, log.LogStartOffset);
            Assert.Equal(9, log.HighWatermark);
            Assert.Equal(ErrorCode.OffsetOutOfRange, log.Read(7, 100).Error);
        }
    }

    [Fact]
    public void Invalid_batches_are_rejected_and_nothing_is_appended()
    {
        using var log = Open(LogConfig.Default with { MaxMessageBytes = 2000 });
        Append(log, TestBatch.Simple(1));

        var badCrc = TestBatch.Simple(2);
        badCrc[^1] ^= 0xFF;
        Assert.Equal(ErrorCode.CorruptMessage, Append(log, badCrc).Error);

        var magic1 = TestBatch.Simple(2);
        magic1[16] = 1;
        Assert.Equal(ErrorCode.UnsupportedForMessageFormat, Append(log, magic1).Error);

        Assert.Equal(ErrorCode.MessageTooLarge, Append(log, TestBatch.Simple(2, valueSize: 1500)).Error);

        var badDelta = TestBatch.Build([new TestRecord(null, [1], 1), new TestRecord(null, [2], 2)], lastOffsetDeltaOverride: 5);
        Assert.Equal(ErrorCode.InvalidRecord, Append(log, badDelta).Error);

        var truncated = TestBatch.Simple(2)[..^3];
        Assert.Equal(ErrorCode.CorruptMessage, Append(log, truncated).Error);
        Assert.Equal(ErrorCode.CorruptMessage, Append(log, new byte[10]).Error);

        // All-or-nothing: a valid batch followed by a corrupt one appends neither.
        var mixed = TestBatch.Simple(2).Concat(badCrc).ToArray();
        var r = Append(log, mixed);
        Assert.Equal(ErrorCode.CorruptMessage, r.Error);
        Assert.Equal(-1, r.BaseOffset);

        Assert.Equal(1, log.HighWatermark);
        Assert.Single(TestBatch.Split(log.Read(0, 100000).Records.Bytes()));
        Assert.Equal(1, Append(log, TestBatch.Simple(1)).BaseOffset);
    }

    [Fact]
    public void Idempotent_producer_duplicates_and_sequence_errors()
    {
        using var log = Open();
        const long pid = 1000;
        var first = TestBatch.Simple(3, producerId: pid, producerEpoch: 0, baseSequence: 0);
        Assert.Equal(0, Append(log, first).BaseOffset);
        Append(log, TestBatch.Simple(1)); // a non-idempotent batch in between: offset 3

        var dup = Append(log, first);
        Assert.Equal(ErrorCode.None, dup.Error);
        Assert.True(dup.IsDuplicate);
        Assert.Equal((0L, 2L), (dup.BaseOffset, dup.LastOffset));
        Assert.Equal(4, log.HighWatermark);

        Assert.Equal(4, Append(log, TestBatch.Simple(2, producerId: pid, producerEpoch: 0, baseSequence: 3)).BaseOffset);
        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, Append(log, TestBatch.Simple(1, producerId: pid, producerEpoch: 0, baseSequence: 9)).Error);
        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, Append(log, TestBatch.Simple(1, producerId: pid, producerEpoch: 0, baseSequence: 2)).Error);
        // New epoch must start at 0.
        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, Append(log, TestBatch.Simple(1, producerId: pid, producerEpoch: 1, baseSequence: 5)).Error);
        Assert.Equal(6, Append(log, TestBatch.Simple(1, producerId: pid, producerEpoch: 1, baseSequence: 0)).BaseOffset);
        Assert.Equal(ErrorCode.InvalidProducerEpoch, Append(log, TestBatch.Simple(1, producerId: pid, producerEpoch: 0, baseSequence: 5)).Error);
        // An unknown producer may start anywhere.
        Assert.Equal(7, Append(log, TestBatch.Simple(1, producerId: 77, producerEpoch: 3, baseSequence: 42)).BaseOffset);
        Assert.Equal(8, log.HighWatermark);
    }

    [Fact]
    public void Idempotent_state_survives_restart()
    {
        var dir = _dir.Sub("idem");
        var b = TestBatch.Simple(2, producerId: 5, producerEpoch: 0, baseSequence: 0);
        var log = PartitionLog.Open(dir, "t", 0, time: _time);
        Append(log, b);
        log.Close();
        log = PartitionLog.Open(dir, "t", 0, time: _time); // clean: from the snapshot
        Assert.True(Append(log, b).IsDuplicate);
        Append(log, TestBatch.Simple(1, producerId: 5, producerEpoch: 0, baseSequence: 2));
        log.SimulateCrash();
        log = PartitionLog.Open(dir, "t", 0, time: _time); // unclean: rebuilt from the log
        var again = Append(log, TestBatch.Simple(1, producerId: 5, producerEpoch: 0, baseSequence: 2));
        Assert.True(again.IsDuplicate);
        Assert.Equal(2, again.BaseOffset);
        Assert.Equal(ErrorCode.OutOfOrderSequenceNumber, Append(log, TestBatch.Simple(1, producerId: 5, producerEpoch: 0, baseSequence: 7)).Error);
        log.Close();
    }

    [Fact]
    public void LogAppendTime_stamps_batches_and_keeps_crc_valid()
    {
        using var log = Open(LogConfig.Default with { MessageTimestampType = TimestampType.LogAppendTime });
        var r = Append(log, TestBatch.Simple(3, timestamp: 5));
        Assert.Equal(_time.NowMs, r.LogAppendTime);
        var stored = TestBatch.Split(log.Read(0, 10000).Records.Bytes())[0].Bytes;
        Assert.True(RecordBatchHeader.TryRead(stored, out var h));
        Assert.True(h.IsLogAppendTime);
        Assert.Equal(_time.NowMs, h.MaxTimestamp);
        Assert.Equal(new OffsetAndTimestamp(0, _time.NowMs), log.FindOffsetByTimestamp(_time.NowMs - 10));
    }

    [Fact]
    public void ListOffsets_by_timestamp_finds_the_exact_record()
    {
        using var log = Open(LogConfig.Default with { IndexIntervalBytes = 64, SegmentBytes = 4096 });
        long ts = 1_000_000;
        // 100 batches of 4 records; record i of batch b has timestamp ts + 10*(4b+i).
        for (int b = 0; b < 100; b++)
        {
            var recs = Enumerable.Range(0, 4).Select(i => new TestRecord(null, [(byte)i], ts + 10 * (4 * b + i))).ToList();
            Append(log, TestBatch.Build(recs));
        }
        Assert.True(log.SegmentCount > 1);
        Assert.Equal(new OffsetAndTimestamp(0, ts), log.FindOffsetByTimestamp(0));
        Assert.Equal(new OffsetAndTimestamp(0, ts), log.FindOffsetByTimestamp(ts));
        Assert.Equal(new OffsetAndTimestamp(157, ts + 1570), log.FindOffsetByTimestamp(ts + 1570));
        Assert.Equal(new OffsetAndTimestamp(158, ts + 1580), log.FindOffsetByTimestamp(ts + 1571));
        Assert.Equal(new OffsetAndTimestamp(399, ts + 3990), log.FindOffsetByTimestamp(ts + 3990));
        Assert.Equal(OffsetAndTimestamp.None, log.FindOffsetByTimestamp(ts + 3991));

        Assert.Equal(0, log.LogStartOffset);
        Assert.Equal(400, log.HighWatermark);
        Assert.Equal(new OffsetAndTimestamp(399, ts + 3990), log.GetMaxTimestamp());

        // After DeleteRecords the answer never goes below the log start offset.
        log.DeleteRecords(250);
        Assert.Equal(new OffsetAndTimestamp(250, ts + 2500), log.FindOffsetByTimestamp(ts));
    }

    [Fact]
    public void ListOffsets_max_timestamp_finds_the_record_inside_a_batch()
    {
        using var log = Open();
        Append(log, TestBatch.Build([new TestRecord(null, [1], 100), new TestRecord(null, [2], 900), new TestRecord(null, [3], 200)]));
        Append(log, TestBatch.Build([new TestRecord(null, [1], 300)]));
        Assert.Equal(new OffsetAndTimestamp(1, 900), log.GetMaxTimestamp());
        Assert.Equal(new OffsetAndTimestamp(1, 900), log.FindOffsetByTimestamp(800));
        // First offset whose timestamp is >= target, in offset order.
        Assert.Equal(new OffsetAndTimestamp(1, 900), log.FindOffsetByTimestamp(150));
        Assert.Equal(new OffsetAndTimestamp(0, 100), log.FindOffsetByTimestamp(100));
        Assert.Equal(OffsetAndTimestamp.None, log.FindOffsetByTimestamp(901));
    }

    [Fact]
    public void ListOffsets_by_timestamp_in_gzip_batches()
    {
        using var log = Open();
        var recs = Enumerable.Range(0, 10).Select(i => new TestRecord(null, new byte[50], 1000 + i * 10)).ToList();
        Append(log, TestBatch.Build(recs, gzip: true));
        Assert.Equal(new OffsetAndTimestamp(4, 1040), log.FindOffsetByTimestamp(1035));
        Assert.Equal(new OffsetAndTimestamp(9, 1090), log.GetMaxTimestamp());
        Assert.Equal(OffsetAndTimestamp.None, log.FindOffsetByTimestamp(2000));
    }

    [Fact]
    public async Task Closed_log_answers_with_errors()
    {
        var log = Open();
        Append(log, TestBatch.Simple(1));
        log.Close();
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, Append(log, TestBatch.Simple(1)).Error);
        Assert.Equal(ErrorCode.UnknownTopicOrPartition, log.Read(0, 100).Error);
        using var waiter = new AppendWaiter();
        waiter.Start();
        waiter.Watch(log, 5);
        var wait = waiter.WaitAsync(Timeout.InfiniteTimeSpan, default); // a closed log wakes waiters at once
        Assert.True(wait.IsCompleted);
        await wait;
    }

    [Fact]
    public async Task Concurrent_appends_reads_and_retention_stay_consistent()
    {
        using var log = Open(LogConfig.Default with { SegmentBytes = 4096, IndexIntervalBytes = 256, RetentionBytes = 16384, RetentionMs = -1, FileDeleteDelayMs = 100 });
        var done = new ManualResetEventSlim();
        long errors = 0, reads = 0;
        var writer = Task.Factory.StartNew(() =>
        {
            var rnd = new Random(1);
            try
            {
                for (int i = 0; i < 3000; i++)
                    if (!log.Append(TestBatch.Simple(rnd.Next(1, 5), valueSize: rnd.Next(1, 200))).Succeeded) Interlocked.Increment(ref errors);
            }
            finally { done.Set(); }
        }, TaskCreationOptions.LongRunning);
        var retention = Task.Factory.StartNew(() =>
        {
            while (!done.IsSet) { log.ApplyRetention(_time.Now); Thread.Sleep(2); }
        }, TaskCreationOptions.LongRunning);
        var readers = Enumerable.Range(0, 3).Select(seed => Task.Factory.StartNew(() =>
        {
            var rnd = new Random(seed);
            while (!done.IsSet)
            {
                long start = log.LogStartOffset, hwm = log.HighWatermark;
                if (hwm == start) { Thread.Yield(); continue; }
                long off = start + rnd.NextInt64(hwm - start);
                var r = log.Read(off, 3000);
                if (r.Error == ErrorCode.OffsetOutOfRange) continue; // retention got there first
                Assert.Equal(ErrorCode.None, r.Error);
                byte[] bytes;
                try { bytes = r.Records.Bytes(); }
                catch (ObjectDisposedException) { continue; } // copied after file.delete.delay.ms: allowed to fail
                var batches = TestBatch.Split(bytes);
                Assert.NotEmpty(batches);
                Assert.True(batches[0].Base <= off && off <= batches[0].Last);
                Interlocked.Increment(ref reads);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(readers.Append(writer).Append(retention));
        Assert.Equal(0, Interlocked.Read(ref errors));
        Assert.True(Interlocked.Read(ref reads) > 0);
        log.ApplyRetention(_time.Now);
        Assert.True(log.LogStartOffset > 0, $"hwm {log.HighWatermark} segments {log.SegmentCount} size {log.SizeInBytes}");
        Assert.True(log.SizeInBytes <= 16384 + 4096);
        // Every remaining offset is readable, contiguous.
        long next = log.LogStartOffset;
        var first = TestBatch.Split(log.Read(next, 1 << 20).Records.Bytes());
        Assert.True(first[0].Base <= next && next <= first[0].Last);
    }
}
