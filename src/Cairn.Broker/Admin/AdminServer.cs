using System.Net;
using System.Text.Json;
using Cairn.Admin.Model;
using Cairn.Broker.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Admin;

/// <summary>
/// The admin HTTP server on Kestrel: the dashboard (/), health (/healthz, /readyz), Prometheus metrics (/metrics, served by
/// <see cref="MetricsExport"/>)
/// and the JSON API under /api/v1. Isolated from ambient ASP.NET configuration (no appsettings, no ASPNETCORE_*
/// variables, no console lifetime: the broker decides when it stops).
/// </summary>
internal sealed class AdminServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly AdminApi _api;
    private readonly AdminOptions _options;
    private readonly Func<bool> _ready;
    private readonly Func<IPEndPoint> _kafkaEndPoint;
    private readonly DateTimeOffset _startedAt;
    private readonly ILogger _logger;
    private readonly string[] _hostNames;
    private long _lastRefusalLog = long.MinValue;

    /// <summary>The cookie a browser gets by visiting /?token=TOKEN, so the dashboard's own requests carry the token.</summary>
    internal const string TokenCookie = "cairn_admin_token";

    private AdminServer(WebApplication app, AdminApi api, AdminOptions options, Func<bool> ready,
        Func<IPEndPoint> kafkaEndPoint, DateTimeOffset startedAt, ILogger logger, string advertisedHost)
    {
        _app = app;
        _api = api;
        _options = options;
        _ready = ready;
        _kafkaEndPoint = kafkaEndPoint;
        _startedAt = startedAt;
        _logger = logger;
        LocalEndPoint = options.EndPoint;
        var listenHost = options.EndPoint.Address;
        // A wildcard listen address names no host; the operator reaches such a server by the advertised name.
        _hostNames = listenHost.Equals(IPAddress.Any) || listenHost.Equals(IPAddress.IPv6Any)
            ? [advertisedHost] : [advertisedHost, listenHost.ToString()];
    }

    /// <summary>Where the server listens: the configured address, with the port Kestrel picked once started (for port 0).</summary>
    public IPEndPoint LocalEndPoint { get; private set; }

    /// <summary>Binds and starts serving. Throws <see cref="IOException"/> "cannot listen on HOST:PORT: reason" when the address cannot be bound.</summary>
    /// <param name="advertisedHost">the broker's advertised host, accepted in the Host header besides loopback names and the listen host</param>
    public static async Task<AdminServer> StartAsync(AdminOptions options, AdminApi api, MetricsExport metrics, Func<bool> ready,
        Func<IPEndPoint> kafkaEndPoint, string advertisedHost, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        var endpoint = options.EndPoint;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = "Cairn.Admin",
            EnvironmentName = Environments.Production,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ForwardingLoggerProvider(loggerFactory));
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // The host logs a failed start (e.g. the port is taken) with its stack trace at error level before throwing;
        // the broker reports that failure itself in one line (a warning for the best-effort default address).
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        builder.Services.AddSingleton<IHostLifetime, BrokerOwnedLifetime>();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 1024 * 1024;
            k.Listen(endpoint);
        });
        var app = builder.Build();
        var server = new AdminServer(app, api, options, ready, kafkaEndPoint, DateTimeOffset.UtcNow, loggerFactory.CreateLogger("Cairn.Admin"), advertisedHost);
        ((IApplicationBuilder)app).Use(server.GuardAsync); // before everything, /metrics included
        metrics.UsePrometheusEndpoint(app, static http =>
            PathSegments(http) is ["metrics"] && (HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method)));
        ((IApplicationBuilder)app).Run(server.HandleAsync); // the terminal middleware, not WebApplication.Run(url)
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception e)
        {
            await app.DisposeAsync();
            // Kestrel binds exclusively (no SO_REUSEPORT) and reports a taken port as IOException("Failed to bind to address ...")
            // around an AddressInUseException around the SocketException.
            if (e is IOException)
            {
                var reason = Inner<System.Net.Sockets.SocketException>(e) is { } socketError ? Network.KafkaServer.ListenError(socketError)
                    : Inner<Microsoft.AspNetCore.Connections.AddressInUseException>(e) is not null ? "address already in use"
                    : e.Message;
                throw new IOException($"cannot listen on {endpoint}: {reason}", e);
            }
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        int port = address is not null && Uri.TryCreate(address, UriKind.Absolute, out var uri) ? uri.Port : endpoint.Port;
        server.LocalEndPoint = new IPEndPoint(endpoint.Address, port);
        return server;
    }

    private static T? Inner<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
            if (e is T found) return found;
        return null;
    }

    private async Task HandleAsync(HttpContext http)
    {
        var request = http.Request;
        var response = http.Response;
        try
        {
            var segments = PathSegments(http);
            bool read = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
            if (!read)
            {
                var refusal = AdminAccess.CheckWrite(http.Connection.RemoteIpAddress, _options.AllowRemoteWrites,
                    request.Headers.Origin.ToString(), request.Headers.Host.ToString());
                if (refusal is not null)
                {
                    _logger.LogWarning("admin: refused {Method} {Path} from {Remote}: {Reason}", request.Method, request.Path, http.Connection.RemoteIpAddress, refusal);
                    await WriteJsonAsync(http, AdminApi.Error(403, refusal));
                    return;
                }
            }

            switch (segments)
            {
                case []:
                    if (!await AllowAsync(http, read, "GET")) return;
                    response.ContentType = "text/html; charset=utf-8";
                    response.Headers.ContentSecurityPolicy = Dashboard.ContentSecurityPolicy;
                    response.Headers["Referrer-Policy"] = "no-referrer";
                    await response.WriteAsync(Dashboard.Html, http.RequestAborted);
                    return;
                case ["healthz"]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _api.Health());
                    return;
                case ["readyz"]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _ready() ? new AdminResult(200, new { status = "ready" }) : new AdminResult(503, new { status = "not ready" }));
                    return;
                case ["metrics"]:
                    await AllowAsync(http, allowed: false, "GET"); // GET and HEAD are the metrics export's (StartAsync)
                    return;
                case ["api", "v1", "broker"]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _api.Broker(_kafkaEndPoint(), _startedAt));
                    return;
                case ["api", "v1", "topics"]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _api.Topics());
                    return;
                case ["api", "v1", "topics", var topic]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _api.Topic(topic));
                    return;
                case ["api", "v1", "groups"]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _api.GroupList());
                    return;
                case ["api", "v1", "groups", var group]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _api.Group(group));
                    return;
                case ["api", "v1", "groups", var group, "lag-history"]:
                    if (!await AllowAsync(http, read, "GET")) return;
                    await WriteJsonAsync(http, _api.LagHistory(group));
                    return;
                case ["api", "v1", "groups", var group, "reset"]:
                    if (!await AllowAsync(http, HttpMethods.IsPost(request.Method), "POST")) return;
                    await WriteJsonAsync(http, await ResetAsync(http, group));
                    return;
                default:
                    await WriteJsonAsync(http, AdminApi.Error(404, $"no such endpoint: {request.Method} {request.Path}"));
                    return;
            }
        }
        catch (BadHttpRequestException e)
        {
            await WriteJsonAsync(http, AdminApi.Error(e.StatusCode, e.Message));
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested) { }
        catch (Exception e)
        {
            _logger.LogError(e, "admin: {Method} {Path} failed", request.Method, request.Path);
            if (!response.HasStarted) await WriteJsonAsync(http, AdminApi.Error(500, "internal error: " + e.Message));
        }
    }

    /// <summary>Answers 403 for a Host header that does not name this server and, with a token configured, 401 without it.</summary>
    private async Task GuardAsync(HttpContext http, RequestDelegate next)
    {
        var request = http.Request;
        var response = http.Response;
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Content-Type-Options"] = "nosniff";
        var hostRefusal = AdminAccess.CheckHost(request.Host.Host, _hostNames);
        if (hostRefusal is not null)
        {
            LogRefusal(http, hostRefusal);
            await WritePlainAsync(http, 403, hostRefusal);
            return;
        }
        if (_options.AuthToken is { } token)
        {
            bool read = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
            if (read && request.Query.TryGetValue("token", out var fromQuery) && PathSegments(http) is [])
            {
                // The dashboard's way in: keep the token in an HttpOnly cookie and drop it from the address bar (and history).
                if (!AdminAccess.TokenMatches(token, fromQuery.ToString()))
                {
                    LogRefusal(http, "wrong token in ?token=");
                    await WriteUnauthorizedAsync(http, "wrong token");
                    return;
                }
                response.Cookies.Append(TokenCookie, token, new CookieOptions
                {
                    HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", Secure = request.IsHttps,
                });
                response.StatusCode = StatusCodes.Status303SeeOther;
                response.Headers.Location = "/";
                return;
            }
            var presented = AdminAccess.BearerToken(request.Headers.Authorization.ToString()) ?? request.Cookies[TokenCookie];
            if (!AdminAccess.TokenMatches(token, presented))
            {
                LogRefusal(http, presented is null ? "no token" : "wrong token");
                await WriteUnauthorizedAsync(http, presented is null
                    ? "this admin server requires a token: send Authorization: Bearer TOKEN (in a browser, open /?token=TOKEN once)"
                    : "wrong token");
                return;
            }
        }
        await next(http);
    }

    /// <summary>At most one line a minute: refusals are what a rebinding page or a scanner produces, in any number.</summary>
    private void LogRefusal(HttpContext http, string reason)
    {
        long now = Environment.TickCount64, last = Interlocked.Read(ref _lastRefusalLog);
        if ((last != long.MinValue && now - last < 60_000) || Interlocked.CompareExchange(ref _lastRefusalLog, now, last) != last) return;
        _logger.LogWarning("admin: refused {Method} {Path} from {Remote} (Host '{Host}'): {Reason} (further refusals within a minute are not logged)",
            http.Request.Method, http.Request.Path, http.Connection.RemoteIpAddress, http.Request.Host.Value, reason);
    }

    private static Task WriteUnauthorizedAsync(HttpContext http, string message)
    {
        http.Response.Headers.WWWAuthenticate = "Bearer realm=\"cairn-admin\"";
        return WritePlainAsync(http, 401, message);
    }

    private static Task WritePlainAsync(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        var bytes = System.Text.Encoding.UTF8.GetBytes(message + "\n");
        http.Response.ContentLength = bytes.Length;
        return HttpMethods.IsHead(http.Request.Method) ? Task.CompletedTask : http.Response.Body.WriteAsync(bytes, http.RequestAborted).AsTask();
    }

    private async Task<AdminResult> ResetAsync(HttpContext http, string group)
    {
        JsonDocument body;
        try
        {
            body = await JsonDocument.ParseAsync(http.Request.Body, default, http.RequestAborted);
        }
        catch (JsonException e)
        {
            return AdminApi.Error(400, "the body must be JSON: " + e.Message);
        }
        using (body)
        {
            var result = await _api.ResetAsync(group, body.RootElement, http.RequestAborted);
            if (result.Body is AdminDocuments.ResetDto { Executed: true } done)
                _logger.LogInformation("admin: reset offsets of group {Group} ({Mode}, {Scope}) from {Remote}: {Count} partition(s)",
                    group, done.Spec, done.Scope, http.Connection.RemoteIpAddress, done.Plan.Count);
            return result;
        }
    }

    private static async Task<bool> AllowAsync(HttpContext http, bool allowed, string allow)
    {
        if (allowed) return true;
        http.Response.Headers.Allow = allow == "GET" ? "GET, HEAD" : allow;
        await WriteJsonAsync(http, AdminApi.Error(405, $"{http.Request.Method} is not allowed here (use {allow})"));
        return false;
    }

    private static Task WriteJsonAsync(HttpContext http, AdminResult result)
    {
        http.Response.StatusCode = result.Status;
        http.Response.ContentType = "application/json; charset=utf-8";
        var bytes = JsonSerializer.SerializeToUtf8Bytes(result.Body, result.Body.GetType(), AdminDocuments.Json);
        http.Response.ContentLength = bytes.Length;
        return http.Response.Body.WriteAsync(bytes, http.RequestAborted).AsTask();
    }

    /// <summary>
    /// The path's segments, each percent-decoded on its own (from the raw request target, so a group id may contain
    /// an encoded '/'). A trailing slash is ignored.
    /// </summary>
    internal static string[] PathSegments(HttpContext http)
    {
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget;
        string path = raw is not null && raw.StartsWith('/') ? raw : http.Request.Path.Value ?? "/";
        int q = path.IndexOfAny(['?', '#']);
        if (q >= 0) path = path[..q];
        return SplitPath(path);
    }

    public static string[] SplitPath(string path)
    {
        var parts = path.Split('/');
        var segments = new List<string>(parts.Length);
        for (int i = 0; i < parts.Length; i++)
        {
            if (parts[i].Length == 0 && (i == 0 || i == parts.Length - 1)) continue;
            segments.Add(Uri.UnescapeDataString(parts[i]));
        }
        return segments.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try { await _app.StopAsync(timeout.Token); }
            catch (OperationCanceledException) { }
        }
        await _app.DisposeAsync();
    }

    /// <summary>No Ctrl-C/SIGTERM handling of its own: the broker stops the admin server when it stops.</summary>
    private sealed class BrokerOwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Sends ASP.NET Core's own log messages (warnings and up) to the broker's logger factory.</summary>
    private sealed class ForwardingLoggerProvider(ILoggerFactory factory) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);
        public void Dispose() { }
    }
}
