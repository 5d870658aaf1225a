namespace Cairn.Protocol.Compression;

/// <summary>Compressed data is corrupt or truncated, or the codec reported an error.</summary>
public sealed class CompressionException : Exception
{
    public CompressionException(string message) : base(message) { }
    public CompressionException(string message, Exception inner) : base(message, inner) { }
}
