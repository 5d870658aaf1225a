// OffsetsProbe: drives Cairn.Offsets stores from a separate process, for the tests that need several processes
// or a process killed mid-write. One command per run; progress lines go to stdout, flushed as they happen.
//
//   lock-increment <root> <consumer> <source> <count>   read-modify-write +1, <count> times, under the source's lock
//   lock-commit    <root> <consumer> <prefix> <count>   commit seq:1..count to <prefix>/0..3 and to shared/0..3
//   lock-hold      <root> <consumer> <source>           hold the source's lock file until stdin closes
//   json-commit-loop <file> <source>                    commit seq:N+1, N+2, ... forever, printing "committed N" after each
using Cairn.Offsets;

var output = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
try
{
    switch (args.ElementAtOrDefault(0))
    {
        case "lock-increment":
        {
            await using var store = await LockFileOffsetStore.OpenAsync(args[1], args[2],
                new LockFileOffsetStoreOptions { LockTimeout = TimeSpan.FromSeconds(60) });
            int count = int.Parse(args[4]);
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
            int count = int.Parse(args[4]);
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
            Console.Error.WriteLine("usage: OffsetsProbe lock-increment|lock-commit|lock-hold|json-commit-loop ...");
            return 2;
    }
}
catch (Exception ex)
{
    Console.Error.WriteLine(ex);
    return 1;
}
