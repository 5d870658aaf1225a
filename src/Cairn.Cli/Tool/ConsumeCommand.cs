using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Client;
using Cairn.Offsets;
using Cairn.Protocol;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn consume TOPIC</c>: print records, kcat style.</summary>
internal static class ConsumeCommand
{
    /// <summary>Where to start: an Offset for the consumer, or N records before the end.</summary>
    private sealed record StartSpec(Offset? Offset, long? BeforeEnd)
    {
        public override string ToString() => BeforeEnd is { } n ? $"{n} before the end" : Offset!.Value.ToString();
    }

    public static Command Create()
    {
        var topic = new Argument<string>("topic") { Description = "The topic to read" };
        var from = new Option<string?>("--from", "-o")
        {
            Description = "Where to start: earliest (default), latest, an offset N, -N (N records before the end), an ISO-8601 date-time " +
                          "(2026-11-20T10:00:00Z) or @MS / s@MS (a timestamp in ms). With --group it applies only to partitions without a committed offset",
            HelpName = "where",
        };
        var partitions = new Option<int[]>("--partition", "-p") { Description = "Read only these partitions (repeatable; default: all)", AllowMultipleArgumentsPerToken = false };
        var count = new Option<long?>("--count", "-c") { Description = "Exit after N records" };
        var exitAtEnd = new Option<bool>("--exit-at-end", "-e") { Description = "Exit once every partition has been read to its end" };
        var format = new Option<string?>("--format", "-f") { Description = "Output format (text output): " + RecordFormat.Help + ". Default: \"%v\\n\"", HelpName = "fmt" };
        var group = new Option<string?>("--group", "-g")
        {
            Description = "Start from this group's committed offsets and commit the positions reached when done. cairn does not join the group: " +
                          "the commit is accepted only while the group has no active members",
        };
        var isolation = new Option<string>("--isolation") { Description = "read_uncommitted or read_committed", DefaultValueFactory = _ => "read_uncommitted" };
        isolation.AcceptOnlyFromAmong("read_uncommitted", "read_committed");

        var command = new Command("consume", "Print records of a topic (kcat-style --format, or JSON lines with --output json) until Ctrl-C, --count or --exit-at-end")
        { topic, from, partitions, count, exitAtEnd, format, group, isolation };
        CommonOptions.AddTo(command);
        command.SetToolAction("consume", async ctx =>
        {
            var name = ctx.Get(topic);
            var start = ParseStart(ctx.Get(from));
            long? max = ctx.Get(count);
            if (max is < 1) throw new UsageException("--count must be at least 1");
            var groupId = ctx.Get(group);
            if (groupId is { Length: 0 }) throw new UsageException("--group must not be empty");
            bool json = ctx.OutputRequested == OutputFormat.Json;
            if (json && ctx.Get(format) is not null) throw new UsageException("--format applies to text output, not --output json");
            var recordFormat = RecordFormat.Parse(ctx.Get(format) ?? "%v\\n");

            var existing = await ctx.Admin.ListTopicsAsync(true, ctx.CancellationToken);
            var info = existing.FirstOrDefault(t => t.Name == name) ?? throw new ToolException($"topic '{name}' does not exist");
            var wanted = ctx.Get(partitions) is { Length: > 0 } ps ? ps.Distinct().Order().ToList() : Enumerable.Range(0, info.PartitionCount).ToList();
            foreach (var p in wanted)
                if (p < 0 || p >= info.PartitionCount) throw new ToolException($"topic '{name}' has {info.PartitionCount} partition(s); there is no partition {p}");
            var assignment = wanted.Select(p => new TopicPartition(name, p)).ToList();

            IReadOnlyDictionary<TopicPartition, OffsetAndMetadata> committed = new Dictionary<TopicPartition, OffsetAndMetadata>();
            if (groupId is not null)
            {
                var described = (await ctx.Admin.DescribeGroupsAsync([groupId], ctx.CancellationToken))[0];
                if (described.Members.Count > 0)
                    throw new ToolException($"group '{groupId}' has {described.Members.Count} active member(s) (state {described.State}): " +
                        "cairn consume --group does not join the group, it commits from outside it, which the coordinator accepts only while the group " +
                        "has no members; stop its consumers, or consume without --group");
                committed = await ctx.Admin.FetchCommittedOffsetsAsync(groupId, assignment, ctx.CancellationToken);
            }

            var consumerOptions = new ConsumerOptions
            {
                EnablePartitionEof = true,
                AutoOffsetReset = start.Offset is { Kind: OffsetKind.Latest } ? AutoOffsetReset.Latest : AutoOffsetReset.Earliest,
                IsolationLevel = ctx.Get(isolation) == "read_committed" ? IsolationLevel.ReadCommitted : IsolationLevel.ReadUncommitted,
            };
            await using var consumer = new KafkaConsumer(ctx.ClientOptions, consumerOptions);
            consumer.Assign(assignment);
            foreach (var tp in assignment)
            {
                if (committed.TryGetValue(tp, out var c)) await consumer.SeekAsync(tp, Offset.Sequence(c.Offset), ctx.CancellationToken);
                else if (start.BeforeEnd is { } n)
                {
                    var marks = await consumer.QueryWatermarkOffsetsAsync(tp, ctx.CancellationToken);
                    await consumer.SeekAsync(tp, Offset.Sequence(Math.Max(marks.Low, marks.High - n)), ctx.CancellationToken);
                }
                else await consumer.SeekAsync(tp, start.Offset!.Value, ctx.CancellationToken);
            }
            var startPositions = assignment.ToDictionary(tp => tp, tp => consumer.Position(tp));

            var stdout = new BufferedStream(Console.OpenStandardOutput(), 64 * 1024);
            long consumed = 0;
            var atEnd = new HashSet<TopicPartition>();
            var lastFlush = Stopwatch.StartNew();
            bool interrupted = false;
            try
            {
                while (max is null || consumed < max)
                {
                    ConsumeResult? r;
                    try
                    {
                        r = await consumer.ConsumeAsync(TimeSpan.FromMilliseconds(250), ctx.CancellationToken);
                    }
                    catch (OperationCanceledException) when (ctx.CancellationToken.IsCancellationRequested)
                    {
                        interrupted = true;
                        break;
                    }
                    if (r is null)
                    {
                        await stdout.FlushAsync(CancellationToken.None);
                        lastFlush.Restart();
                        continue;
                    }
                    if (r.IsPartitionEof)
                    {
                        atEnd.Add(r.TopicPartition);
                        if (ctx.Get(exitAtEnd) && atEnd.Count == assignment.Count) break;
                        continue;
                    }
                    consumed++;
                    if (json) WriteJson(stdout, r);
                    else recordFormat.Write(stdout, r);
                    if (lastFlush.ElapsedMilliseconds >= 100)
                    {
                        await stdout.FlushAsync(CancellationToken.None);
                        lastFlush.Restart();
                    }
                }
            }
            finally
            {
                try { await stdout.FlushAsync(CancellationToken.None); }
                catch (IOException) { /* the reader went away (head, a closed pipe) */ }
            }

            if (groupId is not null)
            {
                var positions = new Dictionary<TopicPartition, OffsetAndMetadata>();
                foreach (var tp in assignment)
                    if (consumer.Position(tp) is { } position && (position != startPositions[tp] || !committed.ContainsKey(tp)))
                        positions[tp] = new OffsetAndMetadata(position, "cairn consume");
                if (positions.Count > 0)
                {
                    // Committed even after Ctrl-C, with a bound of its own.
                    using var commitTimeout = new CancellationTokenSource(ctx.RequestTimeout);
                    try
                    {
                        await ctx.Admin.CommitGroupOffsetsAsync(groupId, positions, commitTimeout.Token);
                    }
                    catch (KafkaException e) when (e.Error is ErrorCode.UnknownMemberId or ErrorCode.IllegalGeneration or ErrorCode.RebalanceInProgress)
                    {
                        throw new ToolException($"consumed {consumed} record(s) but could not commit for group '{groupId}': a member joined the group meanwhile, " +
                            "and the coordinator accepts commits from outside the group only while it has no members");
                    }
                    if (ctx.Verbose || !Console.IsErrorRedirected)
                        Console.Error.WriteLine($"Committed for group {groupId}: " + string.Join(", ", positions.OrderBy(p => p.Key).Select(p => $"{p.Key.Topic}:{p.Key.Partition}={p.Value.Offset}")));
                }
            }
            _ = interrupted; // Ctrl-C ends a consume normally (after the commit with --group)
            return ExitCodes.Ok;
        });
        return command;
    }

    private static StartSpec ParseStart(string? text)
    {
        var t = text?.Trim();
        if (string.IsNullOrEmpty(t) || t is "earliest" or "beginning" or "start") return new(Offset.Earliest, null);
        if (t is "latest" or "end") return new(Offset.Latest, null);
        if (t.StartsWith('@') || t.StartsWith("s@", StringComparison.Ordinal))
        {
            if (!long.TryParse(t.AsSpan(t.IndexOf('@') + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
                throw new UsageException($"--from @MS needs milliseconds since the epoch, got '{t}'");
            return new(Offset.Timestamp(DateTimeOffset.FromUnixTimeMilliseconds(ms)), null);
        }
        if (t.StartsWith('-') && long.TryParse(t.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var before))
            return new(null, before);
        if (long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var offset)) return new(Offset.Sequence(offset), null);
        try
        {
            return new(Offset.Timestamp(Broker.Admin.OffsetResetSpec.ParseDatetime(t)), null);
        }
        catch (FormatException)
        {
            throw new UsageException($"--from: '{t}' is not earliest, latest, an offset, -N, an ISO-8601 date-time or @MS");
        }
    }

    private static void WriteJson(Stream output, ConsumeResult r)
    {
        using (var w = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("topic", r.Topic);
            w.WriteNumber("partition", r.Partition);
            w.WriteNumber("offset", r.Offset);
            w.WriteNumber("timestamp", r.Timestamp.ToUnixTimeMilliseconds());
            w.WriteString("timestampType", r.TimestampType.ToString());
            if (r.Key is { } k) w.WriteString("key", Encoding.UTF8.GetString(k.Span)); else w.WriteNull("key");
            if (r.Value is { } v) w.WriteString("value", Encoding.UTF8.GetString(v.Span)); else w.WriteNull("value");
            w.WriteStartArray("headers");
            foreach (var h in r.Headers)
            {
                w.WriteStartObject();
                w.WriteString("key", h.Key);
                if (h.Value is { } hv) w.WriteString("value", Encoding.UTF8.GetString(hv.Span)); else w.WriteNull("value");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteByte((byte)'\n');
    }
}
