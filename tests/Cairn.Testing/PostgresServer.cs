using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Cairn.Testing;

/// <summary>
/// A throw-away PostgreSQL server for tests and the bench: initdb into a temp directory, start it on a free loopback port with
/// trust authentication and its unix socket inside that directory, hand out fresh databases, and stop it
/// (<c>pg_ctl stop -m fast</c>) and delete the directory on dispose (or at process exit if never disposed). Uses the server
/// binaries of Debian's <c>postgresql</c> package (<c>/usr/lib/postgresql/&lt;version&gt;/bin</c>, or <c>CAIRN_PG_BIN</c>, or PATH);
/// when the process runs as root the server runs as the <c>postgres</c> OS user (PostgreSQL refuses to run as root).
/// The server keeps PostgreSQL's durable defaults (fsync=on, synchronous_commit=on); <see cref="Settings"/> reports them.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string Host = "127.0.0.1";
    public const string SuperUser = "postgres";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(120);
    private readonly SemaphoreSlim _ddlLock = new(1, 1);
    private string? _root;
    private bool _asRoot;
    private string? _runuser;
    private bool _running;
    private int _disposed;
    private Action<string>? _log;

    private PostgresServer()
    {
    }

    /// <summary>Directory holding initdb, pg_ctl and postgres.</summary>
    public string BinDirectory { get; private set; } = "";

    /// <summary>The server's data directory (inside a temp directory deleted on dispose).</summary>
    public string DataDirectory { get; private set; } = "";

    /// <summary>Server log file.</summary>
    public string LogFile { get; private set; } = "";

    /// <summary>TCP port on <see cref="Host"/>.</summary>
    public int Port { get; private set; }

    /// <summary>The server's version, e.g. "17.6".</summary>
    public string Version { get; private set; } = "";

    /// <summary>The durability settings in effect (fsync, synchronous_commit, wal_sync_method, shared_buffers), for reports.</summary>
    public string Settings { get; private set; } = "";

    /// <summary>Connection string of the <c>postgres</c> maintenance database (superuser, trust auth).</summary>
    public string AdminConnectionString => ConnectionStringFor("postgres");

    /// <summary>Connection string for <paramref name="database"/> on this server (superuser, trust auth).</summary>
    public string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = Host,
        Port = Port,
        Username = SuperUser,
        Database = database,
        Timeout = 30,
        CommandTimeout = 60,
    }.ConnectionString;

    /// <summary>The connection string as given to a broker (<c>--set offset.store.connection=...</c>).</summary>
    public string BrokerConnectionString(string database) => $"Host={Host};Port={Port};Username={SuperUser};Database={database}";

    /// <summary>
    /// Creates an empty database and returns its connection string. The name is folded to a valid identifier
    /// (lower case letters, digits, '_'); a database of that name left from before is dropped first, so it is always fresh.
    /// </summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        if (!_running) throw new InvalidOperationException("the PostgreSQL test server is not running");
        var db = SanitizeName(name);
        await _ddlLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await using var conn = new NpgsqlConnection(AdminConnectionString);
            await conn.OpenAsync().ConfigureAwait(false);
            await using (var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)", conn))
                await drop.ExecuteNonQueryAsync().ConfigureAwait(false);
            await using (var create = new NpgsqlCommand($"CREATE DATABASE \"{db}\"", conn))
                await create.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        finally
        {
            _ddlLock.Release();
        }
        return ConnectionStringFor(db);
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/> (connections to it are terminated).</summary>
    public async Task DropDatabaseAsync(string name)
    {
        var db = SanitizeName(name);
        await _ddlLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await using var conn = new NpgsqlConnection(AdminConnectionString);
            await conn.OpenAsync().ConfigureAwait(false);
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)", conn);
            await drop.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        finally
        {
            _ddlLock.Release();
        }
    }

    /// <summary>The identifier <see cref="CreateDatabaseAsync"/> uses for <paramref name="name"/>.</summary>
    public static string SanitizeName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var sb = new StringBuilder(name.Length);
        foreach (var c in name.ToLowerInvariant())
            sb.Append(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '_' ? c : '_');
        if (sb[0] is >= '0' and <= '9') sb.Insert(0, 'd');
        var s = sb.ToString();
        if (s.Length > 63) s = s[..54] + "_" + ((uint)StableHash(name)).ToString("x8", CultureInfo.InvariantCulture);
        return s;
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            var h = (int)2166136261;
            foreach (var c in s) h = (h ^ c) * 16777619;
            return h;
        }
    }

    /// <summary>Starts a server; <paramref name="log"/> (optional) is told when it stops.</summary>
    /// <param name="tempPrefix">Prefix of the temp directory holding the data directory and the log.</param>
    public static async Task<PostgresServer> StartAsync(string tempPrefix = "cairn-pg-", Action<string>? log = null)
    {
        var server = new PostgresServer { _log = log };
        await server.InitializeAsync(tempPrefix).ConfigureAwait(false);
        return server;
    }

    private async Task InitializeAsync(string tempPrefix)
    {
        BinDirectory = FindBinDirectory();
        _asRoot = Environment.IsPrivilegedProcess;
        if (_asRoot)
        {
            _runuser = new[] { "/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser" }.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException(
                    "PostgreSQL test server: running as root, but runuser (util-linux) is missing, so the server cannot run as the 'postgres' user.");
            var (idCode, idOut) = await RunAsync("id", ["-u", SuperUser], asPostgres: false).ConfigureAwait(false);
            if (idCode != 0)
                throw new InvalidOperationException(
                    $"PostgreSQL test server: running as root, but there is no '{SuperUser}' OS user to run the server as ({idOut.Trim()}). " +
                    "Run `bash test.sh` or `apt-get install postgresql` (Debian's postgresql package creates that user).");
        }

        _root = Directory.CreateTempSubdirectory(tempPrefix).FullName;
        DataDirectory = Path.Combine(_root, "data");
        LogFile = Path.Combine(_root, "postgres.log");
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        try
        {
            if (_asRoot) await RunCheckedAsync("chown", ["-R", $"{SuperUser}:", _root], asPostgres: false).ConfigureAwait(false);
            await RunCheckedAsync(Bin("initdb"),
                ["-D", DataDirectory, "-U", SuperUser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]).ConfigureAwait(false);

            Exception? last = null;
            for (var attempt = 0; attempt < 3 && !_running; attempt++)
            {
                Port = FreePort();
                var (code, output) = await RunAsync(Bin("pg_ctl"),
                    ["-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", "-o", $"-h {Host} -p {Port} -k {_root}", "start"]).ConfigureAwait(false);
                if (code == 0)
                {
                    _running = true;
                    break;
                }
                last = new InvalidOperationException($"pg_ctl start failed (exit {code}) on port {Port}: {output.Trim()}\n{LogTail()}");
            }
            if (!_running) throw last!;
            await WaitForConnectionsAsync().ConfigureAwait(false);
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task WaitForConnectionsAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await using var conn = new NpgsqlConnection(AdminConnectionString);
                await conn.OpenAsync().ConfigureAwait(false);
                Version = conn.PostgreSqlVersion.ToString();
                var settings = new List<string>();
                foreach (var name in new[] { "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers" })
                {
                    await using var show = new NpgsqlCommand($"SHOW {name}", conn);
                    settings.Add($"{name}={await show.ExecuteScalarAsync().ConfigureAwait(false)}");
                }
                Settings = string.Join(", ", settings);
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or SocketException or TimeoutException)
            {
                if (DateTime.UtcNow > deadline)
                    throw new InvalidOperationException($"PostgreSQL test server on port {Port} did not accept connections within 60 s: {ex.Message}\n{LogTail()}", ex);
                await Task.Delay(200).ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        NpgsqlConnection.ClearAllPools();
        if (_running)
        {
            _log?.Invoke("stopping PostgreSQL (pg_ctl stop -m fast)");
            var (code, _) = await RunAsync(Bin("pg_ctl"), ["-D", DataDirectory, "-m", "fast", "-w", "-t", "30", "stop"]).ConfigureAwait(false);
            if (code != 0) await RunAsync(Bin("pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "30", "stop"]).ConfigureAwait(false);
            _running = false;
        }
        if (_root is not null)
        {
            try { Directory.Delete(_root, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _log?.Invoke($"could not delete {_root}: {e.Message}"); }
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        // The test host or the bench is going away without disposing us: do not leave a server running.
        if (!_running || Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            RunAsync(Bin("pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "10", "stop"]).GetAwaiter().GetResult();
            if (_root is not null) Directory.Delete(_root, recursive: true);
        }
        catch
        {
            // best effort only
        }
    }

    /// <summary>The last <paramref name="lines"/> lines of the server log, for failure messages.</summary>
    public string LogTail(int lines = 30)
    {
        try
        {
            if (!File.Exists(LogFile)) return "(no server log)";
            var all = File.ReadAllLines(LogFile);
            return "server log:\n" + string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (Exception ex)
        {
            return $"(server log unreadable: {ex.Message})";
        }
    }

    private string Bin(string tool) => Path.Combine(BinDirectory, tool);

    /// <summary>Finds the server binaries: <c>CAIRN_PG_BIN</c>, the newest <c>/usr/lib/postgresql/&lt;version&gt;/bin</c>, or PATH.</summary>
    public static string FindBinDirectory()
    {
        static bool HasTools(string dir) =>
            File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")) && File.Exists(Path.Combine(dir, "postgres"));

        var fromEnv = Environment.GetEnvironmentVariable("CAIRN_PG_BIN");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            if (HasTools(fromEnv)) return fromEnv;
            throw new InvalidOperationException(
                $"CAIRN_PG_BIN={fromEnv} does not hold the PostgreSQL server binaries (initdb, pg_ctl, postgres). " +
                "Unset it to use Debian's postgresql package, which `bash test.sh` installs.");
        }

        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            var best = Directory.GetDirectories(debianRoot)
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: double.TryParse(Path.GetFileName(d), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(x => HasTools(x.Dir))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .FirstOrDefault();
            if (best is not null) return best;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (HasTools(dir)) return dir;
        }

        throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found under /usr/lib/postgresql/<version>/bin, " +
            "CAIRN_PG_BIN or PATH: run `bash test.sh` once (it installs Debian's postgresql package), or `apt-get install postgresql`.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task RunCheckedAsync(string file, string[] args, bool asPostgres = true)
    {
        var (code, output) = await RunAsync(file, args, asPostgres).ConfigureAwait(false);
        if (code != 0)
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', args)} failed (exit {code}): {output.Trim()}");
    }

    /// <summary>Runs a tool (as the postgres OS user when this process is root and <paramref name="asPostgres"/>); returns exit code and combined output.</summary>
    private async Task<(int ExitCode, string Output)> RunAsync(string file, string[] args, bool asPostgres = true)
    {
        var psi = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = _root ?? Path.GetTempPath(),
        };
        if (asPostgres && _asRoot)
        {
            psi.FileName = _runuser!;
            foreach (var a in new[] { "-u", SuperUser, "--", file }) psi.ArgumentList.Add(a);
        }
        else
        {
            psi.FileName = file;
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in new[] { "PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGOPTIONS" }) psi.Environment.Remove(key);
        psi.Environment["LC_ALL"] = "C";

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"{Path.GetFileName(file)} {string.Join(' ', args)} did not finish within {CommandTimeout.TotalSeconds:0} s\n{LogTail()}");
        }
        var output = await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false);
        return (process.ExitCode, output);
    }
}
