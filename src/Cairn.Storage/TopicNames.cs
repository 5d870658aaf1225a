namespace Cairn.Storage;

/// <summary>Kafka's topic name rules.</summary>
public static class TopicNames
{
    public const int MaxLength = 249;

    public static bool IsValid(string? name) => Explain(name) is null;

    /// <summary>Why <paramref name="name"/> is not a legal topic name, or null when it is.</summary>
    public static string? Explain(string? name)
    {
        string? error = null;
        if (string.IsNullOrEmpty(name)) error = "Topic name is empty";
        else if (name is "." or "..") error = "Topic name cannot be \".\" or \"..\"";
        else if (name.Length > MaxLength) error = $"Topic name is longer than {MaxLength} characters";
        else
        {
            foreach (char c in name)
            {
                if (c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or '-') continue;
                error = $"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
                break;
            }
        }
        return error;
    }
}
