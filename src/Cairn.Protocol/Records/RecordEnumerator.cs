using System.Text;

namespace Cairn.Protocol.Records;

/// <summary>
/// Allocation-free walk over the records of one batch's (decompressed) records section; see
/// <see cref="RecordBatch.GetRecordsSection"/>. Each record is checked as it is reached, and after the
/// last one the section must be used up exactly, as the Java client checks.
/// </summary>
public ref struct RecordEnumerator
{
    private readonly ReadOnlySpan<byte> _section;
    private readonly long _baseOffset;
    private readonly long _baseTimestamp;
    private readonly bool _logAppendTime;
    private readonly long _maxTimestamp;
    private readonly int _count;
    private int _index;
    private int _position;
    private RecordView _current;

    public RecordEnumerator(in RecordBatchHeader header, ReadOnlySpan<byte> recordsSection)
    {
        if (header.RecordCount < 0)
            throw new CorruptRecordException($"record batch declares {header.RecordCount} records");
        _section = recordsSection;
        _baseOffset = header.BaseOffset;
        _baseTimestamp = header.BaseTimestamp;
        _logAppendTime = header.IsLogAppendTime;
        _maxTimestamp = header.MaxTimestamp;
        _count = header.RecordCount;
    }

    public readonly RecordView Current => _current;
    public readonly RecordEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_index >= _count)
        {
            if (_position != _section.Length)
                throw new CorruptRecordException($"{_section.Length - _position} bytes left in the records section after the declared {_count} records");
            return false;
        }
        if (_position >= _section.Length)
            throw new CorruptRecordException($"records section ends after {_index} of the declared {_count} records");

        RecordParser.Parse(_section, ref _position, out var f);
        _index++;
        // With LogAppendTime the broker's time is the batch's maxTimestamp and applies to every record.
        long timestamp = _logAppendTime ? _maxTimestamp : _baseTimestamp + f.TimestampDelta;
        _current = new RecordView(_section, f, _baseOffset + f.OffsetDelta, timestamp);
        return true;
    }
}

/// <summary>A record as spans into the records section; valid while that section is.</summary>
public readonly ref struct RecordView
{
    private readonly ReadOnlySpan<byte> _section;
    private readonly RecordFields _f;

    internal RecordView(ReadOnlySpan<byte> section, RecordFields fields, long offset, long timestamp)
    {
        _section = section;
        _f = fields;
        Offset = offset;
        Timestamp = timestamp;
    }

    internal RecordFields Fields => _f;

    public long Offset { get; }
    public long Timestamp { get; }
    public sbyte Attributes => _f.Attributes;
    public int OffsetDelta => _f.OffsetDelta;
    public bool HasKey => _f.KeyLength >= 0;
    /// <summary>Empty when the key is null; see <see cref="HasKey"/>.</summary>
    public ReadOnlySpan<byte> Key => HasKey ? _section.Slice(_f.KeyStart, _f.KeyLength) : default;
    public bool HasValue => _f.ValueLength >= 0;
    /// <summary>Empty when the value is null; see <see cref="HasValue"/>.</summary>
    public ReadOnlySpan<byte> Value => HasValue ? _section.Slice(_f.ValueStart, _f.ValueLength) : default;
    public int HeaderCount => _f.HeaderCount;
    public RecordHeaderEnumerator Headers => new(_section, _f.HeadersStart, _f.End, _f.HeaderCount);
}

/// <summary>Walks a record's headers (already validated when the record was reached).</summary>
public ref struct RecordHeaderEnumerator
{
    private readonly ReadOnlySpan<byte> _section;
    private readonly int _end;
    private readonly int _count;
    private int _position;
    private int _index;
    private RecordHeaderView _current;

    internal RecordHeaderEnumerator(ReadOnlySpan<byte> section, int start, int end, int count)
    {
        _section = section;
        _position = start;
        _end = end;
        _count = count;
    }

    public readonly RecordHeaderView Current => _current;
    public readonly RecordHeaderEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_index >= _count) return false;
        RecordParser.ReadHeader(_section, ref _position, _end, out int ks, out int kl, out int vs, out int vl);
        _current = new RecordHeaderView(_section.Slice(ks, kl), vl >= 0, vl >= 0 ? _section.Slice(vs, vl) : default);
        _index++;
        return true;
    }
}

public readonly ref struct RecordHeaderView(ReadOnlySpan<byte> keyUtf8, bool hasValue, ReadOnlySpan<byte> value)
{
    public ReadOnlySpan<byte> KeyUtf8 { get; } = keyUtf8;
    public string Key => Encoding.UTF8.GetString(KeyUtf8);
    public bool HasValue { get; } = hasValue;
    /// <summary>Empty when the value is null; see <see cref="HasValue"/>.</summary>
    public ReadOnlySpan<byte> Value { get; } = value;
}
