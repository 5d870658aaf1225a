using System.Diagnostics;
using System.Text;

namespace Cairn.Testing;

/// <summary>The outcome of an external command that ran to completion.</summary>
public sealed class ProcessResult
{
    public required string Command { get; init; }
    public required int ExitCode { get; init; }
    public required byte[] StdoutBytes { get; init; }
    public required string Stderr { get; init; }
    public required TimeSpan Elapsed { get; init; }

    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    public IEnumerable<string> StdoutLines =>
        Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r'));

    public string Describe() => ChildProcess.DescribeOutput(Command, $"exit code {ExitCode} after {Elapsed.TotalSeconds:F1}s", StdoutBytes, Stderr);

    public ProcessResult EnsureSuccess()
    {
        if (ExitCode != 0)
            throw new ExternalCommandException($"Command failed. {Describe()}");
        return this;
    }
}

public sealed class ExternalCommandException(string message) : Exception(message);

/// <summary>
/// An external process with its stdout captured as bytes (so binary kcat output survives) and as lines, and
/// its stderr as lines, all observable while it runs. Every wait is bounded; killed (whole tree) on dispose.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);
    private const int MaxStderrLines = 2000;

    private readonly Process _process;
    private readonly MemoryStream _stdout = new();
    private readonly List<string> _stdoutLines = new();
    private readonly MemoryStream _partialLine = new();
    private readonly List<string> _stderr = new();
    private readonly object _gate = new();
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _stderrDropped;

    public string Command { get; }
    public int Id => _process.Id;

    /// <summary>
    /// Called with the file name and arguments before every start, e.g. to fail a test with a clear message when the
    /// client it runs is not installed. Set once, at start-up of the assembly that needs it.
    /// </summary>
    public static Action<string, IReadOnlyList<string>>? BeforeStart { get; set; }

    private ChildProcess(Process process, string command, byte[]? stdin, bool keepStdinOpen)
    {
        _process = process;
        Command = command;
        _stdoutPump = PumpStdoutAsync();
        _stderrPump = PumpStderrAsync();
        if (!keepStdinOpen || stdin is not null) _ = FeedStdinAsync(stdin);
    }

    /// <summary>Starts `dotnet <paramref name="dll"/> args` in the dll's directory, its stdin left open (<see cref="StandardInput"/>).</summary>
    public static ChildProcess StartDll(string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null) =>
        Start(DotnetHost.Path, [dll, .. args], env: env, workingDirectory: Path.GetDirectoryName(dll), keepStdinOpen: true);

    /// <summary>
    /// Starts a process. <paramref name="stdin"/> is written to it and its input closed; with <paramref name="keepStdinOpen"/>
    /// and no <paramref name="stdin"/> the input stays open for <see cref="StandardInput"/>.
    /// </summary>
    public static ChildProcess Start(string fileName, IEnumerable<string> args, byte[]? stdin = null,
        IReadOnlyDictionary<string, string>? env = null, string? workingDirectory = null, bool keepStdinOpen = false)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        BeforeStart?.Invoke(fileName, psi.ArgumentList.ToList());
        // Quiet, unbuffered client drivers (python, kafkajs) so that their output lines arrive as they are printed.
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        psi.Environment["PYTHONUNBUFFERED"] = "1";
        psi.Environment["KAFKAJS_NO_PARTITIONER_WARNING"] = "1";
        if (env is not null)
            foreach (var (k, v) in env) psi.Environment[k] = v;

        var command = fileName + " " + string.Join(' ', psi.ArgumentList.Select(Quote));
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new ExternalCommandException($"Could not start: {command}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ExternalCommandException($"Could not start `{command}`: {e.Message}. Is it installed? (test.sh installs what the tests need.)");
        }
        return new ChildProcess(process, command, stdin, keepStdinOpen);
    }

    /// <summary>Runs a command to completion (bounded), capturing stdout and stderr.</summary>
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> args, TimeSpan? timeout = null,
        byte[]? stdin = null, IReadOnlyDictionary<string, string>? env = null)
    {
        await using var p = Start(fileName, args, stdin, env);
        return await p.WaitForExitAsync(timeout ?? DefaultTimeout);
    }

    /// <summary>Runs a command and fails, with its stdout and stderr in the message, unless it exits 0.</summary>
    public static async Task<ProcessResult> RunCheckedAsync(string fileName, IEnumerable<string> args, TimeSpan? timeout = null,
        byte[]? stdin = null, IReadOnlyDictionary<string, string>? env = null) =>
        (await RunAsync(fileName, args, timeout, stdin, env)).EnsureSuccess();

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once <see cref="HasExited"/>.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>The process's input, open when started with keepStdinOpen (e.g. by <see cref="StartDll"/>).</summary>
    public StreamWriter StandardInput => _process.StandardInput;

    public byte[] StdoutSnapshot()
    {
        lock (_gate) return _stdout.ToArray();
    }

    /// <summary>Complete (newline-terminated) stdout lines so far.</summary>
    public IReadOnlyList<string> StdoutLinesSnapshot()
    {
        lock (_gate) return _stdoutLines.ToList();
    }

    public int StdoutLineCount
    {
        get { lock (_gate) return _stdoutLines.Count; }
    }

    public IReadOnlyList<string> StderrSnapshot()
    {
        lock (_gate) return _stderr.ToList();
    }

    public string Describe(string state = "running") =>
        DescribeOutput(Command, state, StdoutSnapshot(), string.Join('\n', StderrSnapshot()));

    /// <summary>Waits (bounded) for a stdout line matching the predicate; fails if the process exits first.</summary>
    public Task<string> WaitForStdoutLineAsync(Func<string, bool> predicate, TimeSpan timeout, string what = "the expected stdout line") =>
        WaitForLineAsync(StdoutLinesSnapshot, predicate, timeout, what);

    /// <summary>Waits (bounded) for a stderr line matching the predicate; fails if the process exits first.</summary>
    public Task<string> WaitForStderrLineAsync(Func<string, bool> predicate, TimeSpan timeout, string what) =>
        WaitForLineAsync(StderrSnapshot, predicate, timeout, what);

    private async Task<string> WaitForLineAsync(Func<IReadOnlyList<string>> lines, Func<string, bool> predicate, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var hit = lines().FirstOrDefault(predicate);
            if (hit is not null) return hit;
            if (_process.HasExited)
            {
                await Task.WhenAny(Task.WhenAll(_stdoutPump, _stderrPump), Task.Delay(2000));
                hit = lines().FirstOrDefault(predicate);
                if (hit is not null) return hit;
                throw new ExternalCommandException($"Process exited before {what}. {Describe($"exit code {_process.ExitCode}")}");
            }
            if (deadline.Elapsed > timeout)
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0}s waiting for {what}. {Describe()}");
            await Task.Delay(25);
        }
    }

    /// <summary>Waits (bounded) for the process to exit; on timeout kills it and throws with its output.</summary>
    public async Task<ProcessResult> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            await Task.WhenAny(Task.WhenAll(_stdoutPump, _stderrPump), Task.Delay(3000));
            throw new TimeoutException($"Command did not finish within {timeout.TotalSeconds:F0}s and was killed. {Describe("killed")}");
        }
        // The pipes close when the process (and any child holding them) is gone.
        await Task.WhenAny(Task.WhenAll(_stdoutPump, _stderrPump), Task.Delay(5000));
        return new ProcessResult
        {
            Command = Command,
            ExitCode = _process.ExitCode,
            StdoutBytes = StdoutSnapshot(),
            Stderr = string.Join('\n', StderrSnapshot()),
            Elapsed = _clock.Elapsed,
        };
    }

    /// <summary>SIGKILL (the whole tree, no chance to clean up), then wait (bounded) for it and its output.</summary>
    public async Task KillAsync()
    {
        Kill();
        await WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
        _process.Dispose();
    }

    private async Task FeedStdinAsync(byte[]? stdin)
    {
        try
        {
            if (stdin is { Length: > 0 })
                await _process.StandardInput.BaseStream.WriteAsync(stdin);
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
            // the process exited before reading all of its input; its exit code tells
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task PumpStdoutAsync()
    {
        var buffer = new byte[64 * 1024];
        var stream = _process.StandardOutput.BaseStream;
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                lock (_gate)
                {
                    _stdout.Write(buffer, 0, n);
                    SplitLines(buffer.AsSpan(0, n));
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }
    }

    private void SplitLines(ReadOnlySpan<byte> chunk)
    {
        while (chunk.Length > 0)
        {
            var nl = chunk.IndexOf((byte)'\n');
            if (nl < 0)
            {
                _partialLine.Write(chunk);
                return;
            }
            _partialLine.Write(chunk[..nl]);
            var line = Encoding.UTF8.GetString(_partialLine.GetBuffer(), 0, (int)_partialLine.Length).TrimEnd('\r');
            _partialLine.SetLength(0);
            if (line.Length > 0) _stdoutLines.Add(line);
            chunk = chunk[(nl + 1)..];
        }
    }

    private async Task PumpStderrAsync()
    {
        try
        {
            string? line;
            while ((line = await _process.StandardError.ReadLineAsync()) is not null)
            {
                lock (_gate)
                {
                    _stderr.Add(line);
                    if (_stderr.Count > MaxStderrLines)
                    {
                        _stderr.RemoveAt(0);
                        _stderrDropped++;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }
    }

    internal static string DescribeOutput(string command, string state, byte[] stdout, string stderr)
    {
        const int max = 12_000;
        var outText = Printable(stdout);
        if (outText.Length > max) outText = "…" + outText[^max..];
        if (stderr.Length > max) stderr = "…" + stderr[^max..];
        return $"`{command}` ({state})\n--- stdout ---\n{outText}\n--- stderr ---\n{stderr}\n--- end ---";
    }

    private static string Printable(byte[] bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (var c in Encoding.UTF8.GetString(bytes))
            sb.Append(c == '\n' || c == '\t' || !char.IsControl(c) ? c : '·');
        return sb.ToString();
    }

    private static string Quote(string a) =>
        a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=@,%+".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}
