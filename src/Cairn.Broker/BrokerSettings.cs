namespace Cairn.Broker;

/// <summary>Reads broker settings from a properties file and CAIRN_* environment variables.</summary>
public static class BrokerSettings
{
    /// <summary>
    /// Reads KEY=VALUE lines; blank lines and lines starting with # are skipped. A file that cannot be read or a line that
    /// is not KEY=VALUE is an <see cref="ArgumentException"/> with a one-line message ("cannot read config file X: not found").
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> ReadPropertiesFile(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var reason = e switch
            {
                FileNotFoundException or DirectoryNotFoundException => "not found",
                UnauthorizedAccessException when Directory.Exists(path) => "is a directory",
                UnauthorizedAccessException => "permission denied",
                _ => e.Message,
            };
            throw new ArgumentException($"cannot read config file {path}: {reason}", e);
        }
        var settings = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith('!')) continue;
            int eq = line.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"{path}:{i + 1}: expected KEY=VALUE, got '{line}'");
            settings.Add(new(line[..eq].Trim(), line[(eq + 1)..].Trim()));
        }
        return settings;
    }

    /// <summary>
    /// CAIRN_DATA_DIR=... is the setting data.dir, CAIRN_LOG_RETENTION_MS is log.retention.ms. CAIRN_* variables that name no
    /// broker setting belong to other tools (the CLI's CAIRN_BOOTSTRAP_SERVER, test harnesses): they are left out, and
    /// their names added to <paramref name="ignored"/> when given. CAIRN_CONFIG names the properties file, not a setting.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> FromEnvironment(System.Collections.IDictionary? environment = null,
        ICollection<string>? ignored = null)
    {
        var settings = new List<KeyValuePair<string, string>>();
        foreach (System.Collections.DictionaryEntry e in environment ?? Environment.GetEnvironmentVariables())
        {
            var name = (string)e.Key;
            if (!name.StartsWith("CAIRN_", StringComparison.Ordinal) || name == "CAIRN_CONFIG") continue;
            var key = name["CAIRN_".Length..];
            if (BrokerOptions.IsSetting(key)) settings.Add(new(key, (string)e.Value!));
            else ignored?.Add(name);
        }
        return settings;
    }
}
