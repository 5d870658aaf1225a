using System.CommandLine;
using System.CommandLine.Invocation;
using Cairn.Cli;
using Cairn.Cli.Tool;

var root = new RootCommand("Cairn: a Kafka-compatible streaming broker and offset toolkit");
root.Add(ServeCommand.Create());
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
return await parse.InvokeAsync();

static IEnumerable<string> CommandPath(Command command)
{
    var names = new List<string>();
    for (Command? c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault()) names.Insert(0, c.Name);
    return names;
}
