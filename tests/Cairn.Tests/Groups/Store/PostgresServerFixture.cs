using Cairn.Testing;

namespace Cairn.Tests.Groups.Store;

/// <summary>
/// xunit glue around <see cref="PostgresServer"/> (Cairn.Testing): one throw-away PostgreSQL server per fixture. If the server
/// binaries are missing it fails, telling to run test.sh (which installs postgresql); it never skips.
/// <para>
/// Use it as a collection fixture (<c>[Collection(PostgresServerCollection.Name)]</c>: one server shared by every class
/// of that collection, which then run one after another) or as a class fixture (<c>IClassFixture&lt;PostgresServerFixture&gt;</c>:
/// one server per class).
/// </para>
/// </summary>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    /// <summary>The running server (after xunit initialised the fixture).</summary>
    public PostgresServer Server => _server ?? throw new InvalidOperationException("the PostgreSQL test server is not running");

    /// <inheritdoc cref="PostgresServer.CreateDatabaseAsync"/>
    public Task<string> CreateDatabaseAsync(string name) => Server.CreateDatabaseAsync(name);

    public async Task InitializeAsync() => _server = await PostgresServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}

/// <summary>Test classes in this collection share one <see cref="PostgresServerFixture"/> (and run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresServerCollection : ICollectionFixture<PostgresServerFixture>
{
    public const string Name = "PostgreSQL server";
}
