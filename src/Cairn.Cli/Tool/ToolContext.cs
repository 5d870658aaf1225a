using System.CommandLine;
using Cairn.Client;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Cairn.Cli.Tool;

public enum OutputFormat { Table, Json, Text }

/// <summary>
/// Options every client command takes (<c>--bootstrap-server</c>, <c>--output</c>, <c>--timeout</c>, <c>--verbose</c>).
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
        command.Add(Output);
        command.Add(Timeout);
        command.Add(Verbose);
    }
}

/// <summary>What an invocation of a client command works with: the parsed common options, the console, the clients.</summary>
internal sealed class ToolContext : IAsyncDisposable
{
    private KafkaAdminClient? _admin;
    private ILoggerFactory? _loggerFactory;

    public ToolContext(ParseResult parse, string commandPath, CancellationToken cancellationToken)
    {
        Parse = parse;
        CommandPath = commandPath;
        CancellationToken = cancellationToken;
        Bootstrap = parse.GetValue(CommonOptions.Bootstrap) ?? CommonOptions.DefaultBootstrap;
        Verbose = parse.GetValue(CommonOptions.Verbose);
        int timeout = parse.GetValue(CommonOptions.Timeout);
        if (timeout <= 0) throw new UsageException("--timeout must be a positive number of seconds");
        RequestTimeout = TimeSpan.FromSeconds(timeout);
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

    public KafkaClientOptions ClientOptions => new()
    {
        BootstrapServers = Bootstrap,
        ClientId = "cairn-cli",
        RequestTimeout = RequestTimeout,
        LoggerFactory = LoggerFactory,
        Retries = 3,
    };

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
