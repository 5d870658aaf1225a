using Cairn.Broker.Network;

namespace Cairn.Tests.Broker;

public sealed class RequestMemoryBudgetTests
{
    [Fact]
    public async Task Reservations_wait_first_come_first_served_until_bytes_are_released()
    {
        var budget = new RequestMemoryBudget(100);
        await budget.ReserveAsync(60, CancellationToken.None);
        var large = budget.ReserveAsync(80, CancellationToken.None).AsTask();
        var small = budget.ReserveAsync(10, CancellationToken.None).AsTask(); // fits, but waits behind the earlier, larger one
        Assert.False(large.IsCompleted);
        Assert.False(small.IsCompleted);
        Assert.Equal(60, budget.InUse);

        budget.Release(60);
        await large.WaitAsync(TimeSpan.FromSeconds(10));
        await small.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(90, budget.InUse);
        budget.Release(80);
        budget.Release(10);
        Assert.Equal(0, budget.InUse);
    }

    [Fact]
    public async Task A_cancelled_waiter_gives_way_to_the_ones_behind_it()
    {
        var budget = new RequestMemoryBudget(100);
        await budget.ReserveAsync(50, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var blocked = budget.ReserveAsync(100, cancel.Token).AsTask();
        var behind = budget.ReserveAsync(50, CancellationToken.None).AsTask();
        Assert.False(behind.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked.WaitAsync(TimeSpan.FromSeconds(10)));
        await behind.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(100, budget.InUse);
    }
}
