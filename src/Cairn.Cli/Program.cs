using System.CommandLine;
using Cairn.Cli;

var root = new RootCommand("Cairn: a Kafka-compatible streaming broker and offset toolkit");
root.Add(ServeCommand.Create());
return await root.Parse(args).InvokeAsync();
