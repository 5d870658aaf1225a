using System.Globalization;

namespace Cairn.Bench.RealClient;

/// <summary>
/// Bench subcommands around the null broker: `null-broker` runs one standalone (for external load tools) and
/// `null-broker-selfcheck` drives it with the real client (<see cref="NullBrokerSelfCheck"/>).
/// </summary>
internal static class NullBrokerCommands
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/Cairn.Bench -- null-broker [options]
               dotnet run -c Release --project bench/Cairn.Bench -- null-broker-selfcheck [--records N] [--debug CONTEXTS]
          null-broker: a Kafka endpoint on 127.0.0.1 that acknowledges produce without storing and replays one batch
          per partition to fetches (the real client's own ceiling); runs until Ctrl-C or --seconds.
            --port N                 port on 127.0.0.1 (default: a free one, printed)
            --topic NAME[:PARTS]     create a topic up front (repeatable; topics can also be made with CreateTopics)
            --default-partitions N   partitions of CreateTopics with num_partitions -1 and of auto-created topics (default 1)
            --auto-create            create unknown topics on Metadata (auto.create.topics.enable=true)
            --sink FILE              append every produced batch to FILE before acknowledging
            --fsync                  with --sink: fsync before each acknowledgement
            --seconds N              stop after N seconds (default 3600)
          null-broker-selfcheck: produces N 1 KiB records (acks=1, acks=all, acks=all+idempotence) with
          Confluent.Kafka over the system librdkafka, checks every delivery, then reads >= N records with a
          2-member consumer group over 4 partitions; prints PASS or FAIL (exit code 0 or 1).
            --records N              records per producer run (default 20000)
            --debug CONTEXTS         librdkafka debug contexts for every client (e.g. protocol)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            return args[0] == "null-broker" ? await ServeAsync(args[1..]) : await NullBrokerSelfCheck.RunAsync(args[1..]);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"cairn-bench {args[0]}: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }

    internal static string Value(string[] args, ref int i) =>
        i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");

    internal static int Number(string name, string text, int min, int max) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"{name} must be an integer in [{min}, {max}], got '{text}'");

    private static async Task<int> ServeAsync(string[] args)
    {
        var options = new NullBrokerOptions();
        var topics = new List<(string Name, int Partitions)>();
        int seconds = 3600;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--port": options = options with { Port = Number("--port", Value(args, ref i), 0, 65535) }; break;
                case "--default-partitions": options = options with { DefaultPartitions = Number("--default-partitions", Value(args, ref i), 1, 100_000) }; break;
                case "--sink": options = options with { SinkFile = Value(args, ref i) }; break;
                case "--fsync": options = options with { FsyncOnAck = true }; break;
                case "--auto-create": options = options with { AutoCreateTopics = true }; break;
                case "--seconds": seconds = Number("--seconds", Value(args, ref i), 1, 86_400); break;
                case "--topic":
                    var spec = Value(args, ref i).Split(':');
                    topics.Add((spec[0], spec.Length > 1 ? Number("--topic partitions", spec[1], 1, 100_000) : 1));
                    break;
                case "--help" or "-h": Console.WriteLine(Usage); return 0;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (options.FsyncOnAck && options.SinkFile is null) throw new ArgumentException("--fsync needs --sink");

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        await using var broker = NullBroker.Start(options);
        foreach (var (name, partitions) in topics) broker.AddTopic(name, partitions);
        Console.WriteLine($"null broker listening on {broker.BootstrapServers}");
        try { await Task.Delay(Timeout.Infinite, stop.Token); } catch (OperationCanceledException) { }
        Console.WriteLine($"produced {broker.ProducedBatches} batches, {broker.ProducedBytes} bytes; fetched {broker.FetchedBytes} bytes");
        if (broker.Error is { } error) Console.WriteLine($"a connection failed: {error.GetType().Name}: {error.Message}");
        return 0;
    }
}
