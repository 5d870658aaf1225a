using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cairn.Tests.Admin;

/// <summary>
/// Debian's headless Chromium driven over the DevTools protocol (a WebSocket to --remote-debugging-port), enough to
/// load a page, evaluate script in it and take a screenshot. No browser download: the executable is /usr/bin/chromium
/// (or CAIRN_CHROMIUM). Each instance has a fresh profile directory and is killed by its process id when disposed.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly StringBuilder _stderr = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task? _receiveLoop;
    private int _nextId;

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static string? FindExecutable()
    {
        var configured = Environment.GetEnvironmentVariable("CAIRN_CHROMIUM");
        if (!string.IsNullOrEmpty(configured)) return configured;
        return new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);
    }

    public static async Task<HeadlessChromium> LaunchAsync(int width = 1280, int height = 900)
    {
        var executable = FindExecutable()
            ?? throw new InvalidOperationException("Chromium is not installed: apt-get install -y chromium (test.sh installs it), or set CAIRN_CHROMIUM");
        var profile = Path.Combine(Path.GetTempPath(), "cairn-chromium-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profile);
        var psi = new ProcessStartInfo(executable)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                     "--disable-default-apps", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars", "--password-store=basic",
                     "--use-mock-keychain", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                     $"--user-data-dir={profile}", $"--window-size={width},{height}", "about:blank",
                 })
            psi.ArgumentList.Add(arg);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + executable);
        var browser = new HeadlessChromium(process, profile);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (browser._stderr) browser._stderr.AppendLine(e.Data); };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            await browser.ConnectAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
        return browser;
    }

    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    private async Task ConnectAsync(TimeSpan timeout)
    {
        // Chromium writes the port it picked to DevToolsActivePort in the profile directory.
        var portFile = Path.Combine(_profile, "DevToolsActivePort");
        var deadline = Stopwatch.StartNew();
        int port = 0;
        while (port == 0)
        {
            if (_process.HasExited) throw new InvalidOperationException($"chromium exited with {_process.ExitCode}: {Stderr}");
            if (deadline.Elapsed > timeout) throw new TimeoutException("chromium did not open its DevTools port: " + Stderr);
            try
            {
                var lines = await File.ReadAllLinesAsync(portFile);
                if (lines.Length > 0 && int.TryParse(lines[0], out var p)) port = p;
            }
            catch (IOException) { }
            if (port == 0) await Task.Delay(100);
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        string? pageUrl = null;
        while (pageUrl is null)
        {
            if (deadline.Elapsed > timeout) throw new TimeoutException("chromium has no page target");
            var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
            pageUrl = targets.FirstOrDefault(t => (string?)t!["type"] == "page")?["webSocketDebuggerUrl"]?.GetValue<string>();
            if (pageUrl is null) await Task.Delay(100);
        }
        _socket.Options.KeepAliveInterval = TimeSpan.Zero;
        await _socket.ConnectAsync(new Uri(pageUrl), CancellationToken.None);
        _receiveLoop = ReceiveLoopAsync();
        await SendAsync("Page.enable");
        await SendAsync("Runtime.enable");
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                var result = await _socket.ReceiveAsync(buffer, _stopping.Token);
                if (result.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage) continue;
                using var doc = JsonDocument.Parse(message.ToArray());
                message.SetLength(0);
                if (doc.RootElement.TryGetProperty("id", out var id) && _pending.TryRemove(id.GetInt32(), out var waiter))
                {
                    if (doc.RootElement.TryGetProperty("error", out var error)) waiter.TrySetException(new InvalidOperationException("DevTools: " + error.GetRawText()));
                    else waiter.TrySetResult(doc.RootElement.GetProperty("result").Clone());
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException) { }
        foreach (var w in _pending.Values) w.TrySetException(new InvalidOperationException("the DevTools connection closed"));
    }

    /// <summary>Sends one DevTools command and waits for its result.</summary>
    public async Task<JsonElement> SendAsync(string method, object? parameters = null, TimeSpan? timeout = null)
    {
        int id = Interlocked.Increment(ref _nextId);
        var waiter = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = waiter;
        var json = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        await _socket.SendAsync(json, WebSocketMessageType.Text, true, CancellationToken.None);
        return await waiter.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
    }

    public Task NavigateAsync(string url) => SendAsync("Page.navigate", new { url });

    /// <summary>Evaluates a JavaScript expression in the page and returns its value (JSON).</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (result.TryGetProperty("exceptionDetails", out var exception)) throw new InvalidOperationException("page script failed: " + exception.GetRawText());
        var value = result.GetProperty("result");
        return value.TryGetProperty("value", out var v) ? v : default;
    }

    /// <summary>Polls a JavaScript expression until it returns a non-empty string, or fails with the last answer.</summary>
    public async Task<string> WaitForAsync(string expression, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        string? last = null;
        while (watch.Elapsed < timeout)
        {
            try
            {
                var v = await EvaluateAsync(expression);
                if (v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s) return s;
                last = v.ValueKind == JsonValueKind.Undefined ? "undefined" : v.GetRawText();
            }
            catch (InvalidOperationException e) { last = e.Message; } // e.g. during navigation
            await Task.Delay(200);
        }
        throw new TimeoutException($"page did not satisfy `{expression}` within {timeout}; last: {last}");
    }

    /// <summary>Writes a PNG of the whole page (not just the window) to <paramref name="path"/>.</summary>
    public async Task ScreenshotAsync(string path)
    {
        var metrics = await SendAsync("Page.getLayoutMetrics");
        var size = metrics.GetProperty("cssContentSize");
        double width = Math.Ceiling(size.GetProperty("width").GetDouble()), height = Math.Ceiling(size.GetProperty("height").GetDouble());
        var shot = await SendAsync("Page.captureScreenshot", new
        {
            format = "png", captureBeyondViewport = true, clip = new { x = 0, y = 0, width, height, scale = 1 },
        });
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await File.WriteAllBytesAsync(path, Convert.FromBase64String(shot.GetProperty("data").GetString()!));
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        try
        {
            if (_socket.State == WebSocketState.Open)
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is WebSocketException or TimeoutException or OperationCanceledException) { }
        if (_receiveLoop is not null) await _receiveLoop.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true); // the browser we started, by its id, with its own children
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception) { }
        _process.Dispose();
        _stopping.Dispose();
        for (int attempt = 0; attempt < 5; attempt++)
        {
            try { Directory.Delete(_profile, recursive: true); break; }
            catch (IOException) { await Task.Delay(200); }
            catch (UnauthorizedAccessException) { break; }
        }
    }
}
