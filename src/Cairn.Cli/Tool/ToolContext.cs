using System.CommandLine;
using Cairn.Client;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Cairn.Cli.Tool;

public enum OutputFormat { Table, Json, Text }

/// <summary>
/// Options every client command takes (<c>--bootstrap-server</c>, <c>-X</c>, <c>--command-config</c>, <c>--output</c>,
/// <c>--timeout</c>, <c>--verbose</c>).
/// They are recursive: given once on a command group (<c>topics</c>, <c>groups</c>, ...), its subcommands see them too.
/// </summary>
internal static class CommonOptions
{
    public const string DefaultBootstrap = "127.0.0.1:9092";

    public static readonly Option<string> Bootstrap = new("--bootstrap-server", "-b")
    {
        Description = "Brokers to connect to, HOST:PORT[,HOST:PORT...]; $CAIRN_BOOTSTRAP_SERVER sets the default",
        HelpName = "host:port",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CAIRN_BOOTSTRAP_SERVER") is { Length: > 0 } env ? env : DefaultBootstrap,
    };

    public static readonly Option<string[]> Property = new("--property", "-X")
    {
        Description = "A Kafka client property KEY=VALUE (repeatable), e.g. -X client.id=ops, -X request.timeout.ms=5000, -X auto.offset.reset=earliest",
        HelpName = "key=value",
        Recursive = true,
        AllowMultipleArgumentsPerToken = false,
    };

    public static readonly Option<string?> CommandConfig = new("--command-config")
    {
        Description = "A properties file of client properties (key=value lines, # comments); -X and explicit options override it",
        HelpName = "file",
        Recursive = true,
    };

    public static readonly Option<string?> Output = CreateOutput();

    private static Option<string?> CreateOutput()
    {
        var o = new Option<string?>("--output")
        {
            Description = "table (people; the default), json (one JSON document, for scripts) or text",
            HelpName = "table|json|text",
            Recursive = true,
        };
        o.AcceptOnlyFromAmong("table", "json", "text");
        return o;
    }

    public static readonly Option<int> Timeout = new("--timeout")
    {
        Description = "Seconds to wait for one broker response",
        HelpName = "seconds",
        Recursive = true,
        DefaultValueFactory = _ => 30,
    };

    public static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "Log connections and show stack traces of errors (on stderr)",
        Recursive = true,
    };

    public static void AddTo(Command command)
    {
        command.Add(Bootstrap);
        command.Add(Property);
        command.Add(CommandConfig);
        command.Add(Output);
        command.Add(Timeout);
        command.Add(Verbose);
    }
}

/// <summary>What an invocation of a client command works with: the parsed common options, the console, the clients.</summary>
internal sealed class ToolContext : IAsyncDisposable
{
    private KafkaAdminClient? _admin;
    private readonly KafkaClientOptions _clientOptions;
    private readonly HashSet<string> _usedProperties = new(StringComparer.Ordinal);
    private ILoggerFactory? _loggerFactory;

    public ToolContext(ParseResult parse, string commandPath, CancellationToken cancellationToken)
    {
        Parse = parse;
        CommandPath = commandPath;
        CancellationToken = cancellationToken;
        Verbose = parse.GetValue(CommonOptions.Verbose);
        // Precedence, lowest first: the defaults ($CAIRN_BOOTSTRAP_SERVER, 30 s), --command-config, -X, then
        // --bootstrap-server and --timeout when given on the command line (Kafka's tools: flags beat the properties file).
        var fromFile = parse.GetValue(CommonOptions.CommandConfig) is { } file ? KafkaProperties.ReadFile(file) : [];
        var properties = KafkaProperties.Merge(fromFile, KafkaProperties.ParseItems(parse.GetValue(CommonOptions.Property) ?? []));
        ClientProperties = properties;
        var options = KafkaProperties.Apply(new KafkaClientOptions
        {
            BootstrapServers = parse.GetValue(CommonOptions.Bootstrap) ?? CommonOptions.DefaultBootstrap,
            ClientId = "cairn-cli",
            RequestTimeout = TimeSpan.FromSeconds(30),
            Retries = 3,
        }, properties, _usedProperties);
        if (parse.GetResult(CommonOptions.Bootstrap) is { Implicit: false }) options = options with { BootstrapServers = parse.GetValue(CommonOptions.Bootstrap)! };
        if (parse.GetResult(CommonOptions.Timeout) is { Implicit: false } || !_usedProperties.Overlaps(["request.timeout.ms", "socket.timeout.ms"]))
        {
            int timeout = parse.GetValue(CommonOptions.Timeout);
            if (timeout <= 0) throw new UsageException("--timeout must be a positive number of seconds");
            options = options with { RequestTimeout = TimeSpan.FromSeconds(timeout) };
        }
        _clientOptions = options;
        Bootstrap = options.BootstrapServers;
        RequestTimeout = options.RequestTimeout;
        OutputRequested = parse.GetValue(CommonOptions.Output) switch
        {
            "json" => OutputFormat.Json,
            "text" => OutputFormat.Text,
            "table" => OutputFormat.Table,
            _ => null,
        };
        Out = Terminal.CreateStdout();
    }

    public ParseResult Parse { get; }
    public string CommandPath { get; }
    public CancellationToken CancellationToken { get; }
    public string Bootstrap { get; }
    public bool Verbose { get; }
    public TimeSpan RequestTimeout { get; }
    /// <summary>The --output given, if any (commands pick their own default).</summary>
    public OutputFormat? OutputRequested { get; }
    /// <summary>Table unless --output says otherwise.</summary>
    public OutputFormat Output => OutputRequested ?? OutputFormat.Table;
    public bool Json => Output == OutputFormat.Json;
    /// <summary>stdout as a Spectre console (tables, markup).</summary>
    public IAnsiConsole Out { get; }

    public T Get<T>(Option<T> option) => Parse.GetValue(option)!;
    public T Get<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    /// <summary>True when <paramref name="option"/> was given on the command line, not defaulted: it then beats -X and --command-config.</summary>
    public bool IsExplicit(Option option) => Parse.GetResult(option) is { Implicit: false };

    /// <summary>
    /// The client properties given with --command-config and -X (-X wins), by the name given. Connection properties
    /// (bootstrap.servers, client.id, request.timeout.ms, ...) are already in <see cref="ClientOptions"/>; producer and
    /// consumer ones (acks, linger.ms, auto.offset.reset, ...) are for the commands to read with <see cref="TryGetProperty"/>.
    /// </summary>
    public IReadOnlyDictionary<string, string> ClientProperties { get; }

    /// <summary>
    /// The value of the property <paramref name="name"/>, marking it used: properties no command used are reported as
    /// ignored. <see cref="ClientPropertyMapping"/> reads the producer and consumer ones, with their librdkafka aliases.
    /// </summary>
    public bool TryGetProperty(string name, out string value)
    {
        if (ClientProperties.TryGetValue(name, out var v))
        {
            _usedProperties.Add(name);
            value = v;
            return true;
        }
        value = "";
        return false;
    }

    /// <summary>Properties given that neither the connection nor the command used.</summary>
    public IEnumerable<string> UnusedProperties => ClientProperties.Keys.Where(k => !_usedProperties.Contains(k)).Order(StringComparer.Ordinal);

    public KafkaClientOptions ClientOptions => _clientOptions with { LoggerFactory = LoggerFactory };

    private ILoggerFactory? LoggerFactory => !Verbose ? null : _loggerFactory ??= Microsoft.Extensions.Logging.LoggerFactory.Create(b =>
    {
        b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        // Logs go to stderr: stdout carries the command's output.
        b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        b.SetMinimumLevel(LogLevel.Debug);
    });

    public KafkaAdminClient Admin => _admin ??= new KafkaAdminClient(ClientOptions);

    /// <summary>Runs <paramref name="work"/> under a spinner when stdout is a terminal; silently otherwise.</summary>
    public Task<T> ProgressAsync<T>(string label, Func<Action<string>, Task<T>> work) =>
        Terminal.ProgressAsync(Out, label, work);

    public Task<T> ProgressAsync<T>(string label, Func<Task<T>> work) => Terminal.ProgressAsync(Out, label, _ => work());

    public async ValueTask DisposeAsync()
    {
        if (_admin is not null) await _admin.DisposeAsync();
        _loggerFactory?.Dispose();
    }
}

/// <summary>A mistake in how the command was called (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>An operation that could not be done, with a message meant for the user (exit code 1).</summary>
internal sealed class ToolException(string message) : Exception(message);
