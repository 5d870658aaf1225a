// OffsetsProbe: drives Cairn.Offsets stores from a separate process, for the tests that need several processes
// or a process killed mid-write. One command per run; progress lines go to stdout, flushed as they happen.
//
//   lock-increment <root> <consumer> <source> <count>   read-modify-write +1, <count> times, under the source's lock
//   lock-commit    <root> <consumer> <prefix> <count>   commit seq:1..count to <prefix>/0..3 and to shared/0..3
//   lock-hold      <root> <consumer> <source>           hold the source's lock file until stdin closes
//   json-commit-loop <file> <source>                    commit seq:N+1, N+2, ... forever, printing "committed N" after each
//
// Exit codes: 0 done, 2 usage error (one line naming it, then the usage line), 1 any other failure.
using System.Globalization;
using Cairn.Offsets;

const string usage = "usage: OffsetsProbe lock-increment|lock-commit ROOT CONSUMER SOURCE|PREFIX COUNT | lock-hold ROOT CONSUMER SOURCE | json-commit-loop FILE SOURCE";
var arity = new Dictionary<string, int> { ["lock-increment"] = 4, ["lock-commit"] = 4, ["lock-hold"] = 3, ["json-commit-loop"] = 2 };
var command = args.ElementAtOrDefault(0);
string? usageError =
    command is null ? "no command given"
    : !arity.TryGetValue(command, out var expected) ? $"unknown command '{command}'"
    : args.Length - 1 != expected ? $"{command} takes {expected} arguments, got {args.Length - 1}"
    : command is "lock-increment" or "lock-commit" && !int.TryParse(args[4], NumberStyles.None, CultureInfo.InvariantCulture, out _)
        ? $"{command}: COUNT must be a whole number, got '{args[4]}'"
    : null;
if (usageError is not null)
{
    Console.Error.WriteLine($"OffsetsProbe: {usageError}");
    Console.Error.WriteLine(usage);
    return 2;
}

var output = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
try
{
    switch (command)
    {
        case "lock-increment":
        {
            await using var store = await LockFileOffsetStore.OpenAsync(args[1], args[2],
                new LockFileOffsetStoreOptions { LockTimeout = TimeSpan.FromSeconds(60) });
            int count = int.Parse(args[4], CultureInfo.InvariantCulture);
            output.WriteLine("ready");
            for (int i = 0; i < count; i++)
                await store.UpdateAsync(args[3], current => Offset.Sequence((current?.SequenceValue ?? 0) + 1));
            output.WriteLine("done");
            return 0;
        }
        case "lock-commit":
        {
            await using var store = await LockFileOffsetStore.OpenAsync(args[1], args[2],
                new LockFileOffsetStoreOptions { LockTimeout = TimeSpan.FromSeconds(60) });
            int count = int.Parse(args[4], CultureInfo.InvariantCulture);
            output.WriteLine("ready");
            for (int i = 1; i <= count; i++)
            {
                await store.CommitAsync($"{args[3]}/{i % 4}", Offset.Sequence(i));
                await store.CommitAsync($"shared/{i % 4}", Offset.Sequence(i));
            }
            output.WriteLine("done");
            return 0;
        }
        case "lock-hold":
        {
            var store = new LockFileOffsetStore(args[1], args[2]);
            Directory.CreateDirectory(store.DirectoryPath);
            using var held = new FileStream(store.GetLockFilePath(args[3]), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            output.WriteLine("locked");
            await Console.In.ReadToEndAsync();
            return 0;
        }
        case "json-commit-loop":
        {
            await using var store = await JsonFileOffsetStore.OpenAsync(args[1]);
            long next = ((await store.GetAsync(args[2]))?.SequenceValue ?? 0) + 1;
            output.WriteLine($"start {next}");
            while (true)
            {
                await store.CommitAsync(args[2], Offset.Sequence(next));
                output.WriteLine($"committed {next}");
                next++;
            }
        }
        default:
            throw new InvalidOperationException($"command '{command}' passed the usage check but has no case");
    }
}
catch (Exception ex)
{
    // A helper for tests: the whole exception (type and stack) is what a failing test needs to see.
    Console.Error.WriteLine(ex);
    return 1;
}
