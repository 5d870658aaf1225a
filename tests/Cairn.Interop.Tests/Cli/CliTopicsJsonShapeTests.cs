using System.Net.Http.Json;
using System.Text.Json;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Cli;

/// <summary>
/// `cairn topics list|describe --output json` and the admin API's GET /api/v1/topics[/{t}] give a topic in one shape
/// (the same property names and nesting, null where one side cannot know a value) with the same values.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class CliTopicsJsonShapeTests
{
    // The values both sides read from the same broker, partition by partition (sizes too: nothing is written meanwhile).
    private static string Stable(JsonElement topic) =>
        string.Join(",", new[] { "name", "topicId", "partitionCount", "internal", "records", "sizeBytes" }.Select(n => topic.GetProperty(n).ToString())) + " | " +
        string.Join("; ", topic.GetProperty("partitions").EnumerateArray().Select(p =>
            string.Join(",", new[] { "partition", "leader", "replicas", "isr", "logStartOffset", "logEndOffset", "records", "sizeBytes" }
                .Select(n => JsonSerializer.Serialize(p.GetProperty(n))))));

    private static string Configs(JsonElement topic) =>
        string.Join("\n", topic.GetProperty("configs").EnumerateArray().Select(c => JsonSerializer.Serialize(c)));

    [Fact]
    public async Task The_cli_and_the_admin_api_give_topics_in_one_shape()
    {
        int adminPort = BrokerProcess.FreePort();
        await using var broker = await BrokerProcess.StartAsync(new BrokerOptions
        {
            AutoCreateTopics = false,
            Settings = new Dictionary<string, string> { ["admin.listen"] = $"127.0.0.1:{adminPort}" },
        });
        await broker.WithBrokerLogAsync(async () =>
        {
            using var http = await JsonShape.AdminClientAsync(adminPort);
            var cli = new CairnCli(broker.Bootstrap);
            var topic = Topics.Unique("cli-json-shape");
            var other = Topics.Unique("cli-json-shape-b");
            await cli.OkAsync("topics", "create", topic, "-p", "3", "-c", "retention.ms=3600000");
            await cli.CreateTopicAsync(other, 1);
            // Records on partitions 0 and 2, the first of partition 2 trimmed: offsets, records and sizes differ per partition.
            await cli.OkWithStdinAsync("a\nb\n", "produce", topic, "-p", "0");
            await cli.OkWithStdinAsync("c\nd\ne\n", "produce", topic, "-p", "2");
            await cli.OkAsync("topics", "trim", $"{topic}:2", "--before", "1");

            // The list: the whole document (the broker has no other topics).
            var listedCli = await cli.JsonAsync("topics", "list");
            var listedApi = await http.GetFromJsonAsync<JsonElement>("api/v1/topics");
            JsonShape.AssertSame(listedCli, listedApi, "GET /api/v1/topics and topics list --output json");
            Assert.Equal(string.Join("\n", listedApi.GetProperty("topics").EnumerateArray().Select(Stable)),
                string.Join("\n", listedCli.GetProperty("topics").EnumerateArray().Select(Stable)));
            var entry = listedCli.GetProperty("topics").EnumerateArray().Single(t => t.GetProperty("name").GetString() == topic);
            Assert.Equal([2L, 0L, 2L], entry.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("records").GetInt64()));
            Assert.Equal([0L, 0L, 1L], entry.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("logStartOffset").GetInt64()));
            Assert.Equal(4, entry.GetProperty("records").GetInt64());
            // What the CLI cannot know is null, not left out; the broker knows it.
            Assert.All(entry.GetProperty("partitions").EnumerateArray(), p => Assert.Equal(JsonValueKind.Null, p.GetProperty("segments").ValueKind));
            Assert.All(listedApi.GetProperty("topics").EnumerateArray().SelectMany(t => t.GetProperty("partitions").EnumerateArray()),
                p => Assert.True(p.GetProperty("segments").GetInt32() >= 1, p.ToString()));
            Assert.False(entry.TryGetProperty("configs", out _), $"a topic list reads no configs: {entry}");

            // Describe: {"topics": [GET /api/v1/topics/{t}]}, with every config (--all-configs) or only the overrides.
            var describedApi = await http.GetFromJsonAsync<JsonElement>($"api/v1/topics/{Uri.EscapeDataString(topic)}");
            var wrappedApi = JsonSerializer.SerializeToElement(new { topics = new[] { describedApi } });
            var describedCli = await cli.JsonAsync("topics", "describe", topic, "--all-configs");
            JsonShape.AssertSame(describedCli, wrappedApi, "GET /api/v1/topics/{t} and topics describe --all-configs --output json");
            var fromCli = describedCli.GetProperty("topics").EnumerateArray().Single();
            Assert.Equal(Stable(describedApi), Stable(fromCli));
            Assert.Equal(Configs(describedApi), Configs(fromCli));
            Assert.Contains("\"retention.ms\"", Configs(fromCli));

            var overridesCli = await cli.JsonAsync("topics", "describe", topic);
            JsonShape.AssertSame(overridesCli, wrappedApi, "GET /api/v1/topics/{t} and topics describe --output json");
            var overrides = overridesCli.GetProperty("topics")[0].GetProperty("configs");
            Assert.Equal(["retention.ms"], overrides.EnumerateArray().Select(c => c.GetProperty("name").GetString()));
            Assert.Equal(JsonSerializer.Serialize(describedApi.GetProperty("configs").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "retention.ms")),
                JsonSerializer.Serialize(overrides[0]));
        });
    }
}
