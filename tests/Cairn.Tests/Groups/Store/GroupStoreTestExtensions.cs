using Cairn.Broker.Groups;

namespace Cairn.Tests.Groups.Store;

internal static class GroupStoreTestExtensions
{
    /// <summary>One group's offsets, read through the store's only offset read path (the start-up load).</summary>
    public static async Task<IReadOnlyList<CommittedOffset>> GetGroupOffsetsAsync(this IGroupStore store, string groupId) =>
        (await store.GetAllOffsetsAsync()).TryGetValue(groupId, out var offsets) ? offsets : [];
}
