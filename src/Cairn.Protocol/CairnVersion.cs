using System.Reflection;

namespace Cairn.Protocol;

/// <summary>
/// The version of this Cairn build, e.g. "0.1.0+ce3b2f9": the newest vX.Y.Z tag (0.1.0 without one) and the commit, set for
/// every assembly by Directory.Build.props. One value for the CLI, the broker log, the admin API and ApiVersions.
/// </summary>
public static class CairnVersion
{
    /// <summary>The informational version, e.g. "0.1.0+ce3b2f9" or "0.1.0+ce3b2f9.dirty".</summary>
    public static string Value { get; } =
        typeof(CairnVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.1.0-dev";

    /// <summary>
    /// <see cref="Value"/> in the form Kafka accepts for ApiVersions' ClientSoftwareVersion
    /// ([a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?): "0.1.0+ce3b2f9" becomes "0.1.0-ce3b2f9".
    /// </summary>
    public static string SoftwareVersion { get; } = ToSoftwareVersion(Value);

    /// <summary>The software name Cairn clients give in ApiVersions.</summary>
    public const string SoftwareName = "cairn";

    internal static string ToSoftwareVersion(string version)
    {
        var chars = version.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '-').ToArray();
        return new string(chars).Trim('-', '.') is { Length: > 0 } s ? s : "unknown";
    }
}
