using System.CommandLine;
using System.CommandLine.Invocation;
using Cairn.Cli;
using Cairn.Cli.Tool;

var root = new RootCommand("Cairn: a Kafka-compatible streaming broker and offset toolkit");
var serve = ServeCommand.Create();
root.Add(serve);
root.Add(StorageCommand.Create());
ToolCommands.AddTo(root);
root.Add(CompletionCommand.Create(root));

// kcat-style glued short options (-K: is the key separator ':'); see GluedShortOptions.
args = GluedShortOptions.Rewrite(root, args);
// No response files: "@1795000000000" is a timestamp (consume --from), not a file of arguments.
var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parse.Errors.Count > 0 && parse.Action is ParseErrorAction)
{
    // Usage errors: one line each (no .NET type names), a pointer to --help (not the whole help text), exit code 2.
    var path = string.Join(' ', parse.CommandResult.Command.Name == root.Name ? [] : CommandPath(parse.CommandResult.Command));
    var prefix = path.Length > 0 ? $"cairn {path}: " : "cairn: ";
    foreach (var error in parse.Errors.DistinctBy(e => e.Message)) Console.Error.WriteLine(prefix + ParseErrors.Describe(error));
    Console.Error.WriteLine($"Run 'cairn {(path.Length > 0 ? path + " " : "")}--help' for usage.");
    return ExitCodes.Usage;
}
// `cairn serve` handles SIGTERM and Ctrl-C itself and shuts down cleanly however long that takes. System.CommandLine's
// handling would end the process 2 s after the signal (exit code 143), cutting a clean shutdown of thousands of partitions
// short and leaving every partition to recover as after a crash.
return ReferenceEquals(parse.CommandResult.Command, serve)
    ? await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null })
    : await parse.InvokeAsync();

static IEnumerable<string> CommandPath(Command command)
{
    var names = new List<string>();
    for (Command? c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault()) names.Insert(0, c.Name);
    return names;
}
