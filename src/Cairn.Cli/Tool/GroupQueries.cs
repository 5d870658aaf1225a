using Cairn.Admin.Model;
using Cairn.Client;
using static Cairn.Admin.Model.AdminDocuments;

namespace Cairn.Cli.Tool;

/// <summary>
/// What <c>groups list</c> and <c>groups describe</c> show, gathered from the cluster in few round trips: one
/// DescribeGroups and one OffsetFetch per group (sent concurrently), then one ListOffsets for the log end and one for the
/// log start of every partition of every group at once. The documents are the admin API's (<see cref="AdminDocuments"/>).
/// </summary>
internal static class GroupQueries
{
    private sealed record Gathered(GroupDescription Group, IReadOnlyDictionary<TopicPartition, OffsetAndMetadata> Committed,
        IReadOnlyDictionary<TopicPartition, GroupMemberDescription> Owners);

    private sealed record Ranges(IReadOnlyDictionary<TopicPartition, long> Starts, IReadOnlyDictionary<TopicPartition, long> Ends);

    private static async Task<List<Gathered>> GatherAsync(KafkaAdminClient admin, IReadOnlyList<string> groupIds, CancellationToken cancellationToken)
    {
        if (groupIds.Count == 0) return [];
        var describedTask = admin.DescribeGroupsAsync(groupIds, cancellationToken);
        var committedTasks = groupIds.Select(id => admin.FetchCommittedOffsetsAsync(id, null, cancellationToken)).ToList();
        var described = await describedTask;
        var committed = await Task.WhenAll(committedTasks);
        return described.Select((g, i) => new Gathered(g, committed[i], g.Members
            .SelectMany(m => (m.Assignment ?? []).Select(tp => (tp, m)))
            .GroupBy(x => x.tp).ToDictionary(x => x.Key, x => x.First().m))).ToList();
    }

    /// <summary>Log start and end of the partitions (those of topics that exist: a group may keep offsets of deleted ones).</summary>
    private static async Task<Ranges> RangesAsync(KafkaAdminClient admin, IEnumerable<TopicPartition> partitions, CancellationToken cancellationToken)
    {
        var all = partitions.ToHashSet();
        if (all.Count == 0) return new Ranges(new Dictionary<TopicPartition, long>(), new Dictionary<TopicPartition, long>());
        var counts = (await admin.ListTopicsAsync(true, cancellationToken)).ToDictionary(t => t.Name, t => t.PartitionCount);
        var listable = all.Where(tp => counts.TryGetValue(tp.Topic, out var n) && tp.Partition < n).ToList();
        if (listable.Count == 0) return new Ranges(new Dictionary<TopicPartition, long>(), new Dictionary<TopicPartition, long>());
        var ends = admin.ListOffsetsAsync(listable, OffsetSpec.Latest, cancellationToken: cancellationToken);
        var starts = admin.ListOffsetsAsync(listable, OffsetSpec.Earliest, cancellationToken: cancellationToken);
        return new Ranges((await starts).ToDictionary(kv => kv.Key, kv => kv.Value.Offset), (await ends).ToDictionary(kv => kv.Key, kv => kv.Value.Offset));
    }

    private static long? Lag(long? committed, TopicPartition tp, Ranges ranges) =>
        committed is { } c && ranges.Ends.TryGetValue(tp, out var end) ? LagMath.Records(c, ranges.Starts.GetValueOrDefault(tp, 0), end) : null;

    /// <summary>The groups (all of them, or those in <paramref name="states"/>) with members and total lag.</summary>
    public static async Task<List<GroupSummaryDto>> ListAsync(KafkaAdminClient admin, IReadOnlyList<string> states, CancellationToken cancellationToken)
    {
        var listed = await admin.ListGroupsAsync(states.Count > 0 ? states : null, cancellationToken);
        // Brokers too old to filter by state list everything: filter here too, where the state is known.
        if (states.Count > 0) listed = listed.Where(g => g.State is null || states.Contains(g.State, StringComparer.OrdinalIgnoreCase)).ToList();
        var gathered = await GatherAsync(admin, listed.Select(g => g.GroupId).ToList(), cancellationToken);
        var ranges = await RangesAsync(admin, gathered.SelectMany(g => g.Committed.Keys), cancellationToken);
        return gathered.Select(g => new GroupSummaryDto(g.Group.GroupId, g.Group.State, g.Group.ProtocolType, g.Group.Members.Count, g.Committed.Count,
            g.Committed.Sum(kv => Lag(kv.Value.Offset, kv.Key, ranges) ?? 0), null)).ToList();
    }

    /// <summary>
    /// The groups described; an unknown group is an error naming it. With <paramref name="lagTime"/>, the record at each
    /// lagging committed offset is read for its timestamp (the lag in time).
    /// </summary>
    public static async Task<List<GroupDto>> DescribeAsync(ToolContext ctx, IReadOnlyList<string> groupIds, bool lagTime, Action<string> status)
    {
        var admin = ctx.Admin;
        var gathered = await GatherAsync(admin, groupIds, ctx.CancellationToken);
        var missing = gathered.Where(g => g.Group.State == "Dead" && g.Group.Members.Count == 0 && g.Committed.Count == 0).Select(g => g.Group.GroupId).ToList();
        if (missing.Count > 0)
            throw new ToolException(missing.Count == 1 ? $"group '{missing[0]}' does not exist" : $"groups {string.Join(", ", missing.Select(m => $"'{m}'"))} do not exist");

        status("Reading log start and end offsets");
        var ranges = await RangesAsync(admin, gathered.SelectMany(g => g.Committed.Keys.Concat(g.Owners.Keys)), ctx.CancellationToken);

        // Lag in time: the age of the first record not yet consumed (the one at the committed offset).
        var timestamps = new Dictionary<(TopicPartition, long), DateTimeOffset>();
        var lagging = gathered.SelectMany(g => g.Committed.Where(kv => Lag(kv.Value.Offset, kv.Key, ranges) > 0).Select(kv => (Tp: kv.Key, kv.Value.Offset))).Distinct().ToList();
        if (lagTime && lagging.Count > 0)
        {
            status("Reading the records at the committed offsets");
            // One read per round; groups at different offsets of one partition need separate rounds.
            foreach (var round in lagging.GroupBy(x => x.Tp).SelectMany(g => g.Select((x, i) => (x, i))).GroupBy(y => y.i))
            {
                var positions = round.ToDictionary(y => y.x.Tp, y => y.x.Offset);
                var found = await CommittedRecords.TimestampsAsync(ctx.ClientOptions, positions, TimeSpan.FromSeconds(10), ctx.Verbose ? ToolRunner.Warn : null, ctx.CancellationToken);
                foreach (var (tp, ts) in found) timestamps[(tp, positions[tp])] = ts;
            }
        }

        var now = DateTimeOffset.UtcNow;
        return gathered.Select(g =>
        {
            var d = g.Group;
            var rows = g.Committed.Keys.Concat(g.Owners.Keys).Distinct().Order().Select(tp =>
            {
                var om = g.Committed.GetValueOrDefault(tp);
                long? committed = om?.Offset;
                long? lag = Lag(committed, tp, ranges);
                DateTimeOffset? ts = committed is { } c && timestamps.TryGetValue((tp, c), out var t) ? t : null;
                double? seconds = lag switch
                {
                    0 => 0,
                    > 0 when ts is { } tv => Math.Round(Math.Max(0, (now - tv).TotalSeconds), 3),
                    _ => null,
                };
                var owner = g.Owners.GetValueOrDefault(tp);
                return new GroupPartitionDto(tp.Topic, tp.Partition, committed, ranges.Starts.TryGetValue(tp, out var s) ? s : null,
                    ranges.Ends.TryGetValue(tp, out var e) ? e : null, lag, seconds, om?.Metadata, null, lag > 0 ? ts : null,
                    owner?.MemberId, owner?.ClientId, owner?.ClientHost);
            }).ToList();
            var members = d.Members.Select(m => new MemberDto(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost,
                m.Assignment is null ? null : AdminDocuments.Assignment(m.Assignment.Select(tp => (tp.Topic, tp.Partition))))).ToList();
            double? maxSeconds = rows.Any(r => r.LagSeconds is not null) ? rows.Max(r => r.LagSeconds ?? 0) : null;
            return new GroupDto(d.GroupId, d.State, d.ProtocolType, d.Protocol, d.Coordinator, members, rows, rows.Sum(r => r.Lag ?? 0), maxSeconds);
        }).ToList();
    }
}
