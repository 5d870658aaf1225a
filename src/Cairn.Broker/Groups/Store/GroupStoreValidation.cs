namespace Cairn.Broker.Groups.Store;

/// <summary>Argument checks shared by every <see cref="IGroupStore"/> implementation.</summary>
internal static class GroupStoreValidation
{
    public static void ClusterId(string clusterId)
    {
        ArgumentNullException.ThrowIfNull(clusterId);
        if (clusterId.Length == 0) throw new ArgumentException("cluster id must not be empty", nameof(clusterId));
    }

    public static void GroupId(string groupId, string paramName = "groupId")
    {
        if (groupId is null) throw new ArgumentNullException(paramName, "group id must not be null");
    }

    /// <summary>Checks a commit request; returns the number of offsets it carries.</summary>
    public static int Commits(IReadOnlyList<GroupOffsetCommit> commits)
    {
        ArgumentNullException.ThrowIfNull(commits);
        var count = 0;
        for (var i = 0; i < commits.Count; i++)
        {
            var commit = commits[i] ?? throw new ArgumentException($"commits[{i}] is null", nameof(commits));
            if (commit.GroupId is null) throw new ArgumentException($"commits[{i}].GroupId is null", nameof(commits));
            var offsets = commit.Offsets ?? throw new ArgumentException($"commits[{i}].Offsets is null", nameof(commits));
            for (var j = 0; j < offsets.Count; j++)
            {
                var offset = offsets[j] ?? throw new ArgumentException($"commits[{i}].Offsets[{j}] is null", nameof(commits));
                if (offset.Topic is null) throw new ArgumentException($"commits[{i}].Offsets[{j}].Topic is null", nameof(commits));
                if (offset.Partition < 0)
                    throw new ArgumentOutOfRangeException(nameof(commits), offset.Partition, $"commits[{i}].Offsets[{j}].Partition is negative");
            }
            count += offsets.Count;
        }
        return count;
    }

    public static void Partitions(IReadOnlyList<(string Topic, int Partition)> partitions)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        for (var i = 0; i < partitions.Count; i++)
        {
            if (partitions[i].Topic is null) throw new ArgumentException($"partitions[{i}].Topic is null", nameof(partitions));
        }
    }

    public static void Topic(string topic)
    {
        if (topic is null) throw new ArgumentNullException(nameof(topic), "topic must not be null");
    }

    public static void Group(StoredGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (group.GroupId is null) throw new ArgumentException("group.GroupId is null", nameof(group));
        var members = group.Members ?? throw new ArgumentException("group.Members is null", nameof(group));
        for (var i = 0; i < members.Count; i++)
        {
            var m = members[i] ?? throw new ArgumentException($"group.Members[{i}] is null", nameof(group));
            if (m.MemberId is null) throw new ArgumentException($"group.Members[{i}].MemberId is null", nameof(group));
            if (m.ClientId is null) throw new ArgumentException($"group.Members[{i}].ClientId is null", nameof(group));
            if (m.ClientHost is null) throw new ArgumentException($"group.Members[{i}].ClientHost is null", nameof(group));
            if (m.Assignment is null) throw new ArgumentException($"group.Members[{i}].Assignment is null", nameof(group));
            var protocols = m.Protocols ?? throw new ArgumentException($"group.Members[{i}].Protocols is null", nameof(group));
            for (var j = 0; j < protocols.Count; j++)
            {
                var p = protocols[j] ?? throw new ArgumentException($"group.Members[{i}].Protocols[{j}] is null", nameof(group));
                if (p.Name is null) throw new ArgumentException($"group.Members[{i}].Protocols[{j}].Name is null", nameof(group));
                if (p.Metadata is null) throw new ArgumentException($"group.Members[{i}].Protocols[{j}].Metadata is null", nameof(group));
            }
        }
    }
}

/// <summary>The database holds a schema newer than this build knows (written by a newer Cairn).</summary>
internal sealed class GroupStoreSchemaException(string message) : InvalidOperationException(message);

/// <summary>The newer-schema error and the time conversions shared by the stores.</summary>
internal static class GroupStoreSchema
{
    public static GroupStoreSchemaException Newer(string store, string location, long found, int known) =>
        new($"The {store} group store at {location} has schema version {found}, newer than the newest this Cairn " +
            $"build knows ({known}); it was written by a newer Cairn. Upgrade Cairn or use another database.");

    public static long ToUnixMs(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    public static DateTimeOffset FromUnixMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}

/// <summary>Cached boxes of small ints (partitions, leader epochs), so binding them to ADO.NET parameters does not allocate.</summary>
internal static class SmallInts
{
    private const int Min = -1, Max = 4095;
    private static readonly object[] Boxes = Enumerable.Range(Min, Max - Min + 1).Select(i => (object)i).ToArray();

    public static object Box(int value) => (uint)(value - Min) <= Max - Min ? Boxes[value - Min] : value;
}
