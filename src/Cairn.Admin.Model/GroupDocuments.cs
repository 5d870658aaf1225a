namespace Cairn.Admin.Model;

// The JSON documents of consumer groups and offset resets, defined once for both producers of them: the admin HTTP API
// (GET /api/v1/groups[/{g}], POST /api/v1/groups/{g}/reset) and the command line (`cairn groups list|describe|reset-offsets
// --output json`). Both serialize these records with AdminDocuments.Json (camelCase), so a script written against one reads
// the other. Values a side cannot know are null there (the command line cannot see commit times, the broker has no
// coordinator lookups to make), never left out.
public static partial class AdminDocuments
{
    /// <summary>One line of <c>groups list</c>: the group, its state, how many members, and its total lag.</summary>
    /// <param name="Partitions">partitions with a committed offset</param>
    /// <param name="LagRecords">the sum of the partitions' lag in records</param>
    /// <param name="LagSeconds">the largest lag in time (age of the oldest unconsumed record); null when not computed</param>
    public sealed record GroupSummaryDto(string GroupId, string State, string ProtocolType, int Members, int Partitions, long LagRecords, double? LagSeconds);

    public sealed record GroupsDto(IReadOnlyList<GroupSummaryDto> Groups);

    /// <summary>A group described: members with their assignments and, per partition, the committed offset next to the log.</summary>
    /// <param name="Coordinator">the node id of the group's coordinator</param>
    /// <param name="LagRecords">the sum of the partitions' lag in records</param>
    /// <param name="LagSeconds">the largest lag in time; null when not computed</param>
    public sealed record GroupDto(string GroupId, string State, string ProtocolType, string Protocol, int? Coordinator, IReadOnlyList<MemberDto> Members,
        IReadOnlyList<GroupPartitionDto> Partitions, long LagRecords, double? LagSeconds);

    /// <summary>The groups of <c>cairn groups describe --output json</c> (several at once).</summary>
    public sealed record GroupDescriptionsDto(IReadOnlyList<GroupDto> Groups);

    /// <param name="Assignment">per topic, the member's partitions; null when the group does not use the consumer protocol (or it does not decode)</param>
    public sealed record MemberDto(string MemberId, string? GroupInstanceId, string ClientId, string ClientHost, IReadOnlyList<AssignmentDto>? Assignment);

    public sealed record AssignmentDto(string Topic, IReadOnlyList<int> Partitions);

    /// <summary>
    /// A partition the group has committed or a member is assigned. Null committed offset: nothing committed yet;
    /// the member fields name the member the partition is assigned to (null: none).
    /// </summary>
    /// <param name="FirstUnconsumedTimestamp">timestamp of the record at the committed offset (the first not yet consumed); null when caught up or unknown</param>
    /// <param name="CommitTime">when the offset was committed (the admin API only: Kafka's protocol does not carry it)</param>
    public sealed record GroupPartitionDto(string Topic, int Partition, long? CommittedOffset, long? LogStartOffset, long? LogEndOffset, long? Lag,
        double? LagSeconds, string? Metadata, DateTimeOffset? CommitTime, DateTimeOffset? FirstUnconsumedTimestamp,
        string? MemberId, string? ClientId, string? ClientHost);

    /// <summary>An offset reset plan, before (dry run) or after it was committed.</summary>
    /// <param name="Mode">the mode's name (to-offset, shift-by, ...)</param>
    /// <param name="Spec">the mode with its argument, as the command line writes it (to-offset 42)</param>
    /// <param name="Scope">which partitions were asked for</param>
    /// <param name="Table">the plan as a text table</param>
    public sealed record ResetDto(string GroupId, string Mode, string Spec, string Scope, bool DryRun, bool Executed, string GroupState, int ActiveMembers,
        IReadOnlyList<ResetRowDto> Plan, IReadOnlyList<string> Errors, IReadOnlyList<string> Warnings, string? Message, string Table);

    /// <param name="Error">why this partition could not be committed; null when it was (or was not tried)</param>
    public sealed record ResetRowDto(string Topic, int Partition, long? Current, long Requested, long Target, bool Clamped,
        long LogStartOffset, long LogEndOffset, string? Note, string? Error);

    /// <summary>The reset document for <paramref name="plan"/>; <paramref name="failed"/> gives the partitions whose commit failed.</summary>
    public static ResetDto ResetBody(string groupId, OffsetResetPlan plan, string scope, bool dryRun, bool executed, string groupState, int activeMembers,
        IReadOnlyList<string> warnings, string? message, IReadOnlyDictionary<(string Topic, int Partition), string>? failed = null) =>
        new(groupId, OffsetResetSpec.NameOf(plan.Spec.Mode), plan.Spec.ToString(), scope, dryRun, executed, groupState, activeMembers,
            plan.Rows.Select(r => new ResetRowDto(r.Topic, r.Partition, r.Current, r.Requested, r.Target, r.Clamped, r.LogStartOffset, r.LogEndOffset, r.ClampNote,
                failed?.GetValueOrDefault((r.Topic, r.Partition)))).ToList(),
            plan.Errors, warnings, message, plan.FormatTable());

    /// <summary>How the scope of a reset reads in its document.</summary>
    public static string ScopeText(IReadOnlyList<OffsetResetScope> scopes) =>
        scopes.Count == 0 ? "the file's partitions" : string.Join(", ", scopes.Select(s => s.ToString()));

    /// <summary>Per topic, the sorted partitions of a consumer-protocol assignment.</summary>
    public static IReadOnlyList<AssignmentDto> Assignment(IEnumerable<(string Topic, int Partition)> partitions) =>
        partitions.GroupBy(p => p.Topic).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new AssignmentDto(g.Key, g.Select(p => p.Partition).Distinct().Order().ToList())).ToList();
}
