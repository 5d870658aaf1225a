using System.CommandLine;
using System.Text.Json.Nodes;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary><c>cairn cluster info</c>: what <c>kcat -L</c> shows of the brokers, and <c>kafka-broker-api-versions.sh</c>.</summary>
internal static class ClusterCommand
{
    public static Command Create()
    {
        var cluster = new Command("cluster", "The cluster: its brokers, controller, id and supported API versions");
        CommonOptions.AddTo(cluster);
        cluster.Add(Info());
        return cluster;
    }

    private static Command Info()
    {
        var command = new Command("info", "Brokers (id, address, rack), the controller, the cluster id and each broker's API version ranges");
        command.SetToolAction("cluster info", async ctx =>
        {
            var (description, versions) = await ctx.ProgressAsync("Describing the cluster", async () =>
            {
                var d = await ctx.Admin.DescribeClusterAsync(ctx.CancellationToken);
                var v = new List<BrokerApiVersions>();
                foreach (var b in d.Brokers) v.Add(await ctx.Admin.DescribeApiVersionsAsync(b.NodeId, ctx.CancellationToken));
                return (d, v);
            });
            var byNode = versions.ToDictionary(v => v.NodeId);

            if (ctx.Json)
            {
                Terminal.WriteJson(new JsonObject
                {
                    ["clusterId"] = description.ClusterId,
                    ["controllerId"] = description.ControllerId,
                    ["brokers"] = new JsonArray(description.Brokers.Select(b => (JsonNode)new JsonObject
                    {
                        ["id"] = b.NodeId,
                        ["host"] = b.Host,
                        ["port"] = b.Port,
                        ["rack"] = b.Rack,
                        ["controller"] = b.NodeId == description.ControllerId,
                        ["apis"] = new JsonArray(byNode[b.NodeId].Apis.Select(a => (JsonNode)new JsonObject
                        {
                            ["name"] = ApiName(a),
                            ["key"] = (short)a.Api,
                            ["minVersion"] = a.MinVersion,
                            ["maxVersion"] = a.MaxVersion,
                            ["usableVersion"] = a.UsedVersion >= 0 ? a.UsedVersion : null,
                        }).ToArray()),
                    }).ToArray()),
                });
                return 0;
            }
            if (ctx.Output == OutputFormat.Text)
            {
                // kafka-broker-api-versions.sh's format: "HOST:PORT (id: N rack: R) -> (" then "Name(key): min to max [usable: v]".
                foreach (var b in description.Brokers)
                {
                    Console.Out.WriteLine($"{Address(b)} (id: {b.NodeId} rack: {b.Rack ?? "null"}) -> (");
                    var apis = byNode[b.NodeId].Apis;
                    for (int i = 0; i < apis.Count; i++)
                    {
                        var a = apis[i];
                        var usable = a.UsedVersion >= 0 ? $"usable: {a.UsedVersion}" : "unusable: no common version";
                        Console.Out.WriteLine($"\t{ApiName(a)}({(short)a.Api}): {a.MinVersion} to {a.MaxVersion} [{usable}]{(i < apis.Count - 1 ? "," : "")}");
                    }
                    Console.Out.WriteLine(")");
                }
                return 0;
            }

            ctx.Out.Line($"Cluster id: {description.ClusterId ?? "(none)"}   controller: {(description.ControllerId >= 0 ? Terminal.Int(description.ControllerId) : "(none)")}");
            var brokers = Terminal.NewTable("BROKER", "ADDRESS", "RACK", "ROLE");
            foreach (var b in description.Brokers)
                brokers.AddTextRow(Terminal.Int(b.NodeId), Address(b), b.Rack ?? "-", b.NodeId == description.ControllerId ? "controller" : "-");
            ctx.Out.Write(brokers);
            foreach (var b in description.Brokers)
            {
                ctx.Out.Line("");
                ctx.Out.Line($"API versions of broker {b.NodeId} ({Address(b)}):");
                var table = Terminal.NewTable("API", "KEY", "MIN", "MAX", "USABLE");
                foreach (var a in byNode[b.NodeId].Apis)
                    table.AddTextRow(ApiName(a), Terminal.Int((short)a.Api), Terminal.Int(a.MinVersion), Terminal.Int(a.MaxVersion), a.UsedVersion >= 0 ? Terminal.Int(a.UsedVersion) : "-");
                ctx.Out.Write(table);
            }
            return 0;
        });
        return command;
    }

    private static string Address(BrokerDescription b) => b.Host.Contains(':') ? $"[{b.Host}]:{b.Port}" : $"{b.Host}:{b.Port}";

    private static string ApiName(ApiVersionSupport a) => Enum.IsDefined(a.Api) ? a.Api.ToString() : $"Unknown{(short)a.Api}";
}
