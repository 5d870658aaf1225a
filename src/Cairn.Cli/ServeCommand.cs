using System.CommandLine;
using System.Runtime.InteropServices;
using Cairn.Broker;
using Microsoft.Extensions.Logging;

namespace Cairn.Cli;

/// <summary>`cairn serve`: runs a single-node broker until Ctrl-C or SIGTERM.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config") { Description = "Properties file (key=value per line); CAIRN_CONFIG also names it" };
        var dataDir = new Option<string?>("--data-dir") { Description = "Directory for logs and metadata (default ./cairn-data)" };
        var listen = new Option<string?>("--listen") { Description = "HOST:PORT to accept Kafka clients on (default 127.0.0.1:9092)" };
        var advertisedHost = new Option<string?>("--advertised-host") { Description = "Host name given to clients in Metadata (default: the listen host)" };
        var nodeId = new Option<int?>("--node-id") { Description = "This broker's node id (default 1)" };
        var defaultPartitions = new Option<int?>("--default-partitions") { Description = "Partitions of auto-created topics (default 1)" };
        var autoCreate = new Option<bool?>("--auto-create-topics") { Description = "Create unknown topics on metadata/produce (default true)" };
        var adminListen = new Option<string?>("--admin-listen") { Description = "HOST:PORT for the admin HTTP API, /metrics and the dashboard, or none (default 127.0.0.1:9644)" };
        var set = new Option<string[]>("--set") { Description = "Any other setting as KEY=VALUE, e.g. log.retention.ms=3600000 or log.flush.on.ack=true", AllowMultipleArgumentsPerToken = false };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Minimum log level", DefaultValueFactory = _ => LogLevel.Information };

        var command = new Command("serve", "Run the broker") { config, dataDir, listen, advertisedHost, nodeId, defaultPartitions, autoCreate, adminListen, set, logLevel };
        command.SetAction(async (result, cancellationToken) =>
        {
            var settings = new List<KeyValuePair<string, string>>();
            try
            {
                var configPath = result.GetValue(config)?.FullName ?? Environment.GetEnvironmentVariable("CAIRN_CONFIG");
                if (configPath is not null) settings.AddRange(BrokerSettings.ReadPropertiesFile(configPath));
                settings.AddRange(BrokerSettings.FromEnvironment());
                void Flag(string key, object? value) { if (value is not null) settings.Add(new(key, value is bool b ? (b ? "true" : "false") : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!)); }
                Flag("data.dir", result.GetValue(dataDir));
                Flag("listen", result.GetValue(listen));
                Flag("advertised.host", result.GetValue(advertisedHost));
                Flag("node.id", result.GetValue(nodeId));
                Flag("default.partitions", result.GetValue(defaultPartitions));
                Flag("auto.create.topics", result.GetValue(autoCreate));
                Flag("admin.listen", result.GetValue(adminListen));
                foreach (var pair in result.GetValue(set) ?? [])
                {
                    int eq = pair.IndexOf('=');
                    if (eq <= 0) throw new ArgumentException($"--set expects KEY=VALUE, got '{pair}'");
                    settings.Add(new(pair[..eq], pair[(eq + 1)..]));
                }
                var options = BrokerOptions.FromSettings(settings);
                return await RunAsync(options, result.GetValue(logLevel), cancellationToken);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"cairn serve: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(BrokerOptions options, LogLevel level, CancellationToken cancellationToken)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-dd HH:mm:ss.fff "; })
            .SetMinimumLevel(level));
        var logger = loggerFactory.CreateLogger("Cairn");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });

        KafkaBroker broker;
        try
        {
            broker = await KafkaBroker.StartAsync(options, loggerFactory, stop.Token);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException or InvalidDataException or InvalidOperationException or ArgumentException)
        {
            logger.LogCritical("cannot start: {Error}", e.Message);
            return 1;
        }
        await using (broker)
        {
            try { await Task.Delay(Timeout.Infinite, stop.Token); } catch (OperationCanceledException) { }
            logger.LogInformation("shutting down");
        }
        logger.LogInformation("stopped cleanly");
        return 0;
    }
}
