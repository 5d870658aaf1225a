using System.CommandLine;

namespace Cairn.Cli.Tool;

/// <summary>The client commands: they work against Cairn or any Kafka-compatible cluster.</summary>
internal static class ToolCommands
{
    public static void AddTo(RootCommand root)
    {
        root.Add(ClusterCommand.Create());
        root.Add(TopicsCommand.Create());
        root.Add(ProduceCommand.Create());
        root.Add(ConsumeCommand.Create());
        root.Add(GroupsCommand.Create());
        root.Add(OffsetsCommand.Create());
    }
}
