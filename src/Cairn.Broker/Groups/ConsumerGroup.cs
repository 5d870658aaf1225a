using Cairn.Protocol;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;

namespace Cairn.Broker.Groups;

/// <summary>The classic group protocol's states, named as DescribeGroups and ListGroups report them.</summary>
internal enum GroupState { Empty, PreparingRebalance, CompletingRebalance, Stable, Dead }

/// <summary>What JoinGroup answers to one member.</summary>
internal sealed record JoinGroupResult(
    ErrorCode Error,
    int GenerationId = -1,
    string? ProtocolType = null,
    string? ProtocolName = null,
    string LeaderId = "",
    string MemberId = "",
    IReadOnlyList<JoinedMember>? Members = null,
    bool SkipAssignment = false);

/// <summary>A member as the leader sees it in its JoinGroup response: the metadata of the chosen protocol.</summary>
internal sealed record JoinedMember(string MemberId, string? GroupInstanceId, byte[] Metadata);

internal sealed record SyncGroupResult(ErrorCode Error, string? ProtocolType = null, string? ProtocolName = null, byte[]? Assignment = null);

internal sealed record GroupOverview(string GroupId, string ProtocolType, GroupState State);

internal sealed record MemberDescription(string MemberId, string? GroupInstanceId, string ClientId, string ClientHost, byte[] Metadata, byte[] Assignment);

internal sealed record GroupDescription(string GroupId, GroupState State, string ProtocolType, string Protocol, IReadOnlyList<MemberDescription> Members);

/// <summary>A JoinGroup request in the coordinator's terms.</summary>
internal sealed record JoinGroupRequestData(
    string GroupId,
    string MemberId,
    string? GroupInstanceId,
    string ProtocolType,
    IReadOnlyList<MemberProtocol> Protocols,
    int SessionTimeoutMs,
    int RebalanceTimeoutMs,
    string ClientId,
    string ClientHost,
    bool RequireKnownMemberId);

/// <summary>One group member's live state.</summary>
internal sealed class GroupMember(string memberId, string? groupInstanceId)
{
    public string MemberId { get; set; } = memberId;
    public string? GroupInstanceId { get; } = groupInstanceId;
    public string ClientId { get; set; } = "";
    public string ClientHost { get; set; } = "";
    public int SessionTimeoutMs { get; set; }
    public int RebalanceTimeoutMs { get; set; }
    public IReadOnlyList<MemberProtocol> Protocols { get; set; } = [];
    public byte[] Assignment { get; set; } = [];
    /// <summary>Set while the member waits for the join phase to complete.</summary>
    public TaskCompletionSource<JoinGroupResult>? AwaitingJoin { get; set; }
    /// <summary>Set while the member waits for the leader's assignment.</summary>
    public TaskCompletionSource<SyncGroupResult>? AwaitingSync { get; set; }
    /// <summary>Joined during the current rebalance and not yet part of a generation.</summary>
    public bool IsNew { get; set; }
    public ITimer? SessionTimer { get; set; }

    public byte[]? MetadataFor(string protocol)
    {
        foreach (var p in Protocols) if (p.Name == protocol) return p.Metadata;
        return null;
    }

    public bool SameProtocols(IReadOnlyList<MemberProtocol> other)
    {
        if (other.Count != Protocols.Count) return false;
        for (int i = 0; i < other.Count; i++)
            if (other[i].Name != Protocols[i].Name || !other[i].Metadata.AsSpan().SequenceEqual(Protocols[i].Metadata)) return false;
        return true;
    }

    public StoredMember ToStored() =>
        new(MemberId, GroupInstanceId, ClientId, ClientHost, RebalanceTimeoutMs, SessionTimeoutMs, Protocols, Assignment);
}

/// <summary>
/// One consumer group: membership, generation, the chosen protocol and committed offsets. All fields are
/// guarded by locking the group object itself.
/// </summary>
internal sealed class ConsumerGroup(string groupId)
{
    public string GroupId { get; } = groupId;
    public GroupState State { get; set; } = GroupState.Empty;
    public string? ProtocolType { get; set; }
    public string? ProtocolName { get; set; }
    public int Generation { get; set; }
    public string? LeaderId { get; set; }
    public DateTimeOffset? EmptySince { get; set; }
    /// <summary>Members in join order (the first becomes leader when none is left).</summary>
    public Dictionary<string, GroupMember> Members { get; } = new();
    /// <summary>group.instance.id → member id of static members.</summary>
    public Dictionary<string, string> StaticMembers { get; } = new();
    /// <summary>Member ids handed out with MEMBER_ID_REQUIRED, expected to join again.</summary>
    public Dictionary<string, ITimer> PendingMembers { get; } = new();
    public Dictionary<(string Topic, int Partition), CommittedOffset> Offsets { get; } = new();
    /// <summary>Sequence of the commit that wrote each cached offset, so a late durable write never overwrites a newer one.</summary>
    public Dictionary<(string Topic, int Partition), long> OffsetSequence { get; } = new();
    public ITimer? RebalanceTimer { get; set; }
    /// <summary>True during the first rebalance of an empty group, which waits group.initial.rebalance.delay.ms for more members.</summary>
    public bool InitialJoinDelay { get; set; }
    public DateTimeOffset RebalanceStarted { get; set; }
    public SemaphoreSlim PersistGate { get; } = new(1, 1);

    public bool IsEmpty => Members.Count == 0;

    public bool AllMembersJoined
    {
        get
        {
            if (PendingMembers.Count > 0) return false;
            foreach (var m in Members.Values) if (m.AwaitingJoin is null) return false;
            return true;
        }
    }

    public StoredGroup ToStored() =>
        new(GroupId, ProtocolType, ProtocolName, Generation, LeaderId, EmptySince, Members.Values.Select(m => m.ToStored()).ToList());

    public GroupDescription Describe()
    {
        // Member metadata and assignments are shown only once a generation is formed, as Kafka does.
        bool showDetails = State is GroupState.Stable or GroupState.CompletingRebalance;
        return new GroupDescription(GroupId, State, ProtocolType ?? "", showDetails ? ProtocolName ?? "" : "",
            Members.Values.Select(m => new MemberDescription(m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost,
                showDetails ? m.MetadataFor(ProtocolName!) ?? [] : [],
                State == GroupState.Stable ? m.Assignment : [])).ToList());
    }

    /// <summary>Picks the protocol every member supports that most members prefer (ties: the first found).</summary>
    public string? SelectProtocol()
    {
        if (Members.Count == 0) return null;
        var candidates = Members.Values.First().Protocols.Select(p => p.Name)
            .Where(name => Members.Values.All(m => m.Protocols.Any(p => p.Name == name)))
            .ToList();
        if (candidates.Count == 0) return null;
        var votes = new Dictionary<string, int>();
        foreach (var m in Members.Values)
        {
            var vote = m.Protocols.First(p => candidates.Contains(p.Name)).Name;
            votes[vote] = votes.GetValueOrDefault(vote) + 1;
        }
        return candidates.OrderByDescending(c => votes.GetValueOrDefault(c)).First();
    }

    /// <summary>Whether a new member's protocols can live with the current group's.</summary>
    public bool SupportsProtocols(string protocolType, IReadOnlyList<MemberProtocol> protocols)
    {
        if (protocols.Count == 0 || string.IsNullOrEmpty(protocolType)) return false;
        if (Members.Count == 0) return true;
        if (ProtocolType != protocolType) return false;
        return protocols.Any(p => Members.Values.All(m => m.Protocols.Any(mp => mp.Name == p.Name)));
    }

    /// <summary>The topics the members subscribe to (with the chosen protocol, or their first before one is chosen).</summary>
    public HashSet<string> SubscribedTopics()
    {
        var topics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in Members.Values)
        {
            var metadata = ProtocolName is null ? m.Protocols.FirstOrDefault()?.Metadata : m.MetadataFor(ProtocolName);
            if (metadata is null || metadata.Length == 0) continue;
            try
            {
                topics.UnionWith(ConsumerProtocol.ReadSubscription(metadata).Topics);
            }
            catch (MalformedMessageException)
            {
                // Unreadable subscription: be safe and treat every assigned topic as subscribed.
                try { topics.UnionWith(ConsumerProtocol.ReadAssignment(m.Assignment).AssignedPartitions.Select(t => t.Topic)); }
                catch (MalformedMessageException) { } // neither decodes: no topic is known to be in use, so none is protected
            }
        }
        return topics;
    }
}
