using System.Diagnostics;
using Cairn.Storage;
using Xunit.Abstractions;

namespace Cairn.Tests.Storage;

/// <summary>Runs alone: the allocation measurement counts the whole process's allocations.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    public const string Name = "alone";
}

[Collection(AloneCollection.Name)]
public sealed class AppendWaiterTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private PartitionLog Open(string name, int partition = 0) =>
        PartitionLog.Open(_dir.Sub(name), "t", partition, LogConfig.Default with { FileDeleteDelayMs = 0 });

    private static void Append(PartitionLog log, int records = 1) => log.Append(TestBatch.Simple(records));

    private static ValueTask Wait(AppendWaiter waiter, TimeSpan timeout, CancellationToken cancellationToken, params PartitionLog[] logs)
    {
        waiter.Start();
        foreach (var log in logs) waiter.Watch(log, log.HighWatermark);
        return waiter.WaitAsync(timeout, cancellationToken);
    }

    [Fact]
    public async Task An_append_to_any_watched_log_wakes_the_wait_and_the_waiter_can_be_reused()
    {
        using var a = Open("a");
        using var b = Open("b", 1);
        using var waiter = new AppendWaiter();
        for (int round = 0; round < 3; round++)
        {
            var wait = Wait(waiter, Timeout.InfiniteTimeSpan, default, a, b).AsTask();
            await Task.Delay(50);
            Assert.False(wait.IsCompleted);
            Append(round % 2 == 0 ? b : a);
            await wait.WaitAsync(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task A_log_already_past_the_seen_high_watermark_completes_the_wait_at_once()
    {
        using var a = Open("a");
        Append(a);
        using var waiter = new AppendWaiter();
        waiter.Start();
        waiter.Watch(a, 0);
        var wait = waiter.WaitAsync(TimeSpan.FromSeconds(30), default);
        Assert.True(wait.IsCompleted);
        await wait;
    }

    [Fact]
    public async Task The_timeout_ends_the_wait()
    {
        using var a = Open("a");
        using var waiter = new AppendWaiter();
        var watch = Stopwatch.StartNew();
        await Wait(waiter, TimeSpan.FromMilliseconds(200), default, a).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(watch.ElapsedMilliseconds >= 180, $"woke after {watch.ElapsedMilliseconds} ms");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_token_or_closing_a_watched_log_ends_the_wait(bool byToken)
    {
        using var a = Open("a");
        var b = Open("b", 1);
        using var waiter = new AppendWaiter();
        using var cts = new CancellationTokenSource();
        var wait = Wait(waiter, Timeout.InfiniteTimeSpan, cts.Token, a, b).AsTask();
        await Task.Delay(50);
        Assert.False(wait.IsCompleted);
        if (byToken) cts.Cancel();
        else b.Close();
        await wait.WaitAsync(TimeSpan.FromSeconds(5));
        b.Dispose();
    }

    /// <summary>
    /// Measures the bytes a long-poll wait allocates, woken by an append (net of the append itself) or by its timeout, and prints them.
    /// The bound is generous (GC accounting counts other threads' allocations too); it catches a return to
    /// allocating a token source, timer and tasks per wait (about 2.4 KB per wait before the waiter existed).
    /// </summary>
    [Fact]
    public async Task A_wait_allocates_little()
    {
        using var a = Open("a");
        using var b = Open("b", 1);
        using var waiter = new AppendWaiter();
        using var connection = new CancellationTokenSource();
        var batch = TestBatch.Simple(1);
        const int Waits = 10_000;
        async Task WaitsAsync(int count)
        {
            for (int i = 0; i < count; i++)
            {
                var wait = Wait(waiter, TimeSpan.FromSeconds(30), connection.Token, a, b);
                b.Append((byte[])batch.Clone());
                await wait;
            }
        }
        await WaitsAsync(200); // warm up: pools, lists and the token's registration nodes reach their size

        long start = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < Waits; i++) b.Append((byte[])batch.Clone());
        long appendsOnly = GC.GetTotalAllocatedBytes(precise: true) - start;

        start = GC.GetTotalAllocatedBytes(precise: true);
        await WaitsAsync(Waits);
        long perWait = (GC.GetTotalAllocatedBytes(precise: true) - start - appendsOnly) / Waits;

        const int Timeouts = 1000;
        start = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < Timeouts; i++) await Wait(waiter, TimeSpan.FromMilliseconds(1), connection.Token, a, b);
        long perTimeout = (GC.GetTotalAllocatedBytes(precise: true) - start) / Timeouts;

        output.WriteLine($"append-woken long-poll wait: {perWait} B/wait net of the append ({perWait * Waits} B per {Waits} waits)");
        output.WriteLine($"timed-out long-poll wait: {perTimeout} B/wait");
        Assert.True(perWait < 600, $"{perWait} B per append-woken wait");
        Assert.True(perTimeout < 600, $"{perTimeout} B per timed-out wait");
    }
}
