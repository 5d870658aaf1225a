using System.Globalization;

namespace Cairn.Broker.Handlers;

/// <summary>
/// Hands out producer ids that are never reused across restarts: ids are reserved in blocks and the
/// end of the current block is made durable before any id from it is given out.
/// </summary>
internal sealed class ProducerIdAllocator
{
    private const long BlockSize = 1000;
    private readonly string _path;
    private readonly object _lock = new();
    private long _next;
    private long _blockEnd;

    public ProducerIdAllocator(string dataDir)
    {
        _path = Path.Combine(dataDir, "producer-ids");
        if (File.Exists(_path))
        {
            var text = File.ReadAllText(_path).Trim();
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _next))
                throw new InvalidDataException($"{_path} does not hold a producer id block end: '{text}'");
        }
        _blockEnd = _next;
    }

    public long Allocate()
    {
        lock (_lock)
        {
            if (_next == _blockEnd) ReserveBlock();
            return _next++;
        }
    }

    private void ReserveBlock()
    {
        long end = _blockEnd + BlockSize;
        // The directory is fsynced too: a power loss must not bring back the previous block end (ids handed out again).
        Cairn.Storage.DurableFile.WriteAtomic(_path, System.Text.Encoding.ASCII.GetBytes(end.ToString(CultureInfo.InvariantCulture)));
        _blockEnd = end;
    }
}
