using System.Globalization;
using System.Text;
using Cairn.Storage;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Groups.Store;

/// <summary>What <c>groups.db.state</c> says: the newest write sequence known durable in the database, and whether the
/// store was closed cleanly after writing it.</summary>
internal sealed record SqliteWriteState(long Sequence, bool Clean, DateTimeOffset Written);

/// <summary>
/// The record, kept beside a SQLite group store's file, of the newest write sequence known to be durable in it
/// (<c>groups.db.state</c>). SQLite keeps recent commits only in the write-ahead log until a checkpoint copies them into
/// the main file; if the log is truncated or deleted, SQLite opens the older main file as a perfectly consistent database
/// and the lost commits leave no trace in it. This file is that trace. It is rewritten atomically (temp file, fsync,
/// rename, directory fsync) with a sequence the database has already committed: at start-up, every few seconds while
/// writes happen, and at a clean shutdown (then marked clean). A database sequence below the recorded one means lost writes.
/// </summary>
internal sealed class SqliteWriteRecord
{
    /// <summary>Added to the database file's name: <c>groups.db.state</c>. Not <c>groups.db-*</c>, the names SQLite uses
    /// for its own transient files, which people delete.</summary>
    public const string Suffix = ".state";

    private const string Header = "# Cairn group store: the newest write sequence known to be durable in the database beside this file.\n" +
                                  "# Compared at start-up to detect lost offset commits (a damaged groups.db-wal); do not edit.\n";

    private readonly Func<long> _committedSequence;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private Timer? _timer;
    private long _recorded;
    private bool _closed;
    private bool _failing;

    /// <param name="committedSequence">The newest sequence the database has committed (never one still in a transaction).</param>
    public SqliteWriteRecord(string databasePath, Func<long> committedSequence, ILogger logger)
    {
        Path = databasePath + Suffix;
        _committedSequence = committedSequence;
        _logger = logger;
    }

    public string Path { get; }

    /// <summary>Reads the record: null when there is none; throws <see cref="InvalidDataException"/> when it cannot be understood.</summary>
    public static SqliteWriteState? Read(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        long? sequence = null;
        bool? clean = null;
        var written = DateTimeOffset.MinValue;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var eq = line.IndexOf('=');
            if (eq <= 0) throw new InvalidDataException($"{path}: not a key=value line: '{line}'");
            var (key, value) = (line[..eq], line[(eq + 1)..]);
            switch (key)
            {
                case "sequence" when long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var s):
                    sequence = s;
                    break;
                case "clean" when bool.TryParse(value, out var c):
                    clean = c;
                    break;
                case "written" when DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var w):
                    written = w;
                    break;
                case "sequence" or "clean" or "written":
                    throw new InvalidDataException($"{path}: bad {key} '{value}'");
            }
        }
        if (sequence is null || clean is null) throw new InvalidDataException($"{path}: no sequence or clean line");
        return new SqliteWriteState(sequence.Value, clean.Value, written);
    }

    /// <summary>Records the current sequence as not closed cleanly (a crash from now on is an unclean start) and refreshes
    /// it every <paramref name="interval"/> while the sequence grows.</summary>
    public void Start(TimeSpan interval)
    {
        lock (_gate)
        {
            Write(_committedSequence(), clean: false);
            _timer = new Timer(_ => Refresh(), null, interval, interval);
        }
    }

    /// <summary>Writes the current sequence now if it grew since the last write (the timer's work; tests call it directly).</summary>
    public void Refresh()
    {
        lock (_gate)
        {
            if (_closed) return;
            var sequence = _committedSequence();
            if (sequence <= _recorded) return;
            try
            {
                Write(sequence, clean: false);
                if (_failing) _logger.LogInformation("group store: {Path} is written again (sequence {Sequence})", Path, sequence);
                _failing = false;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The offsets themselves are safe in the database; only the means to notice their loss later is stale.
                if (!_failing)
                    _logger.LogWarning("group store: cannot update {Path} ({Error}); lost offset commits after sequence {Recorded} would go unnoticed until it is written again",
                        Path, e.Message, _recorded);
                _failing = true;
            }
        }
    }

    /// <summary>Stops the refresh; with <paramref name="clean"/> (the database closed without error) records the final sequence as a clean shutdown.</summary>
    public void Close(bool clean)
    {
        lock (_gate)
        {
            if (_closed) return;
            _closed = true;
            _timer?.Dispose();
            if (_timer is null) return; // never started: the record still describes the previous run
            try
            {
                Write(_committedSequence(), clean);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("group store: cannot record the clean shutdown in {Path} ({Error}); the next start checks the database", Path, e.Message);
            }
        }
    }

    private void Write(long sequence, bool clean)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{Header}sequence={sequence}\nclean={(clean ? "true" : "false")}\nwritten={DateTimeOffset.UtcNow:O}\n");
        DurableFile.WriteAtomic(Path, Encoding.UTF8.GetBytes(text));
        _recorded = sequence;
    }
}
