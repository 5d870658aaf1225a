using System.CommandLine;
using System.Runtime.InteropServices;
using Cairn.Broker;
using Cairn.Protocol;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli;

/// <summary>
/// `cairn serve`: runs a single-node broker until Ctrl-C or SIGTERM. A configuration error (unknown setting, bad value,
/// unreadable config file) is one line on stderr and exit code 2; a broker that cannot start (port taken, data directory
/// not usable) is one line and exit code 1.
/// </summary>
internal static class ServeCommand
{
    private const int UsageError = 2, StartFailed = 1;

    // CAIRN_* variables other cairn commands read: not broker settings, and no reason to warn when serve sees them.
    private static readonly string[] ClientVariables = ["CAIRN_BOOTSTRAP_SERVER"];

    public static Command Create()
    {
        // Values are strings parsed by BrokerOptions, which names the setting in its errors ("node.id must be an integer ...").
        var config = new Option<string?>("--config") { Description = "Properties file (key=value per line); CAIRN_CONFIG also names it" };
        var dataDir = new Option<string?>("--data-dir") { Description = "Directory for logs and metadata (default ./cairn-data)" };
        var listen = new Option<string?>("--listen") { Description = "HOST:PORT to accept Kafka clients on (default 127.0.0.1:9092)" };
        var advertisedHost = new Option<string?>("--advertised-host") { Description = "Host name given to clients in Metadata (default: the listen host)" };
        var nodeId = new Option<string?>("--node-id") { Description = "This broker's node id (default 1)", HelpName = "int" };
        var defaultPartitions = new Option<string?>("--default-partitions") { Description = "Partitions of auto-created topics (default 1)", HelpName = "int" };
        var autoCreate = new Option<string?>("--auto-create-topics")
        {
            Description = "Create unknown topics on metadata/produce (default true)", HelpName = "true|false", Arity = ArgumentArity.ZeroOrOne,
        };
        var adminListen = new Option<string?>("--admin-listen") { Description = "HOST:PORT for the admin HTTP API, /metrics and the dashboard, or none (default 127.0.0.1:9644)" };
        var set = new Option<string[]>("--set") { Description = "Any other setting as KEY=VALUE, e.g. log.retention.ms=3600000 or log.flush.on.ack=true", AllowMultipleArgumentsPerToken = false };
        var logLevel = new Option<string?>("--log-level") { Description = "Minimum log level: trace, debug, information (default), warning, error, critical or none", HelpName = "level" };

        var command = new Command("serve", "Run the broker") { config, dataDir, listen, advertisedHost, nodeId, defaultPartitions, autoCreate, adminListen, set, logLevel };
        command.SetAction(async (result, cancellationToken) =>
        {
            BrokerOptions options;
            LogLevel level;
            var ignored = new List<string>();
            try
            {
                var settings = new List<KeyValuePair<string, string>>();
                var configPath = result.GetValue(config) ?? Environment.GetEnvironmentVariable("CAIRN_CONFIG");
                if (!string.IsNullOrEmpty(configPath)) settings.AddRange(BrokerSettings.ReadPropertiesFile(configPath));
                settings.AddRange(BrokerSettings.FromEnvironment(ignored: ignored));
                void Flag(string key, string? value) { if (value is not null) settings.Add(new(key, value)); }
                Flag("data.dir", result.GetValue(dataDir));
                Flag("listen", result.GetValue(listen));
                Flag("advertised.host", result.GetValue(advertisedHost));
                Flag("node.id", result.GetValue(nodeId));
                Flag("default.partitions", result.GetValue(defaultPartitions));
                Flag("auto.create.topics", result.GetResult(autoCreate) is null ? null : result.GetValue(autoCreate) ?? "true");
                Flag("admin.listen", result.GetValue(adminListen));
                foreach (var pair in result.GetValue(set) ?? [])
                {
                    int eq = pair.IndexOf('=');
                    if (eq <= 0) throw new ArgumentException($"--set expects KEY=VALUE, got '{pair}'");
                    settings.Add(new(pair[..eq], pair[(eq + 1)..]));
                }
                options = BrokerOptions.FromSettings(settings);
                level = ParseLevel(result.GetValue(logLevel));
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"cairn serve: {e.Message}");
                return UsageError;
            }
            var unknown = ignored.Except(ClientVariables).Order(StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
                Console.Error.WriteLine($"cairn serve: warning: ignoring {string.Join(", ", unknown)} (not {(unknown.Count == 1 ? "a broker setting" : "broker settings")})");
            return await RunAsync(options, level, cancellationToken);
        });
        return command;
    }

    /// <summary>
    /// The start-up warning for a Kafka listener reachable from other machines: the broker has no client authentication,
    /// so anyone who reaches the port can read, write and delete every topic. Null on loopback.
    /// </summary>
    internal static string? ExposureWarning(BrokerOptions options)
    {
        var address = options.ListenEndPoint.Address;
        if (System.Net.IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address)) return null;
        return $"the Kafka listener {options.ListenHost}:{options.ListenPort} is not on loopback and Cairn has no client authentication: " +
               "anyone who can reach it can read, write and delete every topic; restrict it with a firewall or listen on 127.0.0.1";
    }

    private static LogLevel ParseLevel(string? value) => value is null ? LogLevel.Information
        : Enum.TryParse<LogLevel>(value, ignoreCase: true, out var level) && Enum.IsDefined(level) && !int.TryParse(value, out _) ? level
        : throw new ArgumentException($"--log-level must be trace, debug, information, warning, error, critical or none, got '{value}'");

    private static async Task<int> RunAsync(BrokerOptions options, LogLevel level, CancellationToken cancellationToken)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-dd HH:mm:ss.fff "; })
            .SetMinimumLevel(level));
        var logger = loggerFactory.CreateLogger("Cairn");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });

        if (ExposureWarning(options) is { } exposure) logger.LogWarning("{Warning}", exposure);
        KafkaBroker broker;
        try
        {
            broker = await KafkaBroker.StartAsync(options, loggerFactory, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e)
        {
            // One line, no stack trace: "cannot listen on 127.0.0.1:9092: address already in use", a data directory that
            // cannot be created or written, an offset store that cannot be reached. Bad setting values are usage errors.
            loggerFactory.Dispose(); // flush what the broker logged before the failure, so the error line comes last
            Console.Error.WriteLine($"cairn serve: {FirstLine(e.Message)}");
            return e is ArgumentException ? UsageError : StartFailed;
        }
        await using (broker)
        {
            try { await Task.Delay(Timeout.Infinite, stop.Token); } catch (OperationCanceledException) { }
            logger.LogInformation("shutting down");
        }
        logger.LogInformation("Cairn {Version} stopped cleanly", CairnVersion.Value);
        return 0;
    }

    private static string FirstLine(string message)
    {
        int newline = message.IndexOfAny(['\r', '\n']);
        return newline < 0 ? message : message[..newline];
    }
}
