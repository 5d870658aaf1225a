using System.Globalization;

namespace Cairn.Bench.RealClient;

/// <summary>A producer layout: partitions of the topic and producer instances writing to it.</summary>
internal readonly record struct Shape(int Partitions, int Producers)
{
    public override string ToString() => $"{Partitions}x{Producers}";
    public string Describe() => $"{Partitions} partition{(Partitions == 1 ? "" : "s")}, {Producers} producer{(Producers == 1 ? "" : "s")}";
}

/// <summary>Options of the real-client mode (`--client librdkafka`).</summary>
internal sealed class RealClientOptions
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/Cairn.Bench -- --client librdkafka [options]
          Confluent.Kafka 1.9.3 over the system librdkafka against a `cairn serve` the bench starts and against the
          in-process null broker (the client's ceiling); every figure is a ratio to the null broker in the same round.
          --rounds N              rounds, medians reported (default 2)
          --seconds N             time cap of each measured phase (default 3)
          --max-records N         record cap of each measured phase (default 5000000)
          --sizes A,B             record value sizes in bytes (default 1024,100)
          --shapes PxN,...        partitions x producers of the produce phases (default 1x1,16x1,16x4)
          --acks LIST             1, all or 1,all (default 1,all)
          --idle-connections N    idle connections of the idle-connection phase (default 1000; 0 skips it)
          --latency-linger-ms N   linger.ms of the latency and idle-connection phases (default: 0 for acks=1, so the figure is
                                  the broker's and client's, not the batching wait; 5 for acks=all, whose fsync per request
                                  needs batches)
          --quick                 1 round, 2 s phases, 1 KiB records, shapes 1x1,16x4
          --json PATH             also write the results as JSON (for comparing commits)
          --cairn PATH            the cairn executable to start (default: `cairn` on PATH, else the built apphost)
          --no-build              do not build src/Cairn.Cli when no cairn is on PATH
        """;

    public int Rounds { get; private set; } = 2;
    public double Seconds { get; private set; } = 3;
    public long MaxRecords { get; private set; } = 5_000_000;
    public int[] Sizes { get; private set; } = [1024, 100];
    public Shape[] Shapes { get; private set; } = [new(1, 1), new(16, 1), new(16, 4)];
    public string[] Acks { get; private set; } = ["1", "all"];
    public int IdleConnections { get; private set; } = 1000;
    public int? LatencyLingerMsOverride { get; private set; }

    /// <summary>linger.ms of a latency phase: with linger 0 librdkafka sends nearly every record as its own request, which
    /// an fsync per acks=all request cannot keep up with at half of the linger-5 maximum.</summary>
    public int LatencyLingerMs(string acks) => LatencyLingerMsOverride ?? (acks == "all" ? 5 : 0);
    public bool Quick { get; private set; }
    public string? JsonPath { get; private set; }
    public string? Cairn { get; private set; }
    public bool NoBuild { get; private set; }
    public bool Help { get; private set; }
    public IReadOnlyList<string> Arguments { get; private set; } = [];

    public TimeSpan Duration => TimeSpan.FromSeconds(Seconds);

    public static RealClientOptions Parse(string[] args)
    {
        var o = new RealClientOptions { Arguments = args };
        bool sizesGiven = false, shapesGiven = false, roundsGiven = false, secondsGiven = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--client":
                    var client = Next();
                    if (client != "librdkafka") throw new ArgumentException($"--client: only librdkafka is supported, got '{client}'");
                    break;
                case "--rounds": o.Rounds = (int)ParseLong(args[i], Next(), 1, 100); roundsGiven = true; break;
                case "--seconds": o.Seconds = ParseLong(args[i], Next(), 1, 600); secondsGiven = true; break;
                case "--max-records": o.MaxRecords = ParseLong(args[i], Next(), 1000, 1_000_000_000); break;
                case "--sizes": o.Sizes = Next().Split(',').Select(s => (int)ParseLong("--sizes", s, 1, 900_000)).ToArray(); sizesGiven = true; break;
                case "--shapes": o.Shapes = Next().Split(',').Select(ParseShape).ToArray(); shapesGiven = true; break;
                case "--acks":
                    o.Acks = Next().Split(',');
                    if (o.Acks.Length == 0 || o.Acks.Any(a => a is not ("1" or "all"))) throw new ArgumentException("--acks must list 1 and/or all");
                    break;
                case "--idle-connections": o.IdleConnections = (int)ParseLong(args[i], Next(), 0, 5000); break;
                case "--latency-linger-ms": o.LatencyLingerMsOverride = (int)ParseLong(args[i], Next(), 0, 1000); break;
                case "--quick": o.Quick = true; break;
                case "--json": o.JsonPath = Next(); break;
                case "--cairn": o.Cairn = Next(); break;
                case "--no-build": o.NoBuild = true; break;
                case "-h" or "--help": o.Help = true; break;
                default: throw new ArgumentException($"unknown argument '{args[i]}' for --client librdkafka");
            }
        }
        if (o.Quick)
        {
            if (!roundsGiven) o.Rounds = 1;
            if (!secondsGiven) o.Seconds = 2;
            if (!sizesGiven) o.Sizes = [1024];
            if (!shapesGiven) o.Shapes = [new(1, 1), new(16, 4)];
        }
        return o;
    }

    private static Shape ParseShape(string value)
    {
        var parts = value.Split('x');
        if (parts.Length != 2) throw new ArgumentException($"--shapes: PARTITIONSxPRODUCERS, got '{value}'");
        return new Shape((int)ParseLong("--shapes partitions", parts[0], 1, 256), (int)ParseLong("--shapes producers", parts[1], 1, 16));
    }

    private static long ParseLong(string name, string value, long min, long max) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v : throw new ArgumentException($"{name} must be an integer in [{min}, {max}], got '{value}'");
}
