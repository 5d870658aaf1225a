using SharpFuzz;

namespace Cairn.Fuzz;

/// <summary>
/// Entry point of the fuzz targets: <c>Cairn.Fuzz request|records</c> under afl-fuzz (SharpFuzz's forkserver protocol),
/// or <c>Cairn.Fuzz request|records FILE...</c> to replay inputs (a crash afl-fuzz saved, a corpus) in-process, which
/// prints the exception a crashing input raises; <c>Cairn.Fuzz seeds</c> builds the seed corpus (<see cref="Seeds"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["seeds", var framesDir, var corpusDir]) return Seeds.Write(framesDir, corpusDir);
        if (args.Length == 0 || Target(args[0]) is not { } target)
        {
            Console.Error.WriteLine("usage: Cairn.Fuzz request|records [FILE...]   (no FILE: run under afl-fuzz)\n       Cairn.Fuzz seeds FRAMES-DIR CORPUS-DIR");
            return 2;
        }
        if (args.Length == 1)
        {
            // afl-fuzz feeds one input per iteration through stdin; SharpFuzz reports the coverage of the instrumented assemblies.
            Fuzzer.OutOfProcess.Run(stream =>
            {
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                target(copy.GetBuffer().AsSpan(0, (int)copy.Length));
            });
            return 0;
        }
        int failures = 0;
        foreach (var path in args[1..].SelectMany(Inputs))
        {
            try
            {
                target(File.ReadAllBytes(path));
            }
            catch (Exception e)
            {
                failures++;
                Console.WriteLine($"{path}: {e}");
            }
        }
        Console.WriteLine($"{failures} failing input(s)");
        return failures == 0 ? 0 : 1;
    }

    private delegate void FuzzTarget(ReadOnlySpan<byte> input);

    private static FuzzTarget? Target(string name) => name switch
    {
        "request" => RequestTarget.Run,
        "records" => RecordsTarget.Run,
        _ => null,
    };

    private static IEnumerable<string> Inputs(string path) =>
        Directory.Exists(path) ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order() : [path];
}
