using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using Cairn.Client;
using Cairn.Protocol.Records;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn produce TOPIC</c>: one record per line of stdin.</summary>
internal static class ProduceCommand
{
    public static Command Create()
    {
        var topic = new Argument<string>("topic") { Description = "The topic to write to" };
        var keySeparator = new Option<string?>("--key-separator", "-K")
        {
            Description = "Split each line at the first SEP into key and value; a line without SEP has a null key (without this option every key is null)",
            HelpName = "sep",
        };
        var headers = new Option<string[]>("--header", "-H") { Description = "A header NAME=VALUE added to every record (repeatable)", AllowMultipleArgumentsPerToken = false };
        var partition = new Option<int?>("--partition", "-p") { Description = "Write every record to this partition (default: by key hash; records without a key go to a sticky partition)" };
        var compression = new Option<string>("--compression", "-z") { Description = "Batch compression", HelpName = "none|gzip|snappy|lz4|zstd", DefaultValueFactory = _ => "none" };
        compression.AcceptOnlyFromAmong("none", "gzip", "snappy", "lz4", "zstd");
        var acks = new Option<string>("--acks") { Description = "Acknowledgement the broker gives: all, 1 (the leader) or 0 (none)", HelpName = "all|1|0", DefaultValueFactory = _ => "all" };
        acks.AcceptOnlyFromAmong("all", "-1", "1", "0");
        var lingerMs = new Option<int>("--linger-ms") { Description = "Wait up to this long for more records per batch", DefaultValueFactory = _ => 5 };
        var keepEmpty = new Option<bool>("--keep-empty-lines") { Description = "Produce empty lines as records with an empty value (by default they are skipped)" };
        var file = new Option<FileInfo?>("--file", "-f") { Description = "Read lines from this file instead of stdin" };

        var command = new Command("produce", "Write records to a topic, one per line of stdin (e.g. printf 'user1:login\\n' | cairn produce events -K : -H source=cli)")
        { topic, keySeparator, headers, partition, compression, acks, lingerMs, keepEmpty, file };
        CommonOptions.AddTo(command);
        command.SetToolAction("produce", async ctx =>
        {
            var name = ctx.Get(topic);
            var sep = ctx.Get(keySeparator);
            if (sep is { Length: 0 }) throw new UsageException("--key-separator must not be empty");
            var headerList = KeyValues.Parse(ctx.Get(headers) ?? [], "--header")
                .Select(kv => new RecordHeader(kv.Key, Encoding.UTF8.GetBytes(kv.Value))).ToList();
            int? explicitPartition = ctx.Get(partition);
            if (explicitPartition is < 0) throw new UsageException("--partition must not be negative");
            if (ctx.Get(lingerMs) < 0) throw new UsageException("--linger-ms must not be negative");
            var options = new ProducerOptions
            {
                Compression = ctx.Get(compression) switch
                {
                    "gzip" => CompressionCodec.Gzip,
                    "snappy" => CompressionCodec.Snappy,
                    "lz4" => CompressionCodec.Lz4,
                    "zstd" => CompressionCodec.Zstd,
                    _ => CompressionCodec.None,
                },
                Acks = ctx.Get(acks) switch { "0" => Acks.None, "1" => Acks.Leader, _ => Acks.All },
                Linger = TimeSpan.FromMilliseconds(ctx.Get(lingerMs)),
                DeliveryTimeout = TimeSpan.FromSeconds(Math.Max(30, ctx.RequestTimeout.TotalSeconds * 2)),
            };

            // The topic must exist: producing must not create topics by accident (brokers may auto-create on metadata).
            var existing = await ctx.Admin.ListTopicsAsync(true, ctx.CancellationToken);
            var info = existing.FirstOrDefault(t => t.Name == name) ?? throw new ToolException($"topic '{name}' does not exist (create it with 'cairn topics create {name}')");
            if (explicitPartition is { } ep && ep >= info.PartitionCount)
                throw new ToolException($"topic '{name}' has {info.PartitionCount} partition(s); there is no partition {ep}");

            var fileInfo = ctx.Get(file);
            using var reader = fileInfo is not null
                ? new StreamReader(fileInfo.FullName, new UTF8Encoding(false))
                : new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
            await using var producer = new KafkaProducer(ctx.ClientOptions, options);

            long count = 0, skipped = 0;
            var perPartition = new SortedDictionary<int, (long First, long Last, long Count)>();
            var pending = new Queue<Task<DeliveryResult>>();
            void Record(DeliveryResult r)
            {
                perPartition[r.Partition] = perPartition.TryGetValue(r.Partition, out var v)
                    ? (Math.Min(v.First, r.Offset), Math.Max(v.Last, r.Offset), v.Count + 1)
                    : (r.Offset, r.Offset, 1);
            }

            // A spinner only when lines come from a pipe or a file: it would get in the way of someone typing them.
            bool typed = fileInfo is null && !Console.IsInputRedirected;
            Func<string, Func<Action<string>, Task<int>>, Task<int>> progress = typed ? (_, work) => work(_ => { }) : ctx.ProgressAsync;
            await progress($"Producing to {name}", async status =>
            {
                string? line;
                while ((line = await reader.ReadLineAsync(ctx.CancellationToken)) is not null)
                {
                    if (line.Length == 0 && !ctx.Get(keepEmpty)) { skipped++; continue; }
                    string? key = null, value = line;
                    if (sep is not null)
                    {
                        int at = line.IndexOf(sep, StringComparison.Ordinal);
                        if (at >= 0) { key = line[..at]; value = line[(at + sep.Length)..]; }
                    }
                    var message = Message.FromStrings(key, value, headerList.Count > 0 ? headerList : null);
                    pending.Enqueue(explicitPartition is { } p
                        ? producer.ProduceAsync(new TopicPartition(name, p), message, ctx.CancellationToken)
                        : producer.ProduceAsync(name, message, ctx.CancellationToken));
                    count++;
                    // A window of records in flight; the producer batches them.
                    while (pending.Count >= 10_000 || (pending.Count > 0 && pending.Peek().IsCompleted)) Record(await pending.Dequeue());
                    if (count % 1000 == 0) status($"Producing to {name}: {count} records");
                }
                await producer.FlushAsync(ctx.CancellationToken);
                while (pending.Count > 0) Record(await pending.Dequeue());
                return 0;
            });

            if (ctx.Json)
            {
                Terminal.WriteJson(new JsonObject
                {
                    ["topic"] = name,
                    ["records"] = count,
                    ["skippedEmptyLines"] = skipped,
                    ["partitions"] = new JsonArray(perPartition.Select(kv => (JsonNode)new JsonObject
                    {
                        ["partition"] = kv.Key, ["records"] = kv.Value.Count, ["firstOffset"] = kv.Value.First, ["lastOffset"] = kv.Value.Last,
                    }).ToArray()),
                });
            }
            else
            {
                var where = string.Join(", ", perPartition.Select(kv => options.Acks == Acks.None
                    ? $"partition {kv.Key}"
                    : $"partition {kv.Key} offsets {kv.Value.First}..{kv.Value.Last}"));
                Console.Error.WriteLine($"Produced {count} record{(count == 1 ? "" : "s")} to {name}{(where.Length > 0 ? $" ({where})" : "")}" +
                    (skipped > 0 ? $"; skipped {skipped} empty line{(skipped == 1 ? "" : "s")}" : "") + ".");
            }
            return 0;
        });
        return command;
    }
}
