namespace Cairn.Cli.Tool;

/// <summary>
/// Splits a byte stream into records at a delimiter (kcat -D), bytes as they are: values may be binary. The last
/// record needs no trailing delimiter. With <c>trimCarriageReturn</c> (newline-delimited text) a CR before the
/// delimiter is dropped, so CRLF files read as expected.
/// </summary>
internal sealed class DelimitedReader(Stream stream, byte[] delimiter, bool trimCarriageReturn)
{
    private byte[] _buffer = new byte[64 * 1024];
    private int _start, _end;
    // Where to resume searching: the bytes before it hold no delimiter (less its length - 1, as one may straddle a read).
    private int _searched;
    private bool _eof;

    /// <summary>The next record, or null at the end of the stream.</summary>
    public async ValueTask<byte[]?> ReadAsync(CancellationToken cancellationToken)
    {
        if (delimiter.Length == 0) throw new ArgumentException("the delimiter is empty", nameof(delimiter));
        while (true)
        {
            int from = Math.Max(_start, _searched - (delimiter.Length - 1));
            int at = _buffer.AsSpan(from, _end - from).IndexOf(delimiter);
            if (at >= 0)
            {
                var record = Take(from + at - _start);
                _start = from + at + delimiter.Length;
                _searched = _start;
                return record;
            }
            _searched = _end;
            if (_eof)
            {
                if (_start == _end) return null;
                var last = Take(_end - _start);
                _start = _searched = _end;
                return last;
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _searched -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
            int n = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (n == 0) _eof = true;
            else _end += n;
        }
    }

    private byte[] Take(int length)
    {
        if (trimCarriageReturn && length > 0 && _buffer[_start + length - 1] == (byte)'\r') length--;
        return _buffer.AsSpan(_start, length).ToArray();
    }
}
