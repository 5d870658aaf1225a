namespace Cairn.Broker.Groups;

/// <summary>
/// The live groups by id, shared by membership and committed offsets: a group exists as soon as either needs it.
/// It never takes a group's lock, so it may be called with one held.
/// </summary>
internal sealed class GroupRegistry
{
    private readonly Dictionary<string, ConsumerGroup> _groups = new(StringComparer.Ordinal);

    public int Count { get { lock (_groups) return _groups.Count; } }

    public ConsumerGroup GetOrCreate(string groupId)
    {
        lock (_groups)
        {
            if (!_groups.TryGetValue(groupId, out var group)) _groups[groupId] = group = new ConsumerGroup(groupId);
            return group;
        }
    }

    public ConsumerGroup? Find(string groupId)
    {
        lock (_groups) return _groups.GetValueOrDefault(groupId);
    }

    /// <summary>The groups at this moment; walking them needs no registry lock.</summary>
    public ConsumerGroup[] Snapshot()
    {
        lock (_groups) return _groups.Values.ToArray();
    }

    /// <summary>Forgets a dead group unless a new group of the same id has already taken its place.</summary>
    public void Remove(ConsumerGroup group)
    {
        lock (_groups) if (_groups.GetValueOrDefault(group.GroupId) == group) _groups.Remove(group.GroupId);
    }
}
