using Cairn.Sql;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Tests.Sql;

public sealed class CommitBatcherTests
{
    /// <summary>A request is a name; its weight is given to EnqueueAsync.</summary>
    private static string Request(string name, int weight = 1) => name;

    private static CommitBatcher<string> Batcher(Func<List<PendingCommit<string>>, ValueTask> write, int maxBatchWeight) =>
        new(write, NullLogger.Instance, maxBatchWeight, "test commit");

    [Fact]
    public async Task Commits_queued_while_a_transaction_is_in_flight_share_the_next_one()
    {
        var batches = new List<string[]>();
        var firstStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var batcher = Batcher(async batch =>
        {
            lock (batches) batches.Add(batch.Select(p => p.Item).ToArray());
            if (batches.Count == 1)
            {
                firstStarted.SetResult();
                await release.Task;
            }
        }, 1000);

        var first = batcher.EnqueueAsync(Request("first"), 1, default);
        await firstStarted.Task;
        var queued = Enumerable.Range(0, 10).Select(i => batcher.EnqueueAsync(Request($"q{i}"), 1, default)).ToList();
        Assert.False(first.IsCompleted);
        release.SetResult();
        await first;
        await Task.WhenAll(queued);

        Assert.Equal(2, batches.Count);
        Assert.Equal(["first"], batches[0]);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"q{i}"), batches[1]);
        Assert.Equal(2, batcher.Transactions);
        Assert.Equal(11, batcher.Requests);
        await batcher.CompleteAsync();
    }

    [Fact]
    public async Task Batches_are_split_at_the_offset_limit()
    {
        var sizes = new List<int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var batcher = Batcher(async batch =>
        {
            sizes.Add(batch.Sum(p => p.Weight));
            if (sizes.Count == 1) { started.SetResult(); await gate.Task; }
        }, 10);
        var first = batcher.EnqueueAsync(Request("a", 1), 1, default);
        await started.Task;
        var rest = Enumerable.Range(0, 6).Select(_ => batcher.EnqueueAsync(Request("b", 4), 4, default)).ToList();
        var huge = batcher.EnqueueAsync(Request("c", 25), 25, default); // bigger than the limit: goes alone
        gate.SetResult();
        await Task.WhenAll(rest.Append(first).Append(huge));
        Assert.Equal([1, 8, 8, 8, 25], sizes);
        await batcher.CompleteAsync();
    }

    [Fact]
    public async Task A_failing_database_fails_every_caller_of_the_batch()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        var batcher = Batcher(async batch =>
        {
            if (Interlocked.Increment(ref calls) == 1) { started.SetResult(); await gate.Task; return; }
            throw new IOException("disk on fire");
        }, 1000);
        var first = batcher.EnqueueAsync(Request("ok"), 1, default);
        await started.Task;
        var failing = Enumerable.Range(0, 5).Select(i => batcher.EnqueueAsync(Request($"f{i}"), 1, default)).ToList();
        gate.SetResult();
        await first;
        foreach (var t in failing)
            Assert.Equal("disk on fire", (await Assert.ThrowsAsync<IOException>(() => t)).Message);

        // The loop survives a failure.
        var ok = false;
        var later = Batcher(_ => { ok = true; return ValueTask.CompletedTask; }, 1000);
        await later.EnqueueAsync(Request("x"), 1, default);
        Assert.True(ok);
        await batcher.CompleteAsync();
    }

    [Fact]
    public async Task One_bad_request_fails_alone()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var written = new List<string>();
        var calls = 0;
        var batcher = Batcher(async batch =>
        {
            if (Interlocked.Increment(ref calls) == 1) { started.SetResult(); await gate.Task; }
            if (batch.Any(p => p.Item == "poison")) throw new InvalidOperationException("poison");
            written.AddRange(batch.Select(p => p.Item));
        }, 1000);
        var first = batcher.EnqueueAsync(Request("first"), 1, default);
        await started.Task;
        var a = batcher.EnqueueAsync(Request("a"), 1, default);
        var poison = batcher.EnqueueAsync(Request("poison"), 1, default);
        var b = batcher.EnqueueAsync(Request("b"), 1, default);
        gate.SetResult();
        await first;
        await a;
        await b;
        await Assert.ThrowsAsync<InvalidOperationException>(() => poison);
        Assert.Equal(["first", "a", "b"], written);
        await batcher.CompleteAsync();
    }

    [Fact]
    public async Task A_request_cancelled_while_queued_is_never_written()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var written = new List<string>();
        var batcher = Batcher(async batch =>
        {
            written.AddRange(batch.Select(p => p.Item));
            if (written.Count == 1) { started.SetResult(); await gate.Task; }
        }, 1000);
        var first = batcher.EnqueueAsync(Request("first"), 1, default);
        await started.Task;
        using var cts = new CancellationTokenSource();
        var cancelled = batcher.EnqueueAsync(Request("cancelled"), 1, cts.Token);
        var kept = batcher.EnqueueAsync(Request("kept"), 1, default);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        gate.SetResult();
        await first;
        await kept;
        Assert.Equal(["first", "kept"], written);
        await batcher.CompleteAsync();
    }

    [Fact]
    public async Task Completing_writes_what_is_queued_then_refuses_new_commits()
    {
        var written = 0;
        var batcher = Batcher(async batch => { await Task.Delay(5); Interlocked.Add(ref written, batch.Count); }, 1000);
        var tasks = Enumerable.Range(0, 20).Select(i => batcher.EnqueueAsync(Request($"g{i}"), 1, default)).ToList();
        await batcher.CompleteAsync();
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully));
        Assert.Equal(20, written);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => batcher.EnqueueAsync(Request("late"), 1, default));
    }
}
