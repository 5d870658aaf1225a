using System.Globalization;
using System.Text.Json;
using Cairn.Admin.Model;
using Cairn.Broker.Groups;
using Cairn.Broker.Services;
using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Storage;
using static Cairn.Admin.Model.AdminDocuments;

namespace Cairn.Broker.Admin;

/// <summary>An HTTP answer from <see cref="AdminApi"/>: a status and a JSON body.</summary>
internal sealed record AdminResult(int Status, object Body);

/// <summary>
/// What the admin JSON endpoints answer, independent of the HTTP host: topics, groups with lag, lag history and
/// offset resets. Every body is a JSON object; errors are <c>{"error": "..."}</c>.
/// </summary>
internal sealed class AdminApi(ClusterIdentity cluster, LogManager logs, GroupCoordinator groups, OffsetResetService resets, LagSampler? sampler, TimeProvider time)
{
    private LogManager Logs => logs;
    private GroupCoordinator Groups => groups;

    // ------------------------------------------------------------------ broker

    public AdminResult Broker(System.Net.IPEndPoint kafka, DateTimeOffset startedAt) => new(200, new BrokerDto(
        cluster.ClusterId, cluster.NodeId, $"{cluster.AdvertisedHost}:{cluster.AdvertisedPort}", kafka.ToString(),
        CairnVersion.Value, startedAt, Logs.Topics.Count, Groups.ListGroups().Count,
        sampler?.Interval.TotalSeconds ?? 0));

    // ------------------------------------------------------------------ topics

    /// <summary>
    /// /healthz: 200 while the process serves (a liveness probe must not restart a broker over stored data), "degraded"
    /// with the offset store's problem when it started on a store that failed its integrity check (offset.store.accept.loss).
    /// </summary>
    public AdminResult Health() => groups.Store.IntegrityProblem is { } problem
        ? new(200, new HealthDto("degraded", new OffsetStoreHealthDto(problem.Kind == GroupStoreProblemKind.Corrupt ? "corrupt" : "writes_lost", problem.Message)))
        : new(200, new HealthDto("ok", null));

    public AdminResult Topics()
    {
        var topics = Logs.Topics.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => TopicSummary(t)).ToList();
        return new(200, new TopicsDto(topics));
    }

    public AdminResult Topic(string name)
    {
        if (!Logs.TryGetTopic(name, out var topic)) return Error(404, $"topic '{name}' does not exist");
        var configs = topic.DescribeConfigs()
            .Select(c => new ConfigDto(c.Name, c.IsSensitive ? null : c.Value, c.Source.ToString(), c.IsSensitive, c.ReadOnly))
            .ToList();
        return new(200, TopicSummary(topic, configs));
    }

    // A single broker: it leads every partition, the only replica and so the whole ISR. Cairn has no internal topics
    // (groups' offsets are not kept in a topic).
    private TopicDto TopicSummary(TopicLog topic, IReadOnlyList<ConfigDto>? configs = null)
    {
        int[] self = [cluster.NodeId];
        // An offline partition is shown as Metadata shows it (no leader) and with nothing its files did not tell.
        var partitions = topic.Partitions.Select(p => p.OfflineReason is { } reason
            ? PartitionBody(p.Partition, -1, self, self, null, null, null, null, reason)
            : PartitionBody(p.Partition, cluster.NodeId, self, self, p.LogStartOffset, p.HighWatermark, SafeSize(p), p.SegmentCount)).ToList();
        return TopicBody(topic.Name, topic.TopicId, false, partitions, configs);
    }

    private static long SafeSize(PartitionLog p)
    {
        try { return p.SizeInBytes; }
        catch (ObjectDisposedException) { return 0; }
    }

    // ------------------------------------------------------------------ groups

    public AdminResult GroupList()
    {
        var now = time.GetUtcNow();
        var groups = Groups.ListGroups().Select(g =>
        {
            var lags = GroupLagReader.Read(Groups, Logs, g.GroupId);
            var (records, seconds) = GroupLag.Totals(lags, now);
            return new GroupSummaryDto(g.GroupId, g.State.ToString(), g.ProtocolType, Groups.DescribeGroup(g.GroupId).Members.Count,
                lags.Count, records, Round(seconds));
        }).ToList();
        return new(200, new GroupsDto(groups));
    }

    public AdminResult Group(string groupId)
    {
        var description = Groups.DescribeGroup(groupId);
        var lags = GroupLagReader.Read(Groups, Logs, groupId);
        if (description.State == GroupState.Dead && lags.Count == 0) return Error(404, $"group '{groupId}' does not exist");
        var now = time.GetUtcNow();
        var (records, seconds) = GroupLag.Totals(lags, now);
        var members = description.Members.Select(m => new MemberDto(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost,
            description.ProtocolType == "consumer" ? Assignment(m.Assignment) : null)).ToList();
        var owners = new Dictionary<(string, int), MemberDto>();
        foreach (var m in members)
            foreach (var a in m.Assignment ?? [])
                foreach (var p in a.Partitions) owners.TryAdd((a.Topic, p), m);
        var partitions = lags.Select(l =>
        {
            var owner = owners.GetValueOrDefault((l.Topic, l.Partition));
            return new GroupPartitionDto(l.Topic, l.Partition, l.CommittedOffset, l.LogStartOffset, l.LogEndOffset, l.Lag,
                Round(GroupLag.LagSeconds(l, now)), l.Metadata, l.CommitTime, l.CommittedRecordTimestamp, owner?.MemberId, owner?.ClientId, owner?.ClientHost);
        }).ToList();
        // Like kafka-consumer-groups --describe: assigned partitions without a committed offset are listed too.
        foreach (var ((topic, partition), owner) in owners)
        {
            if (lags.Any(l => l.Topic == topic && l.Partition == partition)) continue;
            var log = Logs.GetPartition(topic, partition);
            partitions.Add(new GroupPartitionDto(topic, partition, null, log?.LogStartOffset, log?.HighWatermark, null, null, null, null, null,
                owner.MemberId, owner.ClientId, owner.ClientHost));
        }
        partitions.Sort((a, b) => a.Topic != b.Topic ? string.CompareOrdinal(a.Topic, b.Topic) : a.Partition.CompareTo(b.Partition));
        return new(200, new GroupDto(groupId, description.State.ToString(), description.ProtocolType, description.Protocol, cluster.NodeId,
            members, partitions, records, Round(seconds)));
    }

    private static IReadOnlyList<AssignmentDto>? Assignment(byte[] assignment)
    {
        if (assignment.Length == 0) return [];
        try
        {
            return AdminDocuments.Assignment(ConsumerProtocol.ReadAssignment(assignment).AssignedPartitions
                .SelectMany(t => t.Partitions.Select(p => (t.Topic, p))));
        }
        catch (Protocol.Primitives.MalformedMessageException) { return null; }
    }

    public AdminResult LagHistory(string groupId)
    {
        if (sampler is null) return Error(404, "lag sampling is off");
        var samples = sampler.HistoryOf(groupId);
        if (samples.Count == 0 && Groups.DescribeGroup(groupId).State == GroupState.Dead && Groups.FetchOffsets(groupId, null).Count == 0)
            return Error(404, $"group '{groupId}' does not exist");
        return new(200, new LagHistoryDto(groupId, sampler.Interval.TotalSeconds, sampler.History.TotalSeconds,
            samples.Select(s => new LagPointDto(s.Time, s.LagRecords, Round(s.LagSeconds))).ToList()));
    }

    // ------------------------------------------------------------------ reset

    /// <summary>
    /// POST /api/v1/groups/{g}/reset. The body names the mode either as <c>{"mode": "to-offset", "value": 42}</c> or as
    /// exactly one of <c>toEarliest</c>, <c>toLatest</c>, <c>toCurrent</c> (true), <c>toOffset</c>, <c>shiftBy</c> (integers),
    /// <c>toDatetime</c>, <c>byDuration</c> (ISO-8601 strings; a toDatetime without a zone is UTC: a server has no user's zone), <c>fromFile</c> (CSV text, or an array of
    /// {topic, partition, offset}); the scope as <c>topic</c> (+ optional <c>partitions</c>) or <c>allTopics: true</c>;
    /// and <c>execute</c> (default false: a dry run that only returns the plan).
    /// </summary>
    public async Task<AdminResult> ResetAsync(string groupId, JsonElement body, CancellationToken cancellationToken)
    {
        ResetRequest request;
        try { request = ParseResetRequest(body); }
        catch (FormatException e) { return Error(400, e.Message); }

        var plan = resets.Plan(groupId, request.Spec, request.Scope);
        var description = Groups.DescribeGroup(groupId);
        int active = description.Members.Count;
        var warnings = plan.Warnings.ToList();
        if (!request.Execute && active > 0) warnings.Add(OffsetResetService.ActiveGroupMessage(groupId, description) + " (executing this plan would be refused)");
        ResetDto Dto(bool executed, string? message, IReadOnlyList<PartitionError>? results = null) => ResetBody(groupId, plan,
            request.Scope?.ToString() ?? ScopeText([]), !request.Execute, executed, description.State.ToString(), active, warnings, message,
            results?.Where(r => r.Error != ErrorCode.None).ToDictionary(r => (r.Topic, r.Partition), r => r.Error.ToString()));

        if (!plan.IsValid) return new(400, Dto(false, "the plan has errors; nothing was changed"));
        if (!request.Execute) return new(200, Dto(false, "dry run: nothing was changed; send \"execute\": true to commit these offsets"));
        if (active > 0) return new(409, Dto(false, OffsetResetService.ActiveGroupMessage(groupId, description)));
        var outcome = await resets.ExecuteAsync(groupId, plan, cancellationToken);
        if (outcome.Refused) return new(409, Dto(false, outcome.Message, outcome.Results));
        if (!outcome.Succeeded) return new(500, Dto(false, "some partitions could not be committed", outcome.Results));
        return new(200, Dto(true, $"committed {plan.Rows.Count} offset(s)", outcome.Results));
    }

    public sealed record ResetRequest(OffsetResetSpec Spec, OffsetResetScope? Scope, bool Execute);

    private static readonly Dictionary<string, OffsetResetMode> ModeKeys = new()
    {
        ["toearliest"] = OffsetResetMode.ToEarliest, ["tolatest"] = OffsetResetMode.ToLatest, ["tooffset"] = OffsetResetMode.ToOffset,
        ["todatetime"] = OffsetResetMode.ToDatetime, ["byduration"] = OffsetResetMode.ByDuration, ["shiftby"] = OffsetResetMode.ShiftBy,
        ["tocurrent"] = OffsetResetMode.ToCurrent, ["fromfile"] = OffsetResetMode.FromFile,
    };

    /// <summary>Parses a reset body; unknown fields are refused, so a misspelt scope cannot silently widen the reset.</summary>
    public static ResetRequest ParseResetRequest(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) throw new FormatException("the body must be a JSON object");
        string? modeName = null;
        JsonElement? value = null;
        var modes = new List<(OffsetResetMode Mode, JsonElement Value, string Key)>();
        string? topic = null;
        List<int>? partitions = null;
        bool allTopics = false;
        bool? execute = null, dryRun = null;
        foreach (var property in body.EnumerateObject())
        {
            var key = property.Name.Replace("-", "").Replace("_", "").ToLowerInvariant();
            var v = property.Value;
            switch (key)
            {
                case "mode": modeName = v.ValueKind == JsonValueKind.String ? v.GetString() : throw new FormatException("mode must be a string"); break;
                case "value": value = v; break;
                case "topic": topic = v.ValueKind == JsonValueKind.String ? v.GetString() : throw new FormatException("topic must be a string"); break;
                case "partitions":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Array) throw new FormatException("partitions must be an array of integers");
                    partitions = v.EnumerateArray().Select(p => p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out var n) ? n
                        : throw new FormatException("partitions must be an array of integers")).ToList();
                    break;
                case "alltopics": allTopics = Bool(property); break;
                case "execute": execute = Bool(property); break;
                case "dryrun": dryRun = Bool(property); break;
                default:
                    if (ModeKeys.TryGetValue(key, out var mode)) modes.Add((mode, v, property.Name));
                    else throw new FormatException($"unknown field '{property.Name}'");
                    break;
            }
        }
        if (execute is not null && dryRun is not null && execute == dryRun) throw new FormatException("execute and dryRun contradict each other");
        bool run = execute ?? (dryRun is null ? false : !dryRun.Value);

        OffsetResetSpec spec;
        if (modeName is not null)
        {
            if (modes.Count > 0) throw new FormatException($"give the mode once: either \"mode\" or \"{modes[0].Key}\"");
            var mode = OffsetResetSpec.ParseMode(modeName);
            spec = SpecOf(mode, value, "value");
        }
        else
        {
            if (value is not null) throw new FormatException("\"value\" needs \"mode\"");
            if (modes.Count != 1)
                throw new FormatException(modes.Count == 0
                    ? $"say how to reset: \"mode\" ({string.Join(", ", OffsetResetSpec.ModeNames)}) or one of toEarliest, toLatest, toOffset, toDatetime, byDuration, shiftBy, toCurrent, fromFile"
                    : $"give exactly one reset mode, got {string.Join(", ", modes.Select(m => m.Key))}");
            spec = SpecOf(modes[0].Mode, modes[0].Value, modes[0].Key);
        }

        OffsetResetScope? scope;
        if (partitions is not null && topic is null) throw new FormatException("partitions need a topic");
        if (topic is not null && allTopics) throw new FormatException("give either topic or allTopics, not both");
        if (topic is not null) scope = OffsetResetScope.ForTopic(topic, partitions);
        else if (allTopics) scope = OffsetResetScope.All;
        else if (spec.Mode == OffsetResetMode.FromFile) scope = null;
        else throw new FormatException("say which partitions: \"topic\" (with optional \"partitions\") or \"allTopics\": true");
        return new ResetRequest(spec, scope, run);
    }

    private static bool Bool(JsonProperty p) => p.Value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new FormatException($"{p.Name} must be true or false"),
    };

    private static OffsetResetSpec SpecOf(OffsetResetMode mode, JsonElement? value, string field)
    {
        string name = OffsetResetSpec.NameOf(mode);
        switch (mode)
        {
            case OffsetResetMode.ToEarliest or OffsetResetMode.ToLatest or OffsetResetMode.ToCurrent:
                if (value is { ValueKind: not (JsonValueKind.True or JsonValueKind.Null) } && field != "value")
                    throw new FormatException($"{field} takes true");
                if (field == "value" && value is { ValueKind: not JsonValueKind.Null }) throw new FormatException($"{name} takes no value");
                return OffsetResetSpec.Parse(name, null);
            case OffsetResetMode.FromFile when value is { ValueKind: JsonValueKind.Array } rows:
                return OffsetResetSpec.FromFile(rows.EnumerateArray().Select(FileRow).ToList());
            default:
                if (value is null || value.Value.ValueKind == JsonValueKind.Null) throw new FormatException($"{name} needs a value");
                var v = value.Value;
                string text = v.ValueKind switch
                {
                    JsonValueKind.String => v.GetString()!,
                    JsonValueKind.Number when mode is OffsetResetMode.ToOffset or OffsetResetMode.ShiftBy => v.GetRawText(),
                    _ => throw new FormatException($"{field} must be {(mode is OffsetResetMode.ToOffset or OffsetResetMode.ShiftBy ? "an integer" : "a string")}"),
                };
                return OffsetResetSpec.Parse(name, text);
        }
    }

    private static OffsetResetFileRow FileRow(JsonElement row)
    {
        if (row.ValueKind != JsonValueKind.Object
            || !row.TryGetProperty("topic", out var t) || t.ValueKind != JsonValueKind.String
            || !row.TryGetProperty("partition", out var p) || !p.TryGetInt32(out var partition) || partition < 0
            || !row.TryGetProperty("offset", out var o) || !o.TryGetInt64(out var offset))
            throw new FormatException("fromFile rows must be objects {\"topic\": string, \"partition\": int, \"offset\": int}");
        return new OffsetResetFileRow(t.GetString()!, partition, offset);
    }

    public static AdminResult Error(int status, string message) => new(status, new ErrorDto(message));

    private static double Round(double seconds) => Math.Round(seconds, 3);

    // ------------------------------------------------------------------ bodies

    public sealed record ErrorDto(string Error);
    public sealed record HealthDto(string Status, [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] OffsetStoreHealthDto? OffsetStore);
    public sealed record OffsetStoreHealthDto(string Problem, string Message);
    public sealed record BrokerDto(string ClusterId, int NodeId, string Advertised, string Listen, string Version, DateTimeOffset StartedAt,
        int Topics, int Groups, double LagSampleIntervalSeconds);
    public sealed record LagHistoryDto(string GroupId, double IntervalSeconds, double WindowSeconds, IReadOnlyList<LagPointDto> Samples);
    public sealed record LagPointDto(DateTimeOffset Time, long LagRecords, double LagSeconds);
}
