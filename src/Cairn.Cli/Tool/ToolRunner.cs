using System.CommandLine;
using Cairn.Client;

namespace Cairn.Cli.Tool;

/// <summary>Exit codes of the client commands.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The operation failed: a Kafka error, a refusal (an active group), a plan with errors, a file that exists but cannot be read.</summary>
    public const int Failed = 1;
    /// <summary>The command was called wrongly: unknown option, missing argument, conflicting options, a value that does not parse, a file that does not exist.</summary>
    public const int Usage = 2;
    public const int Interrupted = 130;
}

/// <summary>Runs a command's action and turns exceptions into a message on stderr and an exit code.</summary>
internal static class ToolRunner
{
    /// <summary>Sets the action of a client command; <paramref name="path"/> is how it is called ("groups reset-offsets").</summary>
    public static void SetToolAction(this Command command, string path, Func<ToolContext, Task<int>> action) =>
        command.SetAction((parse, cancellationToken) => RunAsync(parse, path, cancellationToken, action));

    private static async Task<int> RunAsync(ParseResult parse, string path, CancellationToken cancellationToken, Func<ToolContext, Task<int>> action)
    {
        ToolContext? context = null;
        bool verbose = parse.GetValue(CommonOptions.Verbose);
        try
        {
            context = new ToolContext(parse, path, cancellationToken);
            int exitCode = await action(context);
            // Like librdkafka's "property not applicable" warning: a property this command has no use for did nothing.
            foreach (var unused in context.UnusedProperties) Warn($"client property '{unused}' is not used by 'cairn {path}'");
            return exitCode;
        }
        catch (Exception e) when (e is UsageException or FormatException)
        {
            Error($"cairn {path}: {e.Message}");
            Error($"Run 'cairn {path} --help' for usage.");
            return ExitCodes.Usage;
        }
        catch (ArgumentException e) when (e is not ArgumentNullException)
        {
            // The client validates its options (a bootstrap list that does not parse, a bad topic name).
            Error($"cairn {path}: {StripParamName(e)}");
            if (verbose) Error(e.ToString());
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // A file named on the command line that is not there: the call is wrong (exit 2), like any other usage error.
            Error($"cairn {path}: {MissingFile(e)}");
            if (verbose) Error(e.ToString());
            return ExitCodes.Usage;
        }
        catch (ToolException e)
        {
            Error($"cairn {path}: {e.Message}");
            return ExitCodes.Failed;
        }
        catch (KafkaException e)
        {
            Error($"cairn {path}: {Describe(e)}");
            if (verbose) Error(e.ToString());
            return ExitCodes.Failed;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Error($"cairn {path}: interrupted");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Error($"cairn {path}: {e.Message}");
            if (verbose) Error(e.ToString());
            return ExitCodes.Failed;
        }
        catch (Exception e)
        {
            Error($"cairn {path}: unexpected error: {e.Message}");
            Error(verbose ? e.ToString() : "(run with --verbose for details)");
            return ExitCodes.Failed;
        }
        finally
        {
            if (context is not null)
            {
                try { await context.DisposeAsync(); }
                catch (Exception e) when (!verbose) { _ = e; }
            }
        }
    }

    public static void Error(string message) => Console.Error.WriteLine(message);

    public static void Warn(string message) => Console.Error.WriteLine("warning: " + message);

    private static string MissingFile(Exception e)
    {
        var file = e is FileNotFoundException { FileName: { } name } ? name
            : System.Text.RegularExpressions.Regex.Match(e.Message, "'(?<path>[^']+)'") is { Success: true } m ? m.Groups["path"].Value : null;
        return file is null ? e.Message : $"no such file '{file}'";
    }

    private static string StripParamName(ArgumentException e) =>
        e.ParamName is { } p && e.Message.EndsWith($" (Parameter '{p}')", StringComparison.Ordinal) ? e.Message[..^($" (Parameter '{p}')".Length)] : e.Message;

    /// <summary>A Kafka error for people: the message, plus a hint for the common ones.</summary>
    public static string Describe(KafkaException e)
    {
        var hint = e.Error switch
        {
            Protocol.ErrorCode.NetworkException => " (is a broker running there? see --bootstrap-server)",
            Protocol.ErrorCode.RequestTimedOut => " (the broker did not answer in time; see --timeout)",
            _ => "",
        };
        return e.Message + hint;
    }
}
