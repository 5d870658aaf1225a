using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Cairn.Client;
using Cairn.Protocol;
using Cairn.Protocol.Records;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn produce TOPIC</c>: one record per line of stdin (or per delimiter, kcat -D).</summary>
internal static class ProduceCommand
{
    public static Command Create()
    {
        var topic = new Argument<string>("topic") { Description = "The topic to write to; a broker that auto-creates topics creates it (as with kcat)" };
        var keySeparator = new Option<string?>("--key-separator", "-K")
        {
            Description = "Split each record at the first SEP into key and value (-K: or -K : or --key-separator=:); a record without SEP has a null key",
            HelpName = "sep",
        }.AllowGluedValue();
        var fixedKey = new Option<string?>("--key", "-k") { Description = "Use this key for every record", HelpName = "key" }.AllowGluedValue();
        var delimiter = new Option<string?>("--delimiter", "-D")
        {
            Description = "Records are separated by DELIM instead of newlines (escapes " + Escapes.Help + ", e.g. -D '\\0' or -D ';')",
            HelpName = "delim",
        }.AllowGluedValue();
        var nullEmpty = new Option<bool>("--null-empty", "-Z") { Description = "Send an empty value (or key) as null: 'k1:' with -K: is a tombstone for k1" };
        var headers = new Option<string[]>("--header", "-H") { Description = "A header NAME=VALUE added to every record (repeatable)", AllowMultipleArgumentsPerToken = false }.AllowGluedValue();
        var partition = new Option<int?>("--partition", "-p") { Description = "Write every record to this partition (default: by key hash; records without a key go to a sticky partition)" };
        var timestamp = new Option<string?>("--timestamp")
        {
            Description = "The CreateTime of every record: milliseconds since the epoch or an ISO-8601 date-time (default: now)",
            HelpName = "ms|iso",
        };
        var compression = new Option<string>("--compression", "-z") { Description = "Batch compression", HelpName = "none|gzip|snappy|lz4|zstd", DefaultValueFactory = _ => "none" };
        compression.AcceptOnlyFromAmong("none", "gzip", "snappy", "lz4", "zstd");
        var acks = new Option<string>("--acks") { Description = "Acknowledgement the broker gives: all, 1 (the leader) or 0 (none)", HelpName = "all|1|0", DefaultValueFactory = _ => "all" };
        acks.AcceptOnlyFromAmong("all", "-1", "1", "0");
        var lingerMs = new Option<int>("--linger-ms") { Description = "Wait up to this long for more records per batch", DefaultValueFactory = _ => 5 };
        var keepEmpty = new Option<bool>("--keep-empty-lines") { Description = "Produce empty records (empty lines) with an empty value (by default they are skipped)" };
        var report = new Option<bool>("--delivery-report", "-v") { Description = "Print where each record landed on stderr: delivered TOPIC [PARTITION] at offset N" };
        var file = new Option<FileInfo?>("--file", "-f") { Description = "Read records from this file instead of stdin" };

        var command = new Command("produce", "Write records to a topic, one per line of stdin (e.g. printf 'user1:login\\n' | cairn produce events -K: -H source=cli)")
        { topic, keySeparator, fixedKey, delimiter, nullEmpty, headers, partition, timestamp, compression, acks, lingerMs, keepEmpty, report, file };
        CommonOptions.AddTo(command);
        command.SetToolAction("produce", async ctx =>
        {
            var name = ctx.Get(topic);
            byte[]? sep = ctx.Get(keySeparator) is { } sepText ? Escapes.Unescape(sepText) : null;
            if (sep is { Length: 0 }) throw new UsageException("--key-separator must not be empty");
            byte[]? key = ctx.Get(fixedKey) is { } keyText ? Encoding.UTF8.GetBytes(keyText) : null;
            if (key is not null && sep is not null) throw new UsageException("--key and --key-separator cannot be used together");
            byte[] recordDelimiter = ctx.Get(delimiter) is { } delimText ? Escapes.Unescape(delimText) : [(byte)'\n'];
            if (recordDelimiter.Length == 0) throw new UsageException("--delimiter must not be empty");
            bool nullForEmpty = ctx.Get(nullEmpty);
            DateTimeOffset? fixedTimestamp = ctx.Get(timestamp) is { } ts ? CliValues.ParseTimestamp(ts, "--timestamp") : null;
            var headerList = KeyValues.Parse(ctx.Get(headers) ?? [], "--header")
                .Select(kv => new RecordHeader(kv.Key, Encoding.UTF8.GetBytes(kv.Value))).ToList();
            int? explicitPartition = ctx.Get(partition);
            if (explicitPartition is < 0) throw new UsageException("--partition must not be negative");
            if (ctx.Get(lingerMs) < 0) throw new UsageException("--linger-ms must not be negative");
            bool deliveryReport = ctx.Get(report);
            // Flags given on the command line beat -X and --command-config (acks, compression.type, linger.ms, ...).
            var options = ClientPropertyMapping.Producer(ctx.TryGetProperty, new ProduceFlags(
                Compression: ctx.IsExplicit(compression) ? ctx.Get(compression) : null,
                Acks: ctx.IsExplicit(acks) ? ctx.Get(acks) : null,
                LingerMs: ctx.IsExplicit(lingerMs) ? ctx.Get(lingerMs) : null), new ProducerOptions
            {
                Compression = CompressionCodec.None,
                Acks = Acks.All,
                Linger = TimeSpan.FromMilliseconds(ctx.Get(lingerMs)),
                DeliveryTimeout = TimeSpan.FromSeconds(Math.Max(30, ctx.RequestTimeout.TotalSeconds * 2)),
            });

            var fileInfo = ctx.Get(file);
            await using var input = fileInfo is not null ? OpenFile(fileInfo) : Console.OpenStandardInput();
            var reader = new DelimitedReader(input, recordDelimiter, trimCarriageReturn: ctx.Get(delimiter) is null);
            // The producer asks for metadata with auto-creation allowed, like kcat: a broker with
            // auto.create.topics.enable creates a missing topic; otherwise the first record fails (see below).
            await using var producer = new KafkaProducer(ctx.ClientOptions, options);

            long count = 0, skipped = 0;
            var perPartition = new SortedDictionary<int, (long First, long Last, long Count)>();
            var pending = new Queue<Task<DeliveryResult>>();
            async Task Complete(Task<DeliveryResult> delivery)
            {
                DeliveryResult r;
                try
                {
                    r = await delivery;
                }
                catch (KafkaException e) when (e.Error == ErrorCode.UnknownTopicOrPartition && e.TopicPartition is null)
                {
                    throw new ToolException($"topic '{name}' does not exist and the broker did not create it (auto.create.topics.enable is off?); " +
                        $"create it with 'cairn topics create {name}'");
                }
                perPartition[r.Partition] = perPartition.TryGetValue(r.Partition, out var v)
                    ? (Math.Min(v.First, r.Offset), Math.Max(v.Last, r.Offset), v.Count + 1)
                    : (r.Offset, r.Offset, 1);
                if (deliveryReport)
                    Console.Error.WriteLine(options.Acks == Acks.None
                        ? $"delivered {r.Topic} [{r.Partition.ToString(CultureInfo.InvariantCulture)}] (acks 0: offset unknown)"
                        : $"delivered {r.Topic} [{r.Partition.ToString(CultureInfo.InvariantCulture)}] at offset {r.Offset.ToString(CultureInfo.InvariantCulture)}");
            }

            // A spinner only when records come from a pipe or a file: it would get in the way of someone typing them.
            bool typed = fileInfo is null && !Console.IsInputRedirected;
            Func<string, Func<Action<string>, Task<int>>, Task<int>> progress = typed || deliveryReport ? (_, work) => work(_ => { }) : ctx.ProgressAsync;
            await progress($"Producing to {name}", async status =>
            {
                while (await reader.ReadAsync(ctx.CancellationToken) is { } record)
                {
                    if (record.Length == 0 && !ctx.Get(keepEmpty)) { skipped++; continue; }
                    byte[]? recordKey = key, value = record;
                    if (sep is not null)
                    {
                        int at = record.AsSpan().IndexOf(sep);
                        if (at >= 0) { recordKey = record[..at]; value = record[(at + sep.Length)..]; }
                    }
                    if (nullForEmpty)
                    {
                        if (recordKey is { Length: 0 }) recordKey = null;
                        if (value is { Length: 0 }) value = null;
                    }
                    var message = Message.FromBytes(recordKey, value, headerList.Count > 0 ? headerList : null, fixedTimestamp);
                    pending.Enqueue(explicitPartition is { } p
                        ? producer.ProduceAsync(new TopicPartition(name, p), message, ctx.CancellationToken)
                        : producer.ProduceAsync(name, message, ctx.CancellationToken));
                    count++;
                    // A window of records in flight; the producer batches them.
                    while (pending.Count >= 10_000 || (pending.Count > 0 && pending.Peek().IsCompleted)) await Complete(pending.Dequeue());
                    if (count % 1000 == 0) status($"Producing to {name}: {count} records");
                }
                await producer.FlushAsync(ctx.CancellationToken);
                while (pending.Count > 0) await Complete(pending.Dequeue());
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
                    (skipped > 0 ? $"; skipped {skipped} empty {(ctx.Get(delimiter) is null ? "line" : "record")}{(skipped == 1 ? "" : "s")}" : "") + ".");
            }
            return 0;
        });
        return command;
    }

    /// <summary>Opens the --file, turning the usual failures into one line.</summary>
    private static FileStream OpenFile(FileInfo file)
    {
        try
        {
            return new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 64 * 1024, useAsync: true);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ToolException($"cannot read --file {file}: no such file");
        }
        catch (UnauthorizedAccessException)
        {
            throw new ToolException($"cannot read --file {file}: permission denied (or it is a directory)");
        }
        catch (IOException e)
        {
            throw new ToolException($"cannot read --file {file}: {e.Message}");
        }
    }
}
