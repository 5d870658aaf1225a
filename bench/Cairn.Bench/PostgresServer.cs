using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Cairn.Bench;

/// <summary>
/// A throw-away PostgreSQL server for the commit benchmark: initdb into a temporary directory (trust authentication),
/// start it on a free 127.0.0.1 port with its unix socket inside that directory, create databases, and on dispose stop it
/// (<c>pg_ctl stop -m fast</c>) and delete the directory. Uses Debian's server binaries (<c>/usr/lib/postgresql/&lt;version&gt;/bin</c>,
/// or <c>CAIRN_PG_BIN</c>); when the bench runs as root, initdb and pg_ctl run as the <c>postgres</c> OS user through runuser.
/// The server keeps PostgreSQL's durable defaults (fsync=on, synchronous_commit=on).
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string SuperUser = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private readonly string _bin;
    private readonly string _root;
    private readonly string? _runuser;
    private bool _running;
    private int _disposed;

    public int Port { get; private set; }
    public string DataDirectory => Path.Combine(_root, "data");
    public string LogFile => Path.Combine(_root, "postgres.log");
    public string Version { get; private set; } = "";
    public string Settings { get; private set; } = "";

    private PostgresServer(string bin, string root, string? runuser)
    {
        _bin = bin;
        _root = root;
        _runuser = runuser;
    }

    public string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = SuperUser,
        Database = database,
        Timeout = 30,
        CommandTimeout = 60,
    }.ConnectionString;

    /// <summary>The connection string as given to the broker (<c>--set offset.store.connection=...</c>).</summary>
    public string BrokerConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username={SuperUser};Database={database}";

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = FindBinDirectory();
        string? runuser = null;
        if (Environment.IsPrivilegedProcess)
        {
            runuser = new[] { "/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser" }.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException("running as root but runuser is missing, so PostgreSQL cannot run as the 'postgres' user");
        }
        var root = Directory.CreateTempSubdirectory("cairn-bench-pg-").FullName;
        var server = new PostgresServer(bin, root, runuser);
        AppDomain.CurrentDomain.ProcessExit += server.OnProcessExit;
        try
        {
            if (runuser is not null)
            {
                var (idCode, idOut) = await server.RunAsync("id", ["-u", SuperUser], asPostgres: false);
                if (idCode != 0) throw new InvalidOperationException($"running as root but there is no '{SuperUser}' OS user ({idOut.Trim()})");
                await server.RunCheckedAsync("chown", ["-R", $"{SuperUser}:", root], asPostgres: false);
            }
            await server.RunCheckedAsync(Path.Combine(bin, "initdb"),
                ["-D", server.DataDirectory, "-U", SuperUser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
            Exception? last = null;
            for (int attempt = 0; attempt < 3 && !server._running; attempt++)
            {
                server.Port = FreePort();
                var (code, output) = await server.RunAsync(Path.Combine(bin, "pg_ctl"),
                    ["-D", server.DataDirectory, "-l", server.LogFile, "-w", "-t", "60", "-o", $"-h 127.0.0.1 -p {server.Port} -k {root}", "start"]);
                if (code == 0) server._running = true;
                else last = new InvalidOperationException($"pg_ctl start failed (exit {code}) on port {server.Port}: {output.Trim()}\n{server.LogTail()}");
            }
            if (!server._running) throw last!;
            await server.WaitForConnectionsAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private async Task WaitForConnectionsAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var conn = new NpgsqlConnection(ConnectionStringFor("postgres"));
                await conn.OpenAsync();
                Version = conn.PostgreSqlVersion.ToString();
                var settings = new List<string>();
                foreach (var name in new[] { "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers" })
                {
                    await using var show = new NpgsqlCommand($"SHOW {name}", conn);
                    settings.Add($"{name}={await show.ExecuteScalarAsync()}");
                }
                Settings = string.Join(", ", settings);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException && deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(200);
            }
        }
    }

    /// <summary>Creates an empty database (dropping one of that name first).</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        await using var conn = new NpgsqlConnection(ConnectionStringFor("postgres"));
        await conn.OpenAsync();
        await using (var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", conn)) await drop.ExecuteNonQueryAsync();
        await using (var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn)) await create.ExecuteNonQueryAsync();
        return ConnectionStringFor(name);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        NpgsqlConnection.ClearAllPools();
        if (_running)
        {
            Console.Error.WriteLine("[bench] stopping PostgreSQL (pg_ctl stop -m fast)");
            var (code, _) = await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-m", "fast", "-w", "-t", "30", "stop"]);
            if (code != 0) await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "30", "stop"]);
            _running = false;
        }
        try { Directory.Delete(_root, recursive: true); }
        catch (Exception e) { Console.Error.WriteLine($"[bench] could not delete {_root}: {e.Message}"); }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        // The bench is going away without disposing us (e.g. an unhandled exception): do not leave a server running.
        if (!_running || Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "10", "stop"]).GetAwaiter().GetResult();
            Directory.Delete(_root, recursive: true);
        }
        catch
        {
            // best effort only
        }
    }

    public string LogTail(int lines = 20)
    {
        try
        {
            if (!File.Exists(LogFile)) return "(no server log)";
            var all = File.ReadAllLines(LogFile);
            return "server log:\n" + string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (Exception e)
        {
            return $"(server log unreadable: {e.Message})";
        }
    }

    /// <summary><c>CAIRN_PG_BIN</c>, else the newest <c>/usr/lib/postgresql/&lt;version&gt;/bin</c>, else PATH.</summary>
    public static string FindBinDirectory()
    {
        static bool HasTools(string dir) => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"));
        var fromEnv = Environment.GetEnvironmentVariable("CAIRN_PG_BIN");
        if (!string.IsNullOrEmpty(fromEnv))
            return HasTools(fromEnv) ? fromEnv : throw new InvalidOperationException($"CAIRN_PG_BIN={fromEnv} holds no initdb/pg_ctl");
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            var best = Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Dir: Path.Combine(d, "bin"), V: double.TryParse(Path.GetFileName(d), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(x => HasTools(x.Dir)).OrderByDescending(x => x.V).Select(x => x.Dir).FirstOrDefault();
            if (best is not null) return best;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (HasTools(dir)) return dir;
        throw new InvalidOperationException("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/<version>/bin, CAIRN_PG_BIN or PATH " +
                                            "(apt-get install postgresql, or run with --no-postgres)");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task RunCheckedAsync(string file, string[] args, bool asPostgres = true)
    {
        var (code, output) = await RunAsync(file, args, asPostgres);
        if (code != 0) throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', args)} failed (exit {code}): {output.Trim()}");
    }

    private async Task<(int ExitCode, string Output)> RunAsync(string file, string[] args, bool asPostgres = true)
    {
        var psi = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = _root,
        };
        if (asPostgres && _runuser is not null)
        {
            psi.FileName = _runuser;
            foreach (var a in new[] { "-u", SuperUser, "--", file }) psi.ArgumentList.Add(a);
        }
        else psi.FileName = file;
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
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"{Path.GetFileName(file)} {string.Join(' ', args)} did not finish within {CommandTimeout.TotalSeconds:0} s\n{LogTail()}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
