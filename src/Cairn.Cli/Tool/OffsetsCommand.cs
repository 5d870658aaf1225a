using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Cairn.Admin.Model;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn offsets export | import</c>: a group's committed offsets as a CSV plan, and back.</summary>
internal static class OffsetsCommand
{
    public static Command Create()
    {
        var offsets = new Command("offsets", "Export a group's committed offsets to a file and import them (into the same or another group)");
        CommonOptions.AddTo(offsets);
        offsets.Add(Export());
        offsets.Add(Import());
        return offsets;
    }

    private static Command Export()
    {
        var id = new Argument<string>("group") { Description = "The group whose offsets to export" };
        var topic = new Option<string[]>("--topic", "-t") { Description = "Only this topic, or only the listed partitions (repeatable)", HelpName = "topic[:p,...]", AllowMultipleArgumentsPerToken = false };
        var file = new Option<FileInfo?>("--file", "-f") { Description = "Write to this file instead of stdout" };
        var command = new Command("export", "Write a group's committed offsets as CSV lines topic,partition,offset (the --from-file format), e.g. cairn offsets export billing > plan.csv")
        { id, topic, file };
        command.SetToolAction("offsets export", async ctx =>
        {
            var groupId = ctx.Get(id);
            var scopes = (ctx.Get(topic) ?? []).Select(OffsetResetScope.ParseTopic).ToList();
            var committed = await ctx.ProgressAsync($"Reading the offsets of {groupId}", () => ctx.Admin.FetchCommittedOffsetsAsync(groupId, null, ctx.CancellationToken));
            var rows = committed
                .Where(kv => scopes.Count == 0 || scopes.Any(s => s.Topic == kv.Key.Topic && (s.Partitions is null || s.Partitions.Contains(kv.Key.Partition))))
                .OrderBy(kv => kv.Key).ToList();
            if (rows.Count == 0)
                throw new ToolException(committed.Count == 0 ? $"group '{groupId}' has no committed offsets" : $"group '{groupId}' has no committed offsets for {string.Join(", ", scopes)}");

            string text;
            if (ctx.Json)
            {
                text = new JsonObject
                {
                    ["group"] = groupId,
                    ["offsets"] = new JsonArray(rows.Select(kv => (JsonNode)new JsonObject
                    {
                        ["topic"] = kv.Key.Topic, ["partition"] = kv.Key.Partition, ["offset"] = kv.Value.Offset, ["metadata"] = kv.Value.Metadata,
                    }).ToArray()),
                }.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
            }
            else
            {
                var sb = new StringBuilder();
                foreach (var (tp, o) in rows)
                {
                    if (tp.Topic.Contains(',')) throw new ToolException($"topic '{tp.Topic}' contains a comma and cannot be written as CSV: use --output json");
                    sb.Append(tp.Topic).Append(',').Append(tp.Partition.ToString(CultureInfo.InvariantCulture)).Append(',').Append(o.Offset.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }
                text = sb.ToString();
            }
            if (ctx.Get(file) is { } f)
            {
                await File.WriteAllTextAsync(f.FullName, text, new UTF8Encoding(false), ctx.CancellationToken);
                Console.Error.WriteLine($"Wrote {rows.Count} offset(s) of group {groupId} to {f.FullName}.");
            }
            else Console.Out.Write(text);
            return 0;
        });
        return command;
    }

    private static Command Import()
    {
        var id = new Argument<string>("group") { Description = "The group to set offsets for (it may be another group than the one exported)" };
        var file = new Argument<string?>("file") { Description = "The plan: CSV lines topic,partition,offset, or the JSON of 'offsets export --output json'; - for stdin", Arity = ArgumentArity.ZeroOrOne };
        var fromGroup = new Option<string?>("--from-group") { Description = "Copy the committed offsets of this group instead of reading a file" };
        var topic = new Option<string[]>("--topic", "-t") { Description = "Only rows of this topic, or of the listed partitions (repeatable)", HelpName = "topic[:p,...]", AllowMultipleArgumentsPerToken = false };
        var execute = new Option<bool>("--execute") { Description = "Commit the offsets (without it: a dry run that only shows the plan)" };
        var command = new Command("import", "Set a group's offsets from a plan file or another group (--from-group), like reset-offsets --from-file: dry run unless --execute")
        { id, file, fromGroup, topic, execute };
        command.SetToolAction("offsets import", async ctx =>
        {
            var groupId = ctx.Get(id);
            var path = ctx.Get(file);
            var source = ctx.Get(fromGroup);
            if ((path is null) == (source is null)) throw new UsageException("give a plan file or --from-group GROUP (one of them)");
            IReadOnlyList<OffsetResetFileRow> rows;
            if (source is not null)
            {
                var committed = await ctx.Admin.FetchCommittedOffsetsAsync(source, null, ctx.CancellationToken);
                if (committed.Count == 0) throw new ToolException($"group '{source}' has no committed offsets to copy");
                rows = committed.OrderBy(kv => kv.Key).Select(kv => new OffsetResetFileRow(kv.Key.Topic, kv.Key.Partition, kv.Value.Offset)).ToList();
            }
            else rows = ParsePlan(await GroupsCommand.ReadPlanFileAsync(path!, ctx.CancellationToken));
            var scopes = (ctx.Get(topic) ?? []).Select(OffsetResetScope.ParseTopic).ToList();
            return await OffsetResets.RunAsync(ctx, groupId, OffsetResetSpec.FromFile(rows), scopes, ctx.Get(execute));
        });
        return command;
    }

    /// <summary>CSV (topic,partition,offset lines) or the JSON that <c>offsets export --output json</c> writes.</summary>
    private static IReadOnlyList<OffsetResetFileRow> ParsePlan(string text)
    {
        if (!text.TrimStart().StartsWith('{')) return OffsetResetSpec.ParseCsv(text);
        try
        {
            using var doc = JsonDocument.Parse(text);
            var rows = doc.RootElement.GetProperty("offsets").EnumerateArray()
                .Select(e => new OffsetResetFileRow(e.GetProperty("topic").GetString()!, e.GetProperty("partition").GetInt32(), e.GetProperty("offset").GetInt64()))
                .ToList();
            if (rows.Count == 0) throw new FormatException("the plan has no rows");
            return rows;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FormatException($"the plan is not CSV (topic,partition,offset lines) nor the JSON of 'offsets export --output json': {e.Message}");
        }
    }
}
