using Cairn.Offsets;

namespace Cairn.Tests.Offsets;

public sealed class InMemoryOffsetStoreTests : OffsetStoreContractTests
{
    protected override Task<IOffsetStore> CreateStoreAsync() => Task.FromResult<IOffsetStore>(new InMemoryOffsetStore());

    protected override Task<IOffsetStore?> ReopenAsync() => Task.FromResult<IOffsetStore?>(null);

    [Fact]
    public async Task Starts_with_the_given_offsets()
    {
        await using var store = new InMemoryOffsetStore([new("a", Offset.Sequence(3))]);
        Assert.Equal(Offset.Sequence(3), await store.GetAsync("a"));
    }
}

/// <summary>The decorator passes the contract too (with a hook installed, so its bookkeeping is exercised).</summary>
public sealed class InstrumentedOffsetStoreContractTests : OffsetStoreContractTests
{
    protected override Task<IOffsetStore> CreateStoreAsync() =>
        Task.FromResult<IOffsetStore>(new InMemoryOffsetStore().WithHooks(new RecordingCommitHook()));

    protected override Task<IOffsetStore?> ReopenAsync() => Task.FromResult<IOffsetStore?>(null);
}
