using System.Collections.Concurrent;
using System.Diagnostics;

namespace Cairn.Interop.Tests.Infrastructure;

/// <summary>A client or tool the interop tests need is not installed: the test fails with this, naming it and how to install it.</summary>
public sealed class MissingClientException(string message) : Exception(message);

/// <summary>
/// Checks, before a client process starts, that the client is installed: kcat on PATH, kafka-python or confluent-kafka
/// importable by /usr/bin/python3, node on PATH with kafkajs in drivers/node/node_modules. A missing one makes the test
/// fail with e.g. "kcat is not installed (apt-get install kcat)" instead of an obscure start or import error, and never
/// a skip. Each check runs once per test run.
/// </summary>
public static class ClientTools
{
    private static readonly ConcurrentDictionary<string, string?> Problems = new();

    /// <summary>Throws <see cref="MissingClientException"/> when the client that `fileName args` starts is not installed.</summary>
    public static void EnsureInstalled(string fileName, IReadOnlyList<string> args)
    {
        foreach (var requirement in Requirements(fileName, args))
        {
            var problem = Problems.GetOrAdd(requirement, Check);
            if (problem is not null) throw new MissingClientException(problem);
        }
    }

    private static IEnumerable<string> Requirements(string fileName, IReadOnlyList<string> args)
    {
        var name = Path.GetFileName(fileName);
        if (name == "kcat" || (name == "timeout" && args.Any(a => a == "kcat"))) yield return "kcat";
        if (name == "cc") yield return "cc";
        var script = args.Count > 0 ? Path.GetFileName(args[0]) : "";
        if (fileName == Paths.Python)
        {
            yield return "python3";
            if (script == "kp_client.py") yield return "python:kafka";
            if (script == "ck_client.py") yield return "python:confluent_kafka";
        }
        if (name == "node")
        {
            yield return "node";
            if (script == "kjs_client.js") yield return "npm:kafkajs";
        }
    }

    private static string? Check(string requirement) => requirement switch
    {
        "kcat" => ExecutableProblem("kcat", "kcat", Environment.GetEnvironmentVariable("PATH")),
        "node" => ExecutableProblem("node", "nodejs", Environment.GetEnvironmentVariable("PATH")),
        "cc" => ExecutableProblem("cc", "gcc", Environment.GetEnvironmentVariable("PATH")),
        "python3" => File.Exists(Paths.Python) ? null : NotInstalled($"python3 ({Paths.Python})", "apt-get install python3"),
        "python:kafka" => PythonModuleProblem(Paths.Python, "kafka", "kafka-python", "python3-kafka"),
        "python:confluent_kafka" => PythonModuleProblem(Paths.Python, "confluent_kafka", "confluent-kafka", "python3-confluent-kafka"),
        "npm:kafkajs" => Directory.Exists(Path.Combine(Paths.DriversDir, "node", "node_modules", "kafkajs")) ? null
            : $"kafkajs is not installed in {Path.Combine(Paths.DriversDir, "node")} (run `npm ci` there; bash test.sh does)",
        _ => throw new ArgumentException($"unknown requirement {requirement}"),
    };

    public static string NotInstalled(string client, string install) => $"{client} is not installed ({install}; bash test.sh installs it)";

    /// <summary>Null when <paramref name="name"/> is on <paramref name="pathVariable"/>; else "kcat is not installed (apt-get install kcat; ...)".</summary>
    public static string? ExecutableProblem(string name, string debianPackage, string? pathVariable) =>
        FindOnPath(name, pathVariable) is null ? NotInstalled(name, $"apt-get install {debianPackage}") : null;

    /// <summary>The full path of an executable found in a PATH-style list of directories, or null.</summary>
    public static string? FindOnPath(string name, string? pathVariable)
    {
        foreach (var dir in (pathVariable ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0))
                return candidate;
        }
        return null;
    }

    /// <summary>Null when <paramref name="python"/> can import <paramref name="module"/>; else the one-line problem naming the client.</summary>
    public static string? PythonModuleProblem(string python, string module, string client, string debianPackage)
    {
        if (!File.Exists(python)) return NotInstalled($"python3 ({python})", "apt-get install python3");
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"import {module}");
        using var p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            p.Kill(entireProcessTree: true);
            return $"{python} -c 'import {module}' did not finish within 30s";
        }
        return p.ExitCode == 0 ? null
            : NotInstalled($"{client} (python module {module} for {python})", $"apt-get install {debianPackage}")
              + $": {stderr.Result.Trim().Split('\n').LastOrDefault()}";
    }
}
