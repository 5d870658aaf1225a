using System.Diagnostics;
using System.Diagnostics.Metrics;
using Cairn.Broker.Admin;
using Cairn.Broker.Groups;
using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Broker.Metrics;

/// <summary>
/// The broker's instruments on a <see cref="Meter"/> named "Cairn.Broker" (one per broker instance, so several
/// in-process brokers do not mix their numbers). Instrument names are already Prometheus names: the exporter adds
/// only <c>_total</c> to counters and the histogram suffixes.
/// <list type="bullet">
/// <item><c>cairn_requests_total{api}</c>, <c>cairn_request_duration_seconds{api}</c>: per Kafka API, recorded by every connection</item>
/// <item><c>cairn_network_received_bytes_total</c>, <c>cairn_network_sent_bytes_total</c>, <c>cairn_connections_active</c></item>
/// <item><c>cairn_partition_log_start_offset{topic,partition}</c>, <c>cairn_partition_log_end_offset</c>, <c>cairn_partition_size_bytes</c></item>
/// <item><c>cairn_group_committed_offset{group,topic,partition}</c>, <c>cairn_group_lag_records</c>, <c>cairn_group_lag_seconds</c>, <c>cairn_group_members{group}</c></item>
/// </list>
/// The per-partition and per-group gauges yield at most <c>maxSeries</c> series each (topics and groups in name order);
/// the rest are counted in <see cref="DroppedSeries"/>.
/// </summary>
internal sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "Cairn.Broker";

    /// <summary>Request latency buckets, in seconds (long-poll fetches land in the upper ones).</summary>
    public static readonly double[] DurationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private static readonly string[] ApiNames = BuildApiNames();

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly Counter<long> _receivedBytes;
    private readonly Counter<long> _sentBytes;
    private readonly LogManager _logs;
    private readonly GroupCoordinator _groups;
    private readonly TimeProvider _time;
    private readonly int _maxSeries;
    private readonly object _snapshotLock = new();
    private GroupSnapshot? _snapshot;
    private long _droppedPartitionSeries;
    private long _droppedGroupSeries;

    public BrokerMetrics(LogManager logs, GroupCoordinator groups, Func<int> activeConnections, int maxSeries, TimeProvider? time = null)
    {
        _logs = logs;
        _groups = groups;
        _time = time ?? TimeProvider.System;
        _maxSeries = maxSeries;
        Meter = new Meter(new MeterOptions(MeterName) { Version = typeof(BrokerMetrics).Assembly.GetName().Version?.ToString() });

        _requests = Meter.CreateCounter<long>("cairn_requests", "{request}", "Kafka requests handled, per API");
        _requestDuration = Meter.CreateHistogram<double>("cairn_request_duration_seconds", "s",
            "Time from a request's arrival to its response being written, per API", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _receivedBytes = Meter.CreateCounter<long>("cairn_network_received_bytes", "By", "Bytes of Kafka request frames received");
        _sentBytes = Meter.CreateCounter<long>("cairn_network_sent_bytes", "By", "Bytes of Kafka response frames sent");
        Meter.CreateObservableGauge("cairn_connections_active", () => activeConnections(), "{connection}", "Open Kafka client connections");

        Meter.CreateObservableGauge("cairn_partition_log_start_offset", () => ObservePartitions(static p => p.LogStartOffset), "{offset}",
            "First offset still in the partition's log");
        Meter.CreateObservableGauge("cairn_partition_log_end_offset", () => ObservePartitions(static p => p.HighWatermark), "{offset}",
            "Offset the next record appended to the partition gets (high-water mark)");
        Meter.CreateObservableGauge("cairn_partition_size_bytes", () => ObservePartitions(static p => p.SizeInBytes), "By",
            "Bytes of the partition's log segments");

        Meter.CreateObservableGauge("cairn_group_committed_offset", () => ObserveGroupPartitions(static p => p.Lag.CommittedOffset), "{offset}",
            "Offset the group has committed for the partition");
        Meter.CreateObservableGauge("cairn_group_lag_records", () => ObserveGroupPartitions(static p => p.Lag.Lag), "{record}",
            "Records between the group's committed offset and the log end offset");
        Meter.CreateObservableGauge("cairn_group_lag_seconds", () => ObserveGroupPartitions(static p => p.LagSeconds), "s",
            "Age of the first record the group has not consumed yet (0 when caught up)");
        Meter.CreateObservableGauge("cairn_group_members", ObserveGroupMembers, "{member}", "Active members of the group");
    }

    public Meter Meter { get; }

    /// <summary>Series the per-partition and per-group gauges left out in their last observation (metrics.max.series).</summary>
    public long DroppedSeries => Interlocked.Read(ref _droppedPartitionSeries) + Interlocked.Read(ref _droppedGroupSeries);

    /// <summary>Records one handled request. <paramref name="startTimestamp"/> is from <see cref="Stopwatch.GetTimestamp"/>.</summary>
    public void RequestCompleted(ApiKey api, long startTimestamp)
    {
        var tag = new KeyValuePair<string, object?>("api", ApiName(api));
        _requests.Add(1, tag);
        if (_requestDuration.Enabled) _requestDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, tag);
    }

    public void BytesReceived(long bytes) => _receivedBytes.Add(bytes);

    public void BytesSent(long bytes) => _sentBytes.Add(bytes);

    public static string ApiName(ApiKey api)
    {
        int i = (ushort)api;
        return i < ApiNames.Length ? ApiNames[i] : "Unknown";
    }

    private static string[] BuildApiNames()
    {
        var values = Enum.GetValues<ApiKey>();
        var names = new string[values.Where(v => (short)v >= 0).Max(v => (short)v) + 1];
        Array.Fill(names, "Unknown");
        foreach (var v in values) if ((short)v >= 0) names[(short)v] = v.ToString();
        return names;
    }

    // ------------------------------------------------------------------ partitions

    private IEnumerable<Measurement<long>> ObservePartitions(Func<PartitionLog, long> value)
    {
        var measurements = new List<Measurement<long>>();
        long dropped = 0;
        foreach (var topic in _logs.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            foreach (var p in topic.Partitions)
            {
                if (measurements.Count >= _maxSeries) { dropped++; continue; }
                long v;
                try { v = value(p); }
                catch (ObjectDisposedException) { continue; } // the topic is being deleted
                measurements.Add(new Measurement<long>(v,
                    new KeyValuePair<string, object?>("topic", topic.Name), new KeyValuePair<string, object?>("partition", p.Partition)));
            }
        }
        Interlocked.Exchange(ref _droppedPartitionSeries, dropped);
        return measurements;
    }

    // ------------------------------------------------------------------ groups

    private sealed record GroupPartition(string Group, PartitionLag Lag, double LagSeconds);

    private sealed record GroupSnapshot(long TakenAt, IReadOnlyList<GroupPartition> Partitions, IReadOnlyList<(string Group, int Members)> Groups, long Dropped);

    /// <summary>
    /// One computation of every group's lag serves the three per-group gauges of a collection (they are observed
    /// one after the other): the snapshot is reused for a second.
    /// </summary>
    private GroupSnapshot Snapshot()
    {
        lock (_snapshotLock)
        {
            long now = _time.GetTimestamp();
            if (_snapshot is not null && _time.GetElapsedTime(_snapshot.TakenAt, now) < TimeSpan.FromSeconds(1)) return _snapshot;
            var wallClock = _time.GetUtcNow();
            var partitions = new List<GroupPartition>();
            var groups = new List<(string, int)>();
            long dropped = 0;
            foreach (var g in _groups.ListGroups())
            {
                if (groups.Count < _maxSeries) groups.Add((g.GroupId, _groups.DescribeGroup(g.GroupId).Members.Count));
                else dropped++;
                if (partitions.Count >= _maxSeries)
                {
                    dropped += _groups.FetchOffsets(g.GroupId, null).Count;
                    continue;
                }
                IReadOnlyList<PartitionLag> lags;
                try { lags = _groups.GetLag(g.GroupId); }
                catch (Exception e) when (e is ObjectDisposedException or IOException) { continue; } // a topic deleted meanwhile
                foreach (var lag in lags)
                {
                    if (partitions.Count >= _maxSeries) { dropped++; continue; }
                    partitions.Add(new GroupPartition(g.GroupId, lag, GroupLag.LagSeconds(lag, wallClock)));
                }
            }
            return _snapshot = new GroupSnapshot(now, partitions, groups, dropped);
        }
    }

    private IEnumerable<Measurement<T>> ObserveGroupPartitions<T>(Func<GroupPartition, T> value) where T : struct
    {
        var snapshot = Snapshot();
        Interlocked.Exchange(ref _droppedGroupSeries, snapshot.Dropped);
        var measurements = new Measurement<T>[snapshot.Partitions.Count];
        for (int i = 0; i < measurements.Length; i++)
        {
            var p = snapshot.Partitions[i];
            measurements[i] = new Measurement<T>(value(p),
                new KeyValuePair<string, object?>("group", p.Group),
                new KeyValuePair<string, object?>("topic", p.Lag.Topic),
                new KeyValuePair<string, object?>("partition", p.Lag.Partition));
        }
        return measurements;
    }

    private IEnumerable<Measurement<int>> ObserveGroupMembers() =>
        Snapshot().Groups.Select(g => new Measurement<int>(g.Members, new KeyValuePair<string, object?>("group", g.Group))).ToArray();

    public void Dispose() => Meter.Dispose();
}
