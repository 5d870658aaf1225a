using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cairn.Offsets;

/// <summary>What <see cref="CairnOffsetsServiceCollectionExtensions.AddCairnOffsets"/> registers the store from.</summary>
public sealed class CairnOffsetsOptions
{
    /// <summary>Creates the store (the <see cref="CairnOffsetsBuilder"/> Use* methods set it).</summary>
    public Func<IServiceProvider, IOffsetStore>? StoreFactory { get; set; }

    /// <summary>Whether disposing the container disposes the store <see cref="StoreFactory"/> returns.</summary>
    public bool DisposeStore { get; set; } = true;

    /// <summary>The <c>cairn.offsets.store</c> metrics tag.</summary>
    public string? StoreName { get; set; }
}

/// <summary>Named <see cref="OffsetTracker"/>s over the registered store, each with its own <see cref="OffsetTrackerOptions"/>.</summary>
public interface IOffsetTrackerFactory
{
    /// <summary>The tracker named <paramref name="name"/> (one instance per name, created on first request).</summary>
    OffsetTracker Get(string name);
}

public static class CairnOffsetsServiceCollectionExtensions
{
    /// <summary>
    /// Registers Cairn.Offsets: <see cref="IOffsetStore"/> (the configured store wrapped in an
    /// <see cref="InstrumentedOffsetStore"/> running every registered <see cref="IPostCommitHook"/> and recording metrics),
    /// the default <see cref="OffsetTracker"/> (options: <c>services.Configure&lt;OffsetTrackerOptions&gt;</c> or
    /// <see cref="CairnOffsetsBuilder.ConfigureTracker(Action{OffsetTrackerOptions})"/>) and <see cref="IOffsetTrackerFactory"/>
    /// for named trackers. Disposing the container flushes the trackers, then disposes the store.
    /// </summary>
    public static CairnOffsetsBuilder AddCairnOffsets(this IServiceCollection services, Action<CairnOffsetsBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions();
        services.TryAddSingleton<IOffsetStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<CairnOffsetsOptions>>().Value;
            var factory = options.StoreFactory ?? throw new InvalidOperationException(
                "no offset store is configured: call UseInMemory, UseJsonFile, UseLockFiles, UseSqlite, UsePostgres or UseStore in AddCairnOffsets");
            var store = factory(sp) ?? throw new InvalidOperationException("the offset store factory returned null");
            var loggerFactory = sp.GetService<ILoggerFactory>();
            return new InstrumentedOffsetStore(store, sp.GetServices<IPostCommitHook>(), options.StoreName,
                loggerFactory?.CreateLogger<InstrumentedOffsetStore>(), sp.GetService<TimeProvider>(), leaveOpen: !options.DisposeStore);
        });
        services.TryAddSingleton<IOffsetTrackerFactory, OffsetTrackerFactory>();
        services.TryAddSingleton(sp => sp.GetRequiredService<IOffsetTrackerFactory>().Get(Options.DefaultName));
        var builder = new CairnOffsetsBuilder(services);
        configure?.Invoke(builder);
        return builder;
    }
}

/// <summary>Chooses the store, hooks and tracker options for <see cref="CairnOffsetsServiceCollectionExtensions.AddCairnOffsets"/>.</summary>
public sealed class CairnOffsetsBuilder
{
    internal CairnOffsetsBuilder(IServiceCollection services) => Services = services;

    public IServiceCollection Services { get; }

    public CairnOffsetsBuilder UseInMemory()
    {
        Services.TryAddSingleton<InMemoryOffsetStore>();
        return UseRegistered<InMemoryOffsetStore>("in-memory");
    }

    public CairnOffsetsBuilder UseJsonFile(string path, Action<JsonFileOffsetStoreOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Services.TryAddSingleton(_ => new JsonFileOffsetStore(path, Configure(configure)));
        return UseRegistered<JsonFileOffsetStore>("json-file");
    }

    public CairnOffsetsBuilder UseLockFiles(string rootDirectory, string consumerName, Action<LockFileOffsetStoreOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootDirectory);
        ArgumentException.ThrowIfNullOrEmpty(consumerName);
        Services.TryAddSingleton(_ => new LockFileOffsetStore(rootDirectory, consumerName, Configure(configure)));
        return UseRegistered<LockFileOffsetStore>("lock-files");
    }

    /// <summary>A <see cref="SqliteOffsetStore"/>; it is also registered as itself, for commits inside the application's transactions.</summary>
    public CairnOffsetsBuilder UseSqlite(string connectionString, Action<SqliteOffsetStoreOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        Services.TryAddSingleton(_ => new SqliteOffsetStore(connectionString, Configure(configure)));
        return UseRegistered<SqliteOffsetStore>("sqlite");
    }

    /// <summary>A <see cref="PostgresOffsetStore"/>; it is also registered as itself, for commits inside the application's transactions.</summary>
    public CairnOffsetsBuilder UsePostgres(string connectionString, Action<PostgresOffsetStoreOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        Services.TryAddSingleton(_ => new PostgresOffsetStore(connectionString, Configure(configure)));
        return UseRegistered<PostgresOffsetStore>("postgres");
    }

    /// <summary>
    /// Any store, e.g. Cairn.Client's broker-backed one. <paramref name="disposeStore"/>: whether the container's
    /// disposal disposes it (pass false when the factory returns a service the container already owns).
    /// </summary>
    public CairnOffsetsBuilder UseStore(Func<IServiceProvider, IOffsetStore> factory, string? storeName = null, bool disposeStore = true)
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.Configure<CairnOffsetsOptions>(o =>
        {
            o.StoreFactory = factory;
            o.DisposeStore = disposeStore;
            o.StoreName = storeName;
        });
        return this;
    }

    /// <summary>A store of type <typeparamref name="TStore"/>, registered as a singleton (constructor injection) and owned by the container.</summary>
    public CairnOffsetsBuilder UseStore<TStore>(string? storeName = null) where TStore : class, IOffsetStore
    {
        Services.TryAddSingleton<TStore>();
        return UseRegistered<TStore>(storeName ?? typeof(TStore).Name);
    }

    /// <summary>Options of the default tracker (the <see cref="OffsetTracker"/> service).</summary>
    public CairnOffsetsBuilder ConfigureTracker(Action<OffsetTrackerOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }

    /// <summary>Options of the tracker <see cref="IOffsetTrackerFactory.Get"/> returns for <paramref name="name"/>.</summary>
    public CairnOffsetsBuilder ConfigureTracker(string name, Action<OffsetTrackerOptions> configure)
    {
        Services.Configure(name, configure);
        return this;
    }

    public CairnOffsetsBuilder AddHook<THook>() where THook : class, IPostCommitHook
    {
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostCommitHook, THook>());
        return this;
    }

    public CairnOffsetsBuilder AddHook(IPostCommitHook hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        Services.AddSingleton(hook);
        return this;
    }

    public CairnOffsetsBuilder AddHook(Func<IServiceProvider, IPostCommitHook> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.AddSingleton(factory);
        return this;
    }

    /// <summary>Logs every commit through <see cref="LoggingCommitHook"/> (needs logging registered).</summary>
    public CairnOffsetsBuilder AddLoggingHook(LogLevel level = LogLevel.Debug)
    {
        Services.AddSingleton<IPostCommitHook>(sp => new LoggingCommitHook(sp.GetRequiredService<ILogger<LoggingCommitHook>>(), level));
        return this;
    }

    private CairnOffsetsBuilder UseRegistered<TStore>(string storeName) where TStore : class, IOffsetStore =>
        UseStore(sp => sp.GetRequiredService<TStore>(), storeName, disposeStore: false);

    private static T Configure<T>(Action<T>? configure) where T : new()
    {
        var options = new T();
        configure?.Invoke(options);
        return options;
    }
}

internal sealed class OffsetTrackerFactory(
    IOffsetStore store, IOptionsMonitor<OffsetTrackerOptions> options, IServiceProvider services) : IOffsetTrackerFactory, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<OffsetTracker>> _trackers = new(StringComparer.Ordinal);
    private int _disposed;

    public OffsetTracker Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _trackers.GetOrAdd(name, n => new Lazy<OffsetTracker>(() => Create(n))).Value;
    }

    private OffsetTracker Create(string name)
    {
        var configured = options.Get(name);
        var copy = new OffsetTrackerOptions
        {
            CommitStrategy = configured.CommitStrategy,
            ResetPolicy = configured.ResetPolicy,
            TimeProvider = configured.TimeProvider ?? services.GetService<TimeProvider>(),
        };
        return new OffsetTracker(store, copy, services.GetService<ILogger<OffsetTracker>>());
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        List<Exception>? failures = null;
        foreach (var lazy in _trackers.Values)
        {
            if (!lazy.IsValueCreated) continue;
            try
            {
                await lazy.Value.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                (failures ??= []).Add(ex);
            }
        }
        if (failures is not null) throw new AggregateException("flushing offset trackers failed", failures);
    }
}
