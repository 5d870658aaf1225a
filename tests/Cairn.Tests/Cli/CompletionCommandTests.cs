using System.CommandLine;
using System.Diagnostics;
using Cairn.Cli;
using Cairn.Cli.Tool;

namespace Cairn.Tests.Cli;

/// <summary>
/// `cairn completion bash|zsh`: the script is generated from the command tree, and bash, given the words typed so far,
/// completes subcommands, options (with the recursive ones of parent commands) and fixed option values.
/// </summary>
public class CompletionCommandTests
{
    /// <summary>The command tree as Program.cs builds it, with the completion command added.</summary>
    private static RootCommand Root()
    {
        var root = new RootCommand("cairn");
        root.Add(ServeCommand.Create());
        ToolCommands.AddTo(root);
        root.Add(CompletionCommand.Create(root));
        return root;
    }

    /// <summary>Sources the script in bash, sets COMP_WORDS to <paramref name="line"/> (the last word is being completed) and returns COMPREPLY.</summary>
    private static async Task<string[]> CompleteAsync(string script, string line)
    {
        var words = line.Split(' ');
        var file = Path.Combine(Path.GetTempPath(), $"cairn-completion-{Guid.NewGuid():N}.bash");
        await File.WriteAllTextAsync(file, script);
        try
        {
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add("--norc");
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 )); _cairn; printf '%s\\n' \"${COMPREPLY[@]}\"");
            psi.ArgumentList.Add("bash");
            psi.ArgumentList.Add(file);
            foreach (var w in words) psi.ArgumentList.Add(w);
            using var bash = Process.Start(psi)!;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var stdout = bash.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = bash.StandardError.ReadToEndAsync(timeout.Token);
            await bash.WaitForExitAsync(timeout.Token);
            Assert.True(bash.ExitCode == 0 && (await stderr).Length == 0, $"bash exited {bash.ExitCode}: {await stderr}");
            return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Bash_completes_commands_subcommands_options_and_values()
    {
        var script = CompletionCommand.BashScript(Root());
        Assert.Contains("complete -F _cairn cairn", script);

        Assert.Equal(["groups"], await CompleteAsync(script, "cairn gro"));
        var top = await CompleteAsync(script, "cairn ");
        foreach (var c in new[] { "serve", "topics", "produce", "consume", "groups", "offsets", "completion" }) Assert.Contains(c, top);
        Assert.Equal(["delete", "delete-offsets", "describe", "list", "reset-offsets"], (await CompleteAsync(script, "cairn groups ")).Order());
        Assert.Equal(["--all-groups"], await CompleteAsync(script, "cairn groups describe --all"));
        // Recursive options of `groups`, also after an option value that looks like a word.
        var options = await CompleteAsync(script, "cairn groups --bootstrap-server describe describe --");
        Assert.Contains("--bootstrap-server", options);
        Assert.Contains("--no-lag-time", options);
        Assert.DoesNotContain("--execute", options);
        Assert.Equal(["json"], await CompleteAsync(script, "cairn groups describe billing --output j"));
        Assert.Equal(["--to-datetime"], await CompleteAsync(script, "cairn groups reset-offsets g --to-d"));
        Assert.Equal(["bash", "zsh"], (await CompleteAsync(script, "cairn completion ")).Order());
        // A value that is free text completes nothing rather than offering subcommands.
        Assert.Empty(await CompleteAsync(script, "cairn groups reset-offsets g --to-offset "));
    }

    [Fact]
    public void The_zsh_script_is_the_bash_one_through_bashcompinit()
    {
        var root = Root();
        var zsh = CompletionCommand.ZshScript(root);
        Assert.StartsWith("#compdef cairn", zsh);
        Assert.Contains("bashcompinit", zsh);
        Assert.EndsWith(CompletionCommand.BashScript(root), zsh);
    }

    [Fact]
    public async Task The_command_prints_the_script_and_refuses_other_shells()
    {
        var root = Root();
        var output = new StringWriter();
        Assert.Equal(0, await root.Parse(["completion", "bash"]).InvokeAsync(new InvocationConfiguration { Output = output }));
        Assert.Equal(CompletionCommand.BashScript(root), output.ToString());
        Assert.NotEmpty(root.Parse(["completion", "fish"]).Errors);
    }
}
