// Over 400 lines because start-up, the admin operations and shutdown share the topic tables and the admin lock;
// the directory checks at start-up live in DataDirectoryScan and PartitionIdentity.
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Cairn.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Storage;

/// <summary>
/// Owns the data directory: topics (persistent id, partition count, config overrides in
/// <c>.topics/&lt;name&gt;.json</c>), their partition logs in <c>&lt;topic&gt;-&lt;partition&gt;</c> directories, the
/// background retention / interval-flush loop and clean shutdown. Lookups are lock-free; admin
/// operations are serialized.
/// </summary>
public sealed class LogManager : IAsyncDisposable, IDisposable
{
    public const int MaxTopicNameLength = 249;
    internal const string TopicsDirectory = ".topics";
    internal const string LockFileName = ".lock";
    private const int MaxShutdownThreads = 16;

    private readonly StorageOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly ILogger _partitionLogger;
    private readonly TimeProvider _time;
    private readonly DeferredCloser _closer;
    private readonly FileHandleBudget _files;
    private readonly LogMaintenance _maintenance;
    private readonly ConcurrentDictionary<string, TopicLog> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Guid, TopicLog> _topicsById = new();
    private readonly Lock _adminLock = new();
    private readonly CancellationTokenSource _stop = new();
    private FileStream? _lockFile;
    private Task? _background;
    private int _disposed;

    private LogManager(StorageOptions options, ILoggerFactory? loggerFactory, TimeProvider? time)
    {
        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<LogManager>();
        _partitionLogger = _loggerFactory.CreateLogger<PartitionLog>();
        _time = time ?? TimeProvider.System;
        _closer = new DeferredCloser(_time);
        _files = new FileHandleBudget(options.MaxOpenFiles);
        _maintenance = new LogMaintenance(() => _topics.Values, _options, _time, _logger);
    }

    public StorageOptions Options => _options;

    /// <summary>Segment file descriptors storage holds open now (bounded by <see cref="StorageOptions.MaxOpenFiles"/>, see there).</summary>
    public int OpenFileCount => _files.OpenCount;

    /// <summary>Segment files reopened so far after having been closed to stay within <see cref="StorageOptions.MaxOpenFiles"/>.</summary>
    public long FileReopenCount => _files.Reopens;
    public string DataDirectory => _options.DataDirectory;
    private string TopicsPath => Path.Combine(_options.DataDirectory, TopicsDirectory);

    /// <summary>
    /// Opens the data directory: loads every topic and recovers its partitions (in parallel, up to
    /// <see cref="StorageOptions.RecoveryThreads"/>), then starts the background loop.
    /// </summary>
    public static async Task<LogManager> OpenAsync(StorageOptions options, ILoggerFactory? loggerFactory = null,
        TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        var manager = new LogManager(options, loggerFactory, time);
        try
        {
            await manager.LoadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await manager.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        if (options.RunBackgroundTasks)
            manager._background = Task.Run(() => manager._maintenance.RunAsync(manager._stop.Token));
        return manager;
    }

    public static Task<LogManager> OpenAsync(StorageOptions options, ILoggerFactory? loggerFactory, CancellationToken cancellationToken) =>
        OpenAsync(options, loggerFactory, null, cancellationToken);

    public static LogManager Open(StorageOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? time = null) =>
        OpenAsync(options, loggerFactory, time).GetAwaiter().GetResult();

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var dataDir = _options.DataDirectory;
        Directory.CreateDirectory(dataDir);
        Directory.CreateDirectory(TopicsPath);
        try
        {
            _lockFile = new FileStream(Path.Combine(dataDir, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"data directory {dataDir} is in use by another broker", e);
        }

        var metas = new List<TopicMetadata>();
        foreach (var path in Directory.EnumerateFiles(TopicsPath))
        {
            if (path.EndsWith(".tmp", StringComparison.Ordinal)) { FileIO.TryDelete(path); continue; }
            if (!path.EndsWith(".json", StringComparison.Ordinal)) continue;
            var meta = StorageCheck.ReadTopicFile(path);
            if (meta is null)
            {
                // Kept (renamed) for the operator: the topic is rebuilt from its partition directories below.
                var aside = path + ".damaged-" + _time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
                _logger.LogError("Unreadable topic metadata file {File}; moved to {Aside}", path, aside);
                try { File.Move(path, aside); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _logger.LogError(e, "Could not move {File} aside", path);
                }
                continue;
            }
            metas.Add(meta);
        }
        metas.AddRange(DataDirectoryScan.Run(dataDir, metas.ToDictionary(m => m.Name, StringComparer.Ordinal), MetadataPath, _logger));

        // Recover all partitions in parallel.
        var work = new List<(TopicMetadata Meta, LogConfig Config, int Partition)>();
        var configs = new Dictionary<string, (LogConfig Config, ImmutableSortedDictionary<string, string> Overrides)>();
        foreach (var meta in metas)
        {
            var code = LogConfig.TryApply(_options.DefaultConfig, meta.Configs.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)),
                out var config, out var overrides, out var error);
            if (code != ErrorCode.None)
            {
                _logger.LogError("Topic {Topic}: stored config is invalid ({Error}); using broker defaults", meta.Name, error);
                config = _options.DefaultConfig;
                overrides = ImmutableSortedDictionary<string, string>.Empty;
            }
            configs[meta.Name] = (config, overrides);
            for (int p = 0; p < meta.Partitions; p++) work.Add((meta, config, p));
        }
        var opened = new ConcurrentDictionary<(string, int), PartitionLog>();
        try
        {
            await Parallel.ForEachAsync(work,
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.RecoveryThreads), CancellationToken = cancellationToken },
                (item, _) =>
                {
                    var dir = PartitionDirectory(item.Meta.Name, item.Partition);
                    opened[(item.Meta.Name, item.Partition)] = PartitionLog.Open(dir, item.Meta.Name, item.Partition, item.Config,
                        _options, _partitionLogger, _time, _closer, _files, ownsCloser: false);
                    return ValueTask.CompletedTask;
                }).ConfigureAwait(false);
        }
        catch
        {
            foreach (var p in opened.Values) p.Close();
            throw;
        }

        foreach (var meta in metas)
        {
            var parts = new PartitionLog[meta.Partitions];
            for (int p = 0; p < parts.Length; p++) parts[p] = opened[(meta.Name, p)];
            var (config, overrides) = configs[meta.Name];
            var topic = new TopicLog(meta.Name, meta.TopicId, config, overrides, parts);
            _topics[meta.Name] = topic;
            _topicsById[meta.TopicId] = topic;
        }

        foreach (var topic in _topics.Values)
            foreach (var p in topic.Partitions)
            {
                // Directories from before partition.metadata existed get theirs now.
                if (PartitionIdentity.TryRead(p.Directory) is not null) continue;
                try { new PartitionIdentity(topic.Name, topic.TopicId, p.Partition).Write(p.Directory); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning(e, "{Partition}: could not write {File}", p, PartitionIdentity.FileName);
                }
            }
        _logger.LogInformation("Loaded {Topics} topic(s), {Partitions} partition(s) from {DataDirectory}", _topics.Count, work.Count, dataDir);
        if (OfflinePartitions.Count is > 0 and var offline)
            _logger.LogError("{Offline} partition(s) are offline because their files are inconsistent (see above); their files are untouched: {List}",
                offline, string.Join(", ", OfflinePartitions));
    }

    private string PartitionDirectory(string topic, int partition) =>
        Path.Combine(_options.DataDirectory, topic + "-" + partition.ToString(CultureInfo.InvariantCulture));

    private string MetadataPath(string topic) => Path.Combine(TopicsPath, topic + ".json");

    // =============================================================================================
    // Lookups

    public IReadOnlyCollection<TopicLog> Topics => _topics.Values.ToArray();

    public bool TryGetTopic(string name, [NotNullWhen(true)] out TopicLog? topic) => _topics.TryGetValue(name, out topic);

    /// <summary>Partitions that recovery left offline (answering KAFKA_STORAGE_ERROR), for health checks and metrics.</summary>
    public IReadOnlyList<PartitionLog> OfflinePartitions =>
        _topics.Values.SelectMany(t => t.Partitions).Where(p => p.IsOffline).ToArray();

    public bool TryGetTopic(Guid topicId, [NotNullWhen(true)] out TopicLog? topic) => _topicsById.TryGetValue(topicId, out topic);

    public PartitionLog? GetPartition(string topic, int partition) =>
        _topics.TryGetValue(topic, out var t) ? t.GetPartition(partition) : null;

    public PartitionLog? GetPartition(Guid topicId, int partition) =>
        _topicsById.TryGetValue(topicId, out var t) ? t.GetPartition(partition) : null;

    /// <summary>Kafka's topic name rules: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".</summary>
    public static ErrorCode ValidateTopicName(string? name, out string? error)
    {
        error = TopicNames.Explain(name);
        return error is null ? ErrorCode.None : ErrorCode.InvalidTopic;
    }

    // =============================================================================================
    // Admin

    /// <summary>
    /// Creates a topic with a new random id. Errors: INVALID_TOPIC_EXCEPTION (bad name, or a name that collides
    /// with an existing one when '.' and '_' are treated alike), INVALID_PARTITIONS (&lt; 1), TOPIC_ALREADY_EXISTS,
    /// INVALID_CONFIG, POLICY_VIOLATION (the broker would pass <see cref="StorageOptions.MaxPartitions"/>). With <paramref name="validateOnly"/> nothing is created and Topic is null.
    /// </summary>
    public TopicOperationResult CreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs = null, bool validateOnly = false)
    {
        if (ValidateTopicName(name, out var nameError) != ErrorCode.None) return TopicOperationResult.Fail(ErrorCode.InvalidTopic, nameError);
        if (partitions < 1) return TopicOperationResult.Fail(ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0");
        var code = LogConfig.TryApply(_options.DefaultConfig, configs, out var config, out var overrides, out var configError);
        if (code != ErrorCode.None) return TopicOperationResult.Fail(code, configError);
        lock (_adminLock)
        {
            ThrowIfDisposed();
            if (_topics.ContainsKey(name)) return TopicOperationResult.Fail(ErrorCode.TopicAlreadyExists, $"Topic '{name}' already exists.");
            var normalized = name.Replace('.', '_');
            foreach (var existing in _topics.Keys)
                if (existing.Replace('.', '_') == normalized)
                    return TopicOperationResult.Fail(ErrorCode.InvalidTopic, $"Topic '{name}' collides with existing topic: {existing}");
            if (CheckPartitionLimitLocked(partitions) is { } refused) return refused;
            if (validateOnly) return new TopicOperationResult(ErrorCode.None, null, null);

            var parts = new PartitionLog[partitions];
            try
            {
                var topicId = Guid.NewGuid();
                for (int p = 0; p < partitions; p++) parts[p] = OpenNewPartition(name, topicId, p, config);
                FileIO.FlushDirectory(_options.DataDirectory);
                var topic = new TopicLog(name, topicId, config, overrides, parts);
                FileIO.WriteAtomic(MetadataPath(name), topic.ToMetadata().Serialize());
                _topics[name] = topic;
                _topicsById[topic.TopicId] = topic;
                _logger.LogInformation("Created topic {Topic} ({TopicId}) with {Partitions} partition(s)", name, topic.TopicId, partitions);
                return new TopicOperationResult(ErrorCode.None, null, topic);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                foreach (var p in parts) p?.CloseAndDelete();
                _logger.LogError(e, "Creating topic {Topic} failed", name);
                return TopicOperationResult.Fail(ErrorCode.KafkaStorageError, e.Message);
            }
        }
    }

    /// <summary>Partitions of every topic on this broker.</summary>
    public int PartitionCount => _topics.Values.Sum(t => t.PartitionCount);

    /// <summary>POLICY_VIOLATION when adding <paramref name="adding"/> partitions would pass max.partitions; null when it fits.</summary>
    private TopicOperationResult? CheckPartitionLimitLocked(int adding)
    {
        long total = PartitionCount;
        int max = _options.MaxPartitions;
        if (total + adding <= max) return null;
        return TopicOperationResult.Fail(ErrorCode.PolicyViolation, string.Create(CultureInfo.InvariantCulture,
            $"Adding {adding} partition(s) would bring this broker to {total + adding} partitions, more than max.partitions={max} (it has {total})."));
    }

    /// <summary>CreateTopics with validate_only: every check of <see cref="CreateTopic"/>, nothing created (Topic is null).</summary>
    public TopicOperationResult ValidateCreateTopic(string name, int partitions, IEnumerable<KeyValuePair<string, string?>>? configs = null) =>
        CreateTopic(name, partitions, configs, validateOnly: true);

    private PartitionLog OpenNewPartition(string topic, Guid topicId, int partition, LogConfig config)
    {
        var dir = PartitionDirectory(topic, partition);
        // A directory of this very partition left by a creation that crashed before the metadata write is reused as is.
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any()
            && PartitionIdentity.TryRead(dir) != new PartitionIdentity(topic, topicId, partition))
        {
            // Only what Cairn itself marked deleted goes; anything else may be someone's data.
            if (!PartitionIdentity.IsMarkedDeleted(dir))
                throw new IOException($"directory {dir} already exists and holds files Cairn cannot account for; move it away first");
            _logger.LogWarning("Removing the rest of deleted partition directory {Directory} before creating the partition", dir);
            Directory.Delete(dir, recursive: true);
        }
        var log = PartitionLog.Open(dir, topic, partition, config, _options, _partitionLogger, _time, _closer, _files, ownsCloser: false);
        try
        {
            new PartitionIdentity(topic, topicId, partition).Write(dir);
        }
        catch
        {
            log.CloseAndDelete();
            throw;
        }
        return log;
    }

    /// <summary>
    /// Deletes a topic: its metadata file first, then its partition directories. Reads in flight on its
    /// partitions keep working (file handles stay open for file.delete.delay.ms); new reads and appends get
    /// UNKNOWN_TOPIC_OR_PARTITION. Returns UNKNOWN_TOPIC_OR_PARTITION when there is no such topic.
    /// </summary>
    public TopicOperationResult DeleteTopic(string name)
    {
        TopicLog? topic;
        lock (_adminLock)
        {
            ThrowIfDisposed();
            if (!_topics.TryRemove(name, out topic))
                return TopicOperationResult.Fail(ErrorCode.UnknownTopicOrPartition, "This server does not host this topic-partition.");
            _topicsById.TryRemove(topic.TopicId, out _);
            topic.IsDeleted = true;
            foreach (var p in topic.Partitions)
            {
                try { PartitionIdentity.MarkDeleted(p.Directory); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning(e, "{Partition}: could not mark the directory deleted", p);
                }
            }
            FileIO.TryDelete(MetadataPath(name));
            foreach (var p in topic.Partitions) p.CloseAndDelete();
        }
        _logger.LogInformation("Deleted topic {Topic} ({TopicId})", name, topic.TopicId);
        return new TopicOperationResult(ErrorCode.None, null, topic);
    }

    public TopicOperationResult DeleteTopic(Guid topicId) =>
        _topicsById.TryGetValue(topicId, out var t) ? DeleteTopic(t.Name)
            : TopicOperationResult.Fail(ErrorCode.UnknownTopicId, "This server does not host this topic ID.");

    /// <summary>
    /// CreatePartitions: grows the topic to <paramref name="newTotal"/> partitions. INVALID_PARTITIONS when
    /// newTotal is not larger than the current count; UNKNOWN_TOPIC_OR_PARTITION for an unknown topic; POLICY_VIOLATION
    /// when the broker would pass <see cref="StorageOptions.MaxPartitions"/>.
    /// </summary>
    public TopicOperationResult AddPartitions(string name, int newTotal, bool validateOnly = false)
    {
        lock (_adminLock)
        {
            ThrowIfDisposed();
            if (!_topics.TryGetValue(name, out var topic))
                return TopicOperationResult.Fail(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist");
            int current = topic.PartitionCount;
            if (newTotal <= current)
                return TopicOperationResult.Fail(ErrorCode.InvalidPartitions,
                    newTotal == current ? $"Topic already has {current} partitions." : $"Topic currently has {current} partitions, {newTotal} is not larger.");
            if (CheckPartitionLimitLocked(newTotal - current) is { } refused) return refused;
            if (validateOnly) return new TopicOperationResult(ErrorCode.None, null, topic);
            var parts = new PartitionLog[newTotal];
            for (int p = 0; p < current; p++) parts[p] = topic.Partitions[p];
            try
            {
                for (int p = current; p < newTotal; p++) parts[p] = OpenNewPartition(name, topic.TopicId, p, topic.Config);
                FileIO.FlushDirectory(_options.DataDirectory);
                var meta = topic.ToMetadata();
                meta.Partitions = newTotal;
                FileIO.WriteAtomic(MetadataPath(name), meta.Serialize());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                for (int p = current; p < newTotal; p++) parts[p]?.CloseAndDelete();
                _logger.LogError(e, "Adding partitions to {Topic} failed", name);
                return TopicOperationResult.Fail(ErrorCode.KafkaStorageError, e.Message);
            }
            topic.SetPartitions(parts);
            _logger.LogInformation("Topic {Topic}: partitions {Old} -> {New}", name, current, newTotal);
            return new TopicOperationResult(ErrorCode.None, null, topic);
        }
    }

    /// <summary>
    /// AlterConfigs (legacy, non-incremental): replaces all of the topic's overrides with <paramref name="overrides"/>.
    /// INVALID_CONFIG for unknown names or bad values; UNKNOWN_TOPIC_OR_PARTITION for an unknown topic.
    /// </summary>
    public TopicOperationResult SetTopicConfig(string name, IEnumerable<KeyValuePair<string, string?>> overrides, bool validateOnly = false)
    {
        lock (_adminLock)
        {
            ThrowIfDisposed();
            if (!_topics.TryGetValue(name, out var topic))
                return TopicOperationResult.Fail(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist");
            var code = LogConfig.TryApply(_options.DefaultConfig, overrides, out var config, out var normalized, out var error);
            if (code != ErrorCode.None) return TopicOperationResult.Fail(code, error);
            if (validateOnly) return new TopicOperationResult(ErrorCode.None, null, topic);
            var meta = topic.ToMetadata();
            meta.Configs = new SortedDictionary<string, string>(normalized, StringComparer.Ordinal);
            try { FileIO.WriteAtomic(MetadataPath(name), meta.Serialize()); }
            catch (IOException e) { return TopicOperationResult.Fail(ErrorCode.KafkaStorageError, e.Message); }
            topic.SetConfig(config, normalized);
            _logger.LogInformation("Topic {Topic}: config overrides now {Overrides}", name,
                string.Join(", ", normalized.Select(kv => kv.Key + "=" + kv.Value)));
            return new TopicOperationResult(ErrorCode.None, null, topic);
        }
    }

    /// <summary>Same as <see cref="SetTopicConfig"/>.</summary>
    public TopicOperationResult UpdateTopicConfig(string name, IEnumerable<KeyValuePair<string, string?>> overrides, bool validateOnly = false) =>
        SetTopicConfig(name, overrides, validateOnly);

    /// <summary>IncrementalAlterConfigs: applies set/delete/append/subtract operations to the topic's overrides.</summary>
    public TopicOperationResult AlterTopicConfig(string name, IEnumerable<ConfigAlteration> operations, bool validateOnly = false)
    {
        lock (_adminLock)
        {
            if (!_topics.TryGetValue(name, out var topic))
                return TopicOperationResult.Fail(ErrorCode.UnknownTopicOrPartition, $"Topic '{name}' does not exist");
            var code = LogConfig.TryAlter(topic.ConfigOverrides, topic.Config, operations, out var next, out var error);
            if (code != ErrorCode.None) return TopicOperationResult.Fail(code, error);
            return SetTopicConfig(name, next, validateOnly);
        }
    }

    // =============================================================================================
    // Background work

    /// <summary>Applies retention to every partition; returns what was deleted (partitions with deletions only).</summary>
    public IReadOnlyList<(string Topic, int Partition, RetentionResult Result)> ApplyRetention(DateTimeOffset now) =>
        _maintenance.ApplyRetention(now);

    /// <summary>fsyncs every partition.</summary>
    public async Task FlushAllAsync(CancellationToken cancellationToken = default)
    {
        var tasks = new List<Task>();
        foreach (var topic in _topics.Values)
            foreach (var p in topic.Partitions)
                tasks.Add(p.FlushAsync(long.MaxValue, cancellationToken).AsTask());
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    // =============================================================================================
    // Shutdown

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>Clean shutdown: stops the background loop, flushes and closes every partition (writing clean-shutdown markers).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        if (_background is not null)
        {
            try { await _background.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        var partitions = new List<PartitionLog>();
        lock (_adminLock)
        {
            foreach (var topic in _topics.Values) partitions.AddRange(topic.Partitions);
        }
        // Closing is fsync-bound, not CPU-bound (markers and snapshots are written durably): more threads than CPUs let the
        // file system batch their journal commits. One clean shutdown of 10,000 partitions took 80 s on 2 threads.
        int threads = Math.Clamp(partitions.Count / 64, Math.Max(1, _options.RecoveryThreads), Math.Max(MaxShutdownThreads, _options.RecoveryThreads));
        var queue = new ConcurrentQueue<PartitionLog>(partitions);
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            while (queue.TryDequeue(out var p))
            {
                try { p.Close(); }
                catch (Exception e) { _logger.LogError(e, "Closing {Partition} failed", p); }
            }
        }) { IsBackground = true, Name = "cairn-log-close" }).ToList();
        foreach (var w in workers) w.Start();
        await Task.Run(() => { foreach (var w in workers) w.Join(); }).ConfigureAwait(false);
        _closer.Dispose();
        _lockFile?.Dispose();
        _stop.Dispose();
        _logger.LogInformation("Log manager shut down cleanly ({Partitions} partitions)", partitions.Count);
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
