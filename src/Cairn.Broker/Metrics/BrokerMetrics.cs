using System.Diagnostics;
using System.Diagnostics.Metrics;
using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Broker.Metrics;

/// <summary>
/// The broker's instruments on a <see cref="Meter"/> named "Cairn.Broker" (one per broker instance, so several
/// in-process brokers do not mix their numbers). Instrument names are already Prometheus names: the exporter adds
/// only <c>_total</c> to counters and the histogram suffixes.
/// <list type="bullet">
/// <item><c>cairn_requests_total{api}</c>, <c>cairn_request_duration_seconds{api}</c>: per Kafka API, recorded by every connection</item>
/// <item><c>cairn_malformed_requests_total{reason}</c>: requests refused before any handler saw them, closing their connection</item>
/// <item><c>cairn_network_received_bytes_total</c>, <c>cairn_network_sent_bytes_total</c>, <c>cairn_connections_active</c></item>
/// <item><c>cairn_partition_log_start_offset{topic,partition}</c>, <c>cairn_partition_log_end_offset</c>, <c>cairn_partition_size_bytes</c> (online partitions)</item>
/// <item><c>cairn_offline_partitions</c>: partitions whose files could not be trusted at start-up (Kafka's OfflinePartitionsCount)</item>
/// <item><c>cairn_storage_open_files</c>, <c>cairn_storage_file_reopens_total</c>: segment descriptors held open, and reopened after the budget closed them</item>
/// <item><c>cairn_connections_refused_total{reason}</c> (max.connections, max.connections.per.ip), <c>cairn_connections_timed_out_total{reason}</c>
/// (idle, frame_timeout), <c>cairn_request_queued_bytes</c>: bytes of request frames being received or handled (queued.max.request.bytes)</item>
/// <item><c>cairn_group_committed_offset{group,topic,partition}</c>, <c>cairn_group_lag_records</c>, <c>cairn_group_lag_seconds</c>, <c>cairn_group_members{group}</c></item>
/// <item><c>cairn_metrics_series_dropped</c>: the series the gauges above left out</item>
/// <item><c>cairn_offset_store_integrity_problem</c>: 1 when the offset store failed its start-up check and the loss was accepted</item>
/// </list>
/// The per-partition and per-group gauges yield at most <c>maxSeries</c> series each (topics and groups in name order),
/// and no more than <see cref="LifetimeSeriesFactor"/> times that many different label sets over the meter's life (an
/// exporter keeps a slot for every label set it has seen); the rest are counted in <see cref="DroppedSeries"/>.
/// Group numbers come from an <see cref="IGroupMetricsSource"/> so this code does not depend on who computes lag.
/// </summary>
internal sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "Cairn.Broker";

    /// <summary>Request latency buckets, in seconds (long-poll fetches land in the upper ones).</summary>
    public static readonly double[] DurationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    public const string DroppedSeriesName = "cairn_metrics_series_dropped";

    /// <summary>Different label sets a per-partition or per-group gauge may yield over the meter's life, per maxSeries.</summary>
    public const int LifetimeSeriesFactor = 2;

    private static readonly string[] ApiNames = BuildApiNames();

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly Counter<long> _receivedBytes;
    private readonly Counter<long> _sentBytes;
    private readonly Counter<long> _malformedRequests;
    private readonly Counter<long> _refusedConnections;
    private readonly Counter<long> _timedOutConnections;
    private readonly LogManager _logs;
    private readonly IGroupMetricsSource _groups;
    private readonly TimeProvider _time;
    private readonly int _maxSeries;
    private readonly SeriesBudget<(string, int)> _partitionSeries;
    private readonly SeriesBudget<(string, string, int)> _groupPartitionSeries;
    private readonly SeriesBudget<string> _groupSeries;
    private readonly object _snapshotLock = new();
    private GroupSnapshot? _snapshot;

    internal BrokerMetrics(LogManager logs, IGroupMetricsSource groups, Func<int> activeConnections, int maxSeries, TimeProvider? time = null)
    {
        _logs = logs;
        _groups = groups;
        _time = time ?? TimeProvider.System;
        _maxSeries = maxSeries;
        _partitionSeries = new(LifetimeSeriesLimit(maxSeries));
        _groupPartitionSeries = new(LifetimeSeriesLimit(maxSeries));
        _groupSeries = new(LifetimeSeriesLimit(maxSeries));
        Meter = new Meter(new MeterOptions(MeterName) { Version = typeof(BrokerMetrics).Assembly.GetName().Version?.ToString() });

        _requests = Meter.CreateCounter<long>("cairn_requests", "{request}", "Kafka requests handled, per API");
        _requestDuration = Meter.CreateHistogram<double>("cairn_request_duration_seconds", "s",
            "Time from a request's arrival to its response being written, per API", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _receivedBytes = Meter.CreateCounter<long>("cairn_network_received_bytes", "By", "Bytes of Kafka request frames received");
        _sentBytes = Meter.CreateCounter<long>("cairn_network_sent_bytes", "By", "Bytes of Kafka response frames sent");
        _malformedRequests = Meter.CreateCounter<long>("cairn_malformed_requests", "{request}",
            "Kafka requests that could not be understood (bad frame size or header, unknown API or version, undecodable body), per reason");
        Meter.CreateObservableGauge("cairn_connections_active", () => activeConnections(), "{connection}", "Open Kafka client connections");
        _refusedConnections = Meter.CreateCounter<long>("cairn_connections_refused", "{connection}",
            "Kafka connections closed at once after accept because a limit was reached (max.connections, max.connections.per.ip), per reason");
        _timedOutConnections = Meter.CreateCounter<long>("cairn_connections_timed_out", "{connection}",
            "Kafka connections closed for silence (connections.max.idle.ms) or for a frame not completed in time (request.frame.timeout.ms), per reason");
        Meter.CreateObservableGauge("cairn_request_queued_bytes", () => QueuedRequestBytes?.Invoke() ?? 0, "By",
            "Bytes of request frames being received or handled, bounded by queued.max.request.bytes");

        Meter.CreateObservableGauge("cairn_partition_log_start_offset", () => ObservePartitions(static p => p.LogStartOffset), "{offset}",
            "First offset still in the partition's log");
        Meter.CreateObservableGauge("cairn_partition_log_end_offset", () => ObservePartitions(static p => p.HighWatermark), "{offset}",
            "Offset the next record appended to the partition gets (high-water mark)");
        Meter.CreateObservableGauge("cairn_partition_size_bytes", () => ObservePartitions(static p => p.SizeInBytes), "By",
            "Bytes of the partition's log segments");

        Meter.CreateObservableGauge("cairn_offline_partitions", () => _logs.OfflinePartitions.Count, "{partition}",
            "Partitions that are offline because their files could not be trusted at start-up (every file kept; see cairn storage check)");

        Meter.CreateObservableGauge("cairn_storage_open_files", () => _logs.OpenFileCount, "{file}",
            "Segment file descriptors the logs hold open (at most log.max.open.files while none is in use)");
        Meter.CreateObservableCounter("cairn_storage_file_reopens", () => _logs.FileReopenCount, "{file}",
            "Segment files reopened after log.max.open.files closed them; a fast rise means the budget is too small for the working set");

        Meter.CreateObservableGauge("cairn_group_committed_offset", () => ObserveGroupPartitions(static p => p.Lag.CommittedOffset), "{offset}",
            "Offset the group has committed for the partition");
        Meter.CreateObservableGauge("cairn_group_lag_records", () => ObserveGroupPartitions(static p => p.Lag.LagRecords), "{record}",
            "Records between the group's committed offset and the log end offset");
        Meter.CreateObservableGauge("cairn_group_lag_seconds", () => ObserveGroupPartitions(static p => p.Lag.LagSeconds), "s",
            "Age of the first record the group has not consumed yet (0 when caught up)");
        Meter.CreateObservableGauge("cairn_group_members", ObserveGroupMembers, "{member}", "Active members of the group");
        Meter.CreateObservableGauge(DroppedSeriesName, () => DroppedSeries, "{series}",
            "Series left out of this exposition because an instrument reached metrics.max.series");
    }

    /// <summary>
    /// The label sets <paramref name="instrument"/> (one of this meter's) yields at most: an exporter sized to it never
    /// folds series into an overflow series.
    /// </summary>
    internal int SeriesLimit(Instrument instrument) => instrument.Name switch
    {
        "cairn_requests" or "cairn_request_duration_seconds" => ApiNames.Length + 1,
        "cairn_malformed_requests" => MalformedReasonNames.Length,
        "cairn_connections_refused" => RefusedReasonNames.Length,
        "cairn_connections_timed_out" => TimedOutReasonNames.Length,
        "cairn_network_received_bytes" or "cairn_network_sent_bytes" or "cairn_connections_active" or "cairn_request_queued_bytes" or "cairn_offline_partitions" or "cairn_storage_open_files" or "cairn_storage_file_reopens" or DroppedSeriesName => 1,
        _ => LifetimeSeriesLimit(_maxSeries),
    };

    /// <summary>The label sets a per-partition or per-group gauge may yield over the meter's life.</summary>
    public static int LifetimeSeriesLimit(int maxSeries) => (int)Math.Min(int.MaxValue / 2, (long)maxSeries * LifetimeSeriesFactor);

    public Meter Meter { get; }

    /// <summary>
    /// Series the per-partition and per-group gauges leave out (metrics.max.series). Computed afresh rather than kept
    /// from the gauges' last observation, so it is right whichever order an exporter observes the instruments in.
    /// </summary>
    public long DroppedSeries
    {
        get
        {
            ExportedPartitions(out long partitions);
            return partitions + Snapshot().Dropped;
        }
    }

    /// <summary>Records one handled request. <paramref name="startTimestamp"/> is from <see cref="Stopwatch.GetTimestamp"/>.</summary>
    public void RequestCompleted(ApiKey api, long startTimestamp)
    {
        var tag = new KeyValuePair<string, object?>("api", ApiName(api));
        _requests.Add(1, tag);
        if (_requestDuration.Enabled) _requestDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, tag);
    }

    public void BytesReceived(long bytes) => _receivedBytes.Add(bytes);

    public void BytesSent(long bytes) => _sentBytes.Add(bytes);

    private static readonly string[] MalformedReasonNames = ["frame_size", "header", "unknown_api", "unsupported_version", "body", "frame_timeout"];

    /// <summary>Counts one request refused as malformed; the reason label takes one of six values.</summary>
    public void MalformedRequest(Network.MalformedReason reason) =>
        _malformedRequests.Add(1, new KeyValuePair<string, object?>("reason", MalformedReasonNames[(int)reason]));

    private static readonly string[] RefusedReasonNames = ["max_connections", "max_connections_per_ip"];

    /// <summary>Counts one connection closed at once after accept because a connection limit was reached.</summary>
    public void ConnectionRefused(Network.RefusedReason reason) =>
        _refusedConnections.Add(1, new KeyValuePair<string, object?>("reason", RefusedReasonNames[(int)reason]));

    private static readonly string[] TimedOutReasonNames = ["idle", "frame_timeout"];

    /// <summary>Counts one connection closed by a timeout.</summary>
    public void ConnectionTimedOut(Network.TimeoutReason reason) =>
        _timedOutConnections.Add(1, new KeyValuePair<string, object?>("reason", TimedOutReasonNames[(int)reason]));

    /// <summary>Bytes of request frames held right now (set by the server once it runs); the cairn_request_queued_bytes gauge.</summary>
    public Func<long>? QueuedRequestBytes { get; set; }

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

    /// <summary>The partitions whose series are exported (topics in name order), and how many are left out.</summary>
    private List<(string Topic, PartitionLog Log)> ExportedPartitions(out long dropped)
    {
        var kept = new List<(string, PartitionLog)>();
        dropped = 0;
        foreach (var topic in _logs.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            foreach (var p in topic.Partitions)
            {
                if (kept.Count < _maxSeries && _partitionSeries.Admit((topic.Name, p.Partition))) kept.Add((topic.Name, p));
                else dropped++;
            }
        }
        return kept;
    }

    private IEnumerable<Measurement<long>> ObservePartitions(Func<PartitionLog, long> value)
    {
        var partitions = ExportedPartitions(out _);
        var measurements = new List<Measurement<long>>(partitions.Count);
        foreach (var (topic, p) in partitions)
        {
            // An offline partition's offsets and size are unknown, not zero: it has no series until it is back.
            if (p.IsOffline) continue;
            long v;
            try { v = value(p); }
            catch (ObjectDisposedException) { continue; } // the topic is being deleted
            measurements.Add(new Measurement<long>(v,
                new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("partition", p.Partition)));
        }
        return measurements;
    }

    // ------------------------------------------------------------------ groups

    private sealed record GroupPartition(string Group, GroupPartitionMetrics Lag);

    private sealed record GroupSnapshot(long TakenAt, IReadOnlyList<GroupPartition> Partitions, IReadOnlyList<(string Group, int Members)> Groups, long Dropped);

    /// <summary>
    /// One computation of every group's lag serves the per-group gauges of a collection (they are observed one after
    /// the other): the snapshot is reused for a second.
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
            foreach (var g in _groups.GroupIds())
            {
                if (groups.Count < _maxSeries && _groupSeries.Admit(g)) groups.Add((g, _groups.ActiveMembers(g)));
                else dropped++;
                if (partitions.Count >= _maxSeries)
                {
                    dropped += _groups.CommittedPartitions(g);
                    continue;
                }
                IReadOnlyList<GroupPartitionMetrics> lags;
                try { lags = _groups.Lag(g, wallClock); }
                catch (Exception e) when (e is ObjectDisposedException or IOException) { continue; } // a topic deleted meanwhile
                foreach (var lag in lags)
                {
                    if (partitions.Count >= _maxSeries || !_groupPartitionSeries.Admit((g, lag.Topic, lag.Partition))) { dropped++; continue; }
                    partitions.Add(new GroupPartition(g, lag));
                }
            }
            return _snapshot = new GroupSnapshot(now, partitions, groups, dropped);
        }
    }

    private IEnumerable<Measurement<T>> ObserveGroupPartitions<T>(Func<GroupPartition, T> value) where T : struct
    {
        var snapshot = Snapshot();
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

    /// <summary>
    /// Adds <c>cairn_offset_store_integrity_problem</c>: 1 while the broker runs on an offset store that failed its start-up
    /// check (damaged, or missing acknowledged commits) because the operator accepted the loss; 0 otherwise. An alert on
    /// it catches a setting left on after the recovery it was meant for.
    /// </summary>
    internal void ObserveOffsetStoreIntegrity(Func<bool> problem) =>
        Meter.CreateObservableGauge("cairn_offset_store_integrity_problem", () => problem() ? 1 : 0, "{problem}",
            "1 when the offset store failed its start-up integrity check (damaged file or lost commits) and the broker started anyway (offset.store.accept.loss)");

    public void Dispose() => Meter.Dispose();

    /// <summary>
    /// The label sets a gauge has yielded so far, up to a limit: an exporter keeps a slot for each label set it has seen
    /// for as long as it runs (OpenTelemetry's cumulative aggregation never frees one), so past the limit a new label
    /// set would land in the exporter's overflow series under a label of its own. Such a series is left out and counted.
    /// </summary>
    private sealed class SeriesBudget<T>(int limit) where T : notnull
    {
        private readonly HashSet<T> _seen = [];

        public bool Admit(T key)
        {
            lock (_seen) return _seen.Contains(key) || (_seen.Count < limit && _seen.Add(key));
        }
    }
}
