namespace Cairn.Broker;

/// <summary>Reads broker settings from a properties file and CAIRN_* environment variables.</summary>
public static class BrokerSettings
{
    /// <summary>Reads KEY=VALUE lines; blank lines and lines starting with # are skipped.</summary>
    public static IEnumerable<KeyValuePair<string, string>> ReadPropertiesFile(string path)
    {
        int lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int eq = line.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"{path}:{lineNumber}: expected KEY=VALUE");
            yield return new(line[..eq].Trim(), line[(eq + 1)..].Trim());
        }
    }

    /// <summary>CAIRN_DATA_DIR=... is the setting data.dir, CAIRN_LOG_RETENTION_MS is log.retention.ms.</summary>
    public static IEnumerable<KeyValuePair<string, string>> FromEnvironment(System.Collections.IDictionary? environment = null)
    {
        foreach (System.Collections.DictionaryEntry e in environment ?? Environment.GetEnvironmentVariables())
        {
            var name = (string)e.Key;
            if (!name.StartsWith("CAIRN_", StringComparison.Ordinal) || name == "CAIRN_CONFIG") continue;
            yield return new(name["CAIRN_".Length..], (string)e.Value!);
        }
    }
}
