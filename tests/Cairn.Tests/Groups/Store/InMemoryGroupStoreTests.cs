using System.Collections.Concurrent;
using Cairn.Broker.Groups;
using Cairn.Broker.Groups.Store;

namespace Cairn.Tests.Groups.Store;

public sealed class InMemoryGroupStoreTests : GroupStoreContractTests
{
    private readonly ConcurrentDictionary<string, InMemoryGroupDatabase> _databases = new();

    private protected override int KnownSchemaVersion => InMemoryGroupStore.SchemaVersion;

    private protected override Task<string> NewDatabaseAsync()
    {
        var name = Guid.NewGuid().ToString("N");
        _databases[name] = new InMemoryGroupDatabase();
        return Task.FromResult(name);
    }

    private protected override IGroupStore CreateStore(string location, string clusterId) =>
        new InMemoryGroupStore(clusterId, _databases[location]);

    private protected override Task SetSchemaVersionAsync(string location, int version)
    {
        _databases[location].SchemaVersion = version;
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Stored_values_are_copies()
    {
        var store = new InMemoryGroupStore("c");
        await store.InitializeAsync();
        var group = SampleGroup("g");
        await store.SaveGroupAsync(group);
        group.Members[0].Assignment[0] ^= 0xFF;
        var stored = Assert.Single(await store.GetGroupsAsync());
        Assert.NotEqual(group.Members[0].Assignment[0], stored.Members[0].Assignment[0]);
    }
}
