using System.Text;
using System.Text.RegularExpressions;

namespace Cairn.Interop.Tests.Readme;

/// <summary>One fenced ```sh block of README.md: its number among the sh blocks, its first line, its text.</summary>
public sealed record ReadmeBlock(int Number, int Line, string Text, string? NotRunReason)
{
    public bool Runs => NotRunReason is null;

    public override string ToString() => $"README.md sh block #{Number} (line {Line})";
}

/// <summary>
/// One command of a block: a logical line (continuation lines joined), without its comment. <see cref="Expected"/> is
/// the text after "→" in the comment: what the command prints (stdout and stderr, as on a terminal) must contain it.
/// </summary>
public sealed record ReadmeCommand(int Line, string Text, string? Expected);

/// <summary>
/// README.md as executable documentation. Conventions (also stated in the README's layout section):
/// - every block fenced as ```sh runs, top to bottom, unless the line before it (blank lines aside) is
///   <c>&lt;!-- not run: REASON --&gt;</c>;
/// - <c># … → TEXT</c> at the end of a command: what it prints (stdout or stderr) contains TEXT.
/// </summary>
public static partial class ReadmeScript
{
    public const string Arrow = "→";

    public static IReadOnlyList<ReadmeBlock> Blocks(string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n").Split('\n');
        var blocks = new List<ReadmeBlock>();
        for (var i = 0; i < lines.Length; i++)
        {
            var fence = Fence().Match(lines[i]);
            if (!fence.Success) continue;
            var info = fence.Groups[1].Value.Trim();
            var start = i;
            var body = new StringBuilder();
            for (i++; i < lines.Length && !lines[i].StartsWith("```", StringComparison.Ordinal); i++) body.Append(lines[i]).Append('\n');
            if (i >= lines.Length) throw new FormatException($"README.md: the block opened at line {start + 1} is never closed");
            var language = info.Split(' ', 2)[0];
            if (language is "bash" or "shell" or "console" or "zsh")
                throw new FormatException($"README.md line {start + 1}: fence shell examples as ```sh (run by the README test) instead of ```{language}");
            if (language != "sh") continue;
            if (info != "sh")
                throw new FormatException($"README.md line {start + 1}: ```{info}: mark a block that must not run with <!-- not run: REASON --> before it");
            blocks.Add(new ReadmeBlock(blocks.Count + 1, start + 1, body.ToString(), NotRunReason(lines, start)));
        }
        return blocks;
    }

    private static string? NotRunReason(string[] lines, int fenceIndex)
    {
        for (var j = fenceIndex - 1; j >= 0; j--)
        {
            if (lines[j].Trim().Length == 0) continue;
            var m = NotRun().Match(lines[j]);
            return m.Success ? m.Groups[1].Value.Trim() : null;
        }
        return null;
    }

    /// <summary>The block's commands: continuation lines joined, blank and comment-only lines left out.</summary>
    public static IReadOnlyList<ReadmeCommand> Commands(ReadmeBlock block)
    {
        var commands = new List<ReadmeCommand>();
        var lines = block.Text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var first = i;
            var text = new StringBuilder();
            var line = lines[i];
            while (line.TrimEnd().EndsWith('\\') && i + 1 < lines.Length)
            {
                text.Append(line.TrimEnd()[..^1]).Append(' ');
                line = lines[++i];
            }
            text.Append(line);
            var (code, comment) = SplitComment(text.ToString());
            if (code.Trim().Length == 0) continue;
            var arrow = comment?.IndexOf(Arrow, StringComparison.Ordinal) ?? -1;
            var expected = arrow < 0 ? null : comment![(arrow + Arrow.Length)..].Trim();
            if (expected is { Length: 0 }) throw new FormatException($"{block}, line {block.Line + 1 + first}: '{Arrow}' without the expected text");
            commands.Add(new ReadmeCommand(block.Line + 1 + first, code.Trim(), expected));
        }
        return commands;
    }

    /// <summary>Splits a shell line at its comment: a '#' outside quotes at the start or after white space.</summary>
    public static (string Code, string? Comment) SplitComment(string line)
    {
        char quote = '\0';
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote != '\0')
            {
                if (c == quote) quote = '\0';
                else if (c == '\\' && quote == '"') i++;
            }
            else if (c is '\'' or '"') quote = c;
            else if (c == '\\') i++;
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return (line[..i], line[(i + 1)..]);
        }
        return (line, null);
    }

    /// <summary>
    /// The bash script for a block: strict mode, and before each command a marker line on stderr
    /// (<see cref="MarkerPrefix"/> LINE: COMMAND) so a failure can be pinned on its command; commands with an expected
    /// output run in a command substitution capturing stdout and stderr, which is echoed (to stderr when the command
    /// failed) and then checked.
    /// </summary>
    public static string Script(ReadmeBlock block)
    {
        var script = new StringBuilder("set -euo pipefail\n");
        foreach (var command in Commands(block))
        {
            script.Append($"printf '%s\\n' {Quote($"{MarkerPrefix}{command.Line}: {command.Text}")} >&2\n");
            if (command.Expected is null)
            {
                script.Append(command.Text).Append('\n');
                continue;
            }
            script.Append($"__readme_rc=0; __readme_out=$({{ {command.Text}\n}} 2>&1) || __readme_rc=$?\n");
            script.Append("if [ \"$__readme_rc\" -ne 0 ]; then printf '%s\\n' \"$__readme_out\" >&2; exit \"$__readme_rc\"; fi\n");
            script.Append("printf '%s\\n' \"$__readme_out\"\n");
            script.Append($"case \"$__readme_out\" in *{Quote(command.Expected)}*) ;; *) ");
            script.Append($"printf '%s\\n' {Quote($"output lacks the expected text: {command.Expected}")} >&2; exit 3;; esac\n");
        }
        return script.ToString();
    }

    public const string MarkerPrefix = "### README line ";

    /// <summary>bash single quoting.</summary>
    public static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    [GeneratedRegex(@"^```(\S.*)$")]
    private static partial Regex Fence();

    [GeneratedRegex(@"^\s*<!--\s*not run:\s*(.+?)\s*-->\s*$")]
    private static partial Regex NotRun();
}
