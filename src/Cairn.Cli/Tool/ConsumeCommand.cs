using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cairn.Client;
using Cairn.Offsets;
using Cairn.Protocol;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn consume TOPIC...</c>: print records, kcat style.</summary>
internal static class ConsumeCommand
{
    /// <summary>
    /// Where to start: an Offset for the consumer, or N records before the end; with <paramref name="NoReset"/>
    /// (auto.offset.reset=none) nowhere, so a partition without a committed offset is an error.
    /// </summary>
    private sealed record StartSpec(Offset? Offset, long? BeforeEnd, bool NoReset = false)
    {
        public static readonly StartSpec None = new(null, null, NoReset: true);

        public override string ToString() => NoReset ? "none" : BeforeEnd is { } n ? $"{n} before the end" : Offset!.Value.ToString();
    }

    /// <summary>Where each partition stops (--until): before offset N, or at the first record at or after a time.</summary>
    internal sealed record UntilSpec(long? Offset, DateTimeOffset? Time)
    {
        public static UntilSpec? Parse(string? text)
        {
            var t = text?.Trim();
            if (string.IsNullOrEmpty(t)) return null;
            if (t.All(char.IsAsciiDigit))
                return long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var offset)
                    ? new UntilSpec(offset, null)
                    : throw new UsageException($"--until: offset {t} is out of range");
            try
            {
                return new UntilSpec(null, CliValues.ParseTimestamp(t, "--until"));
            }
            catch (UsageException)
            {
                throw new UsageException($"--until: '{t}' is not an offset, an ISO-8601 date-time (2026-11-20T10:00:00Z) or @MS (milliseconds since the epoch)");
            }
        }

        /// <summary>True when <paramref name="r"/> is past the stop: it is not printed and its partition is done.</summary>
        public bool IsBeyond(ConsumeResult r) => r.Offset >= Offset || r.Timestamp >= Time;

        /// <summary>True when nothing after <paramref name="r"/> (printed) can be before the stop.</summary>
        public bool EndsAfter(ConsumeResult r) => r.Offset + 1 >= Offset;

        /// <summary>
        /// True when a partition whose end is <paramref name="logEnd"/> is done: the offset is reached, or the time is
        /// past, so records still to come (stamped now) would be after it.
        /// </summary>
        public bool DoneAtEnd(long logEnd, DateTimeOffset now) => logEnd >= Offset || Time <= now;
    }

    public static Command Create()
    {
        var topics = new Argument<string[]>("topic")
        {
            Description = "The topics to read (one or more; a name starting with ^ is a regular expression, as with --pattern)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var pattern = new Option<string?>("--pattern")
        {
            Description = "Also read every topic whose whole name matches this regular expression (resolved at start; internal topics only when named)",
            HelpName = "regex",
        };
        var from = new Option<string?>("--from", "-o")
        {
            Description = "Where to start: earliest (default, unless -X auto.offset.reset=latest), latest, an offset N, -N (N records before the end), " +
                          "an ISO-8601 date-time (2026-11-20T10:00:00Z) or @MS / s@MS (a timestamp in ms). With --group it applies only to partitions without a committed offset",
            HelpName = "where",
        };
        var until = new Option<string?>("--until")
        {
            Description = "Where each partition stops: before offset N, or at the first record at or after a time (ISO-8601 or @MS); " +
                          "exit once every partition has stopped",
            HelpName = "offset|time",
        };
        var partitions = new Option<int[]>("--partition", "-p") { Description = "Read only these partitions of each topic (repeatable; default: all)", AllowMultipleArgumentsPerToken = false };
        var count = new Option<long?>("--count", "-c") { Description = "Exit after N records" };
        var exitAtEnd = new Option<bool>("--exit-at-end", "-e") { Description = "Exit once every partition has been read to its end" };
        var idleTimeout = new Option<string?>("--idle-timeout")
        {
            Description = "Exit when no record has arrived for this long (500ms, 5s, 2m, PT1M)",
            HelpName = "duration",
        };
        var format = new Option<string?>("--format", "-f") { Description = "Output format (text output): " + RecordFormat.Help + ". Default: \"%v\\n\"", HelpName = "fmt" };
        var keyFormat = new Option<string?>("--key-format") { Description = "How keys are printed (in --format and --output json): text (as they are), hex or base64", HelpName = "text|hex|base64" };
        var valueFormat = new Option<string?>("--value-format") { Description = "How values are printed (in --format and --output json): text (as they are), hex or base64", HelpName = "text|hex|base64" };
        var group = new Option<string?>("--group", "-g")
        {
            Description = "Start from this group's committed offsets and commit the positions reached when done (not with -X enable.auto.commit=false; " +
                          "-X group.id=G is the same as --group G). cairn does not join the group: the commit is accepted only while the group has no active members",
        };
        var isolation = new Option<string>("--isolation") { Description = "read_uncommitted or read_committed (default: -X isolation.level, else read_uncommitted)", DefaultValueFactory = _ => "read_uncommitted" };
        isolation.AcceptOnlyFromAmong("read_uncommitted", "read_committed");

        var command = new Command("consume",
            "Print records of topics (kcat-style --format, or JSON lines with --output json) until Ctrl-C, --count, --exit-at-end, --until or --idle-timeout; " +
            "a closing \"Consumed N records\" line goes to stderr")
        { topics, pattern, from, until, partitions, count, exitAtEnd, idleTimeout, format, keyFormat, valueFormat, group, isolation };
        CommonOptions.AddTo(command);
        command.SetToolAction("consume", async ctx =>
        {
            var settings = ClientPropertyMapping.Consumer(ctx.TryGetProperty,
                new ConsumeFlags(Isolation: ctx.IsExplicit(isolation) ? ctx.Get(isolation) : null, Group: ctx.Get(group)),
                new ConsumerOptions { EnablePartitionEof = true, IsolationLevel = IsolationLevel.ReadUncommitted });
            // -o wins; without it auto.offset.reset says where to start (and where partitions without a committed offset start with --group).
            var start = ctx.IsExplicit(from) ? ParseStart(ctx.Get(from)) : settings.Reset switch
            {
                AutoOffsetReset.Latest => new StartSpec(Offset.Latest, null),
                AutoOffsetReset.None => StartSpec.None,
                _ => new StartSpec(Offset.Earliest, null),
            };
            var stop = UntilSpec.Parse(ctx.Get(until));
            TimeSpan? idle = ctx.Get(idleTimeout) is { } idleText ? CliValues.ParseDuration(idleText, "--idle-timeout") : null;
            long? max = ctx.Get(count);
            if (max is < 1) throw new UsageException("--count must be at least 1");
            if (ctx.Get(group) is { Length: 0 }) throw new UsageException("--group must not be empty");
            var groupId = settings.Group;
            bool json = ctx.OutputRequested == OutputFormat.Json;
            if (json && ctx.Get(format) is not null) throw new UsageException("--format applies to text output, not --output json");
            var keyEncoding = RecordFormat.ParseEncoding(ctx.Get(keyFormat), "--key-format");
            var valueEncoding = RecordFormat.ParseEncoding(ctx.Get(valueFormat), "--value-format");
            var recordFormat = RecordFormat.Parse(ctx.Get(format) ?? "%v\\n", keyEncoding, valueEncoding);
            var named = (ctx.Get(topics) ?? []).Where(t => !t.StartsWith('^')).ToList();
            var patterns = (ctx.Get(topics) ?? []).Where(t => t.StartsWith('^')).Select(t => (Text: t, Option: "topic pattern")).ToList();
            if (ctx.Get(pattern) is { } p) patterns.Add((p, "--pattern"));
            if (named.Count == 0 && patterns.Count == 0) throw new UsageException("name a topic to read, or give --pattern");
            var regexes = patterns.Select(x => TopicPattern(x.Text, x.Option)).ToList();

            var existing = await ctx.Admin.ListTopicsAsync(true, ctx.CancellationToken);
            var missing = named.Where(n => existing.All(t => t.Name != n)).Distinct().ToList();
            if (missing.Count > 0)
                throw new ToolException(missing.Count == 1 ? $"topic '{missing[0]}' does not exist" : $"topics {string.Join(", ", missing.Select(m => $"'{m}'"))} do not exist");
            var selected = existing
                .Where(t => named.Contains(t.Name) || (!t.IsInternal && regexes.Any(r => r.IsMatch(t.Name))))
                .OrderBy(t => t.Name, StringComparer.Ordinal)
                .ToList();
            if (selected.Count == 0)
                throw new ToolException($"no topic matches {string.Join(" or ", patterns.Select(x => x.Option == "topic pattern" ? $"'{x.Text}'" : $"--pattern '{x.Text}'"))}");
            var assignment = new List<TopicPartition>();
            foreach (var info in selected)
            {
                var wanted = ctx.Get(partitions) is { Length: > 0 } ps ? ps.Distinct().Order().ToList() : Enumerable.Range(0, info.PartitionCount).ToList();
                foreach (var wp in wanted)
                    if (wp < 0 || wp >= info.PartitionCount) throw new ToolException($"topic '{info.Name}' has {info.PartitionCount} partition(s); there is no partition {wp}");
                assignment.AddRange(wanted.Select(x => new TopicPartition(info.Name, x)));
            }
            var topicList = selected.Count <= 5 ? string.Join(", ", selected.Select(t => t.Name)) : $"{selected.Count} topics";

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
            if (start.NoReset && assignment.Where(tp => !committed.ContainsKey(tp)).Select(tp => $"{tp.Topic}:{tp.Partition}").ToList() is { Count: > 0 } unset)
                throw new ToolException($"no committed offset {(groupId is null ? "(no --group)" : $"for group '{groupId}'")} on {string.Join(", ", unset.Take(5))}" +
                    $"{(unset.Count > 5 ? $" and {unset.Count - 5} more" : "")}, and auto.offset.reset is none: give --from, or another auto.offset.reset");

            // auto.offset.reset, when given, is also what happens to a position that has left the log (as in Kafka's consumer).
            var consumerOptions = settings.Options with
            {
                AutoOffsetReset = settings.Reset ?? (start.Offset is { Kind: OffsetKind.Latest } ? AutoOffsetReset.Latest : AutoOffsetReset.Earliest),
            };
            await using var consumer = new KafkaConsumer(ctx.ClientOptions, consumerOptions);
            consumer.Assign(assignment);
            // Offline partitions (no leader): the others are read; these start per auto.offset.reset if a leader comes back.
            var leaderless = new HashSet<TopicPartition>();
            foreach (var tp in assignment)
            {
                try { await SeekStartAsync(tp); }
                catch (KafkaException e) when (e.Error == ErrorCode.LeaderNotAvailable)
                {
                    leaderless.Add(tp);
                    Console.Error.WriteLine($"Partition {tp.Topic}:{tp.Partition} has no leader (offline?): reading the other partitions");
                }
            }
            async Task SeekStartAsync(TopicPartition tp)
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
            // Partitions that reached --until: no longer assigned; where they stopped is what --group commits.
            var stopped = new Dictionary<TopicPartition, long>();
            var reading = new List<TopicPartition>(assignment);
            void Stop(TopicPartition tp, long position)
            {
                stopped[tp] = position;
                reading.Remove(tp);
                if (reading.Count > 0) consumer.Assign(reading);
            }
            // --exit-at-end does not wait for the end of a partition that has no leader.
            bool Finished() => reading.Count == 0 || (ctx.Get(exitAtEnd) && reading.All(tp => atEnd.Contains(tp) || leaderless.Contains(tp)));
            // Partitions read to their end (and the end): with --until TIME they stop once the time has passed.
            var caughtUp = new Dictionary<TopicPartition, long>();
            var lastFlush = Stopwatch.StartNew();
            var sinceRecord = Stopwatch.StartNew();
            string? idleNote = null;
            try
            {
                while ((max is null || consumed < max) && !Finished())
                {
                    if (stop?.Time is { } time && time <= DateTimeOffset.UtcNow && caughtUp.Count > 0)
                    {
                        foreach (var (tp, end) in caughtUp) Stop(tp, end);
                        caughtUp.Clear();
                        continue;
                    }
                    var wait = TimeSpan.FromMilliseconds(250);
                    if (idle is { } limit)
                    {
                        if (sinceRecord.Elapsed >= limit)
                        {
                            idleNote = $"no record for {ctx.Get(idleTimeout)}";
                            break;
                        }
                        if (limit - sinceRecord.Elapsed < wait) wait = limit - sinceRecord.Elapsed;
                    }
                    ConsumeResult? r;
                    try
                    {
                        r = await consumer.ConsumeAsync(wait, ctx.CancellationToken);
                    }
                    catch (OperationCanceledException) when (ctx.CancellationToken.IsCancellationRequested)
                    {
                        break; // Ctrl-C ends a consume normally (after the commit with --group)
                    }
                    if (r is null)
                    {
                        await stdout.FlushAsync(CancellationToken.None);
                        lastFlush.Restart();
                        continue;
                    }
                    if (!reading.Contains(r.TopicPartition)) continue; // fetched before its partition stopped
                    if (r.IsPartitionEof)
                    {
                        atEnd.Add(r.TopicPartition);
                        if (stop is not null && stop.DoneAtEnd(r.Offset, DateTimeOffset.UtcNow)) Stop(r.TopicPartition, r.Offset);
                        else caughtUp[r.TopicPartition] = r.Offset;
                        continue;
                    }
                    caughtUp.Remove(r.TopicPartition);
                    if (stop is not null && stop.IsBeyond(r))
                    {
                        Stop(r.TopicPartition, r.Offset);
                        continue;
                    }
                    consumed++;
                    sinceRecord.Restart();
                    if (json) WriteJson(stdout, r, keyEncoding, valueEncoding);
                    else recordFormat.Write(stdout, r);
                    if (stop is not null && stop.EndsAfter(r)) Stop(r.TopicPartition, r.Offset + 1);
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

            if (groupId is not null && settings.Commit)
            {
                var positions = new Dictionary<TopicPartition, OffsetAndMetadata>();
                foreach (var tp in assignment)
                    if ((stopped.TryGetValue(tp, out var s) ? s : consumer.Position(tp)) is { } position && (position != startPositions[tp] || !committed.ContainsKey(tp)))
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
            // The closing summary goes to stderr, so stdout stays the records alone.
            Console.Error.WriteLine($"Consumed {consumed} record{(consumed == 1 ? "" : "s")} from {topicList}{(idleNote is null ? "" : $" ({idleNote})")}.");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>A topic pattern matches whole names (as Kafka's pattern subscriptions do).</summary>
    private static Regex TopicPattern(string pattern, string option)
    {
        try
        {
            // Parsed alone first, so an error message quotes what the user wrote.
            _ = new Regex(pattern, RegexOptions.CultureInvariant);
            return new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{option}: '{pattern}' is not a valid regular expression: {e.Message}");
        }
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
            return new(Offset.Timestamp(Cairn.Admin.Model.OffsetResetSpec.ParseDatetime(t)), null);
        }
        catch (FormatException)
        {
            throw new UsageException($"--from: '{t}' is not earliest, latest, an offset, -N, an ISO-8601 date-time or @MS");
        }
    }

    private static void WriteJson(Stream output, ConsumeResult r, BinaryEncoding keyEncoding, BinaryEncoding valueEncoding)
    {
        using (var w = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("topic", r.Topic);
            w.WriteNumber("partition", r.Partition);
            w.WriteNumber("offset", r.Offset);
            w.WriteNumber("timestamp", r.Timestamp.ToUnixTimeMilliseconds());
            w.WriteString("timestampType", r.TimestampType.ToString());
            if (r.Key is { } k) w.WriteString("key", RecordFormat.Encode(k.Span, keyEncoding)); else w.WriteNull("key");
            if (r.Value is { } v) w.WriteString("value", RecordFormat.Encode(v.Span, valueEncoding)); else w.WriteNull("value");
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
