using System.Globalization;

namespace Cairn.Bench;

internal sealed class FootprintOptions
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/Cairn.Bench -- footprint [options]
          Memory (VmRSS/VmHWM of the broker process) idle, with many partitions and under produce load; start-up time with
          many partitions after SIGTERM and after SIGKILL; recovery time after SIGKILL with a small and a large data set in the
          same partitions. Starts `cairn serve` on 127.0.0.1 (admin HTTP server on, as by default) with temporary data
          directories, kills it at the end and deletes the data.
          --topics N              topics of the partition phase (default 100)
          --partitions N          partitions per topic there (default 100: 10,000 partitions)
          --load-seconds N        time cap of the produce-load phase (default 10)
          --load-mb N             byte cap of the produce-load phase (default 4000)
          --data-gb X             large data set of the recovery phase, in GB (default 5)
          --small-gb X            small data set of the recovery phase, in GB (default 0.5)
          --recovery-partitions N partitions holding the recovery data sets (default 100)
          --segment-mb N          log.segment.bytes of the recovery topic, in MiB (default 4)
          --rounds N              restarts per start-up / recovery figure; medians reported (default 3)
          --skip-partitions       skip the many-partition phase (memory with partitions, start-up times)
          --skip-load             skip the produce-load phase
          --skip-recovery         skip the recovery phase
          --json PATH             also write the results as JSON to PATH
          --cairn PATH            the cairn executable to start (default: `cairn` on PATH, else
                                  src/Cairn.Cli/bin/Release/net10.0/cairn, built first)
          --no-build              do not build src/Cairn.Cli when no cairn is on PATH
        """;

    public int Topics { get; private set; } = 100;
    public int Partitions { get; private set; } = 100;
    public double LoadSeconds { get; private set; } = 10;
    public long LoadMb { get; private set; } = 4000;
    public double DataGb { get; private set; } = 5;
    public double SmallGb { get; private set; } = 0.5;
    public int RecoveryPartitions { get; private set; } = 100;
    public int SegmentMb { get; private set; } = 4;
    public int Rounds { get; private set; } = 3;
    public bool SkipPartitions { get; private set; }
    public bool SkipLoad { get; private set; }
    public bool SkipRecovery { get; private set; }
    public string? Json { get; private set; }
    public string? Cairn { get; private set; }
    public bool NoBuild { get; private set; }
    public bool Help { get; private set; }

    public int TotalPartitions => Topics * Partitions;

    public static FootprintOptions Parse(string[] args)
    {
        var o = new FootprintOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--topics": o.Topics = (int)ParseLong(args[i], Next(), 1, 10_000); break;
                case "--partitions": o.Partitions = (int)ParseLong(args[i], Next(), 1, 10_000); break;
                case "--load-seconds": o.LoadSeconds = ParseLong(args[i], Next(), 1, 600); break;
                case "--load-mb": o.LoadMb = ParseLong(args[i], Next(), 1, 100_000); break;
                case "--data-gb": o.DataGb = ParseDouble(args[i], Next(), 0.01, 100); break;
                case "--small-gb": o.SmallGb = ParseDouble(args[i], Next(), 0.01, 100); break;
                case "--recovery-partitions": o.RecoveryPartitions = (int)ParseLong(args[i], Next(), 1, 10_000); break;
                case "--segment-mb": o.SegmentMb = (int)ParseLong(args[i], Next(), 1, 1024); break;
                case "--rounds": o.Rounds = (int)ParseLong(args[i], Next(), 1, 20); break;
                case "--skip-partitions": o.SkipPartitions = true; break;
                case "--skip-load": o.SkipLoad = true; break;
                case "--skip-recovery": o.SkipRecovery = true; break;
                case "--json": o.Json = Next(); break;
                case "--cairn": o.Cairn = Next(); break;
                case "--no-build": o.NoBuild = true; break;
                case "-h" or "--help": o.Help = true; break;
                default: throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }
        if (o.TotalPartitions > 100_000) throw new ArgumentException($"--topics x --partitions is {o.TotalPartitions}; at most 100000");
        if (o.SmallGb >= o.DataGb) throw new ArgumentException($"--small-gb ({o.SmallGb}) must be below --data-gb ({o.DataGb})");
        return o;
    }

    private static long ParseLong(string name, string value, long min, long max) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v : throw new ArgumentException($"{name} must be an integer in [{min}, {max}], got '{value}'");

    private static double ParseDouble(string name, string value, double min, double max) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v : throw new ArgumentException($"{name} must be a number in [{min}, {max}], got '{value}'");
}
