using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Cairn.Broker.Metrics;

/// <summary>
/// Aggregates one <see cref="Meter"/>'s measurements with a <see cref="MeterListener"/> and writes them in the
/// Prometheus text exposition format 0.0.4: HELP and TYPE lines per family, counters as <c>NAME_total</c> (monotonic
/// sums), up-down counters and gauges as gauges, histograms as cumulative <c>_bucket{le=...}</c> lines ending with
/// <c>+Inf</c>, then <c>_sum</c> and <c>_count</c>; one sample per series, series in label order.
/// Each instrument keeps at most <c>maxSeries</c> series: measurements for more are counted in
/// <c>cairn_metrics_series_dropped</c> and not exported.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";
    public const string DroppedFamily = "cairn_metrics_series_dropped";

    private readonly MeterListener _listener;
    private readonly List<InstrumentState> _instruments = [];
    private readonly int _maxSeries;
    private readonly Func<long>? _externalDropped;
    private readonly object _collectLock = new();
    private long _droppedSync;
    private long _droppedObservable;

    /// <param name="meter">the meter whose instruments are exported (other meters are ignored)</param>
    /// <param name="maxSeries">series kept per instrument</param>
    /// <param name="externalDropped">series the instruments' own callbacks left out (added to the dropped count)</param>
    public PrometheusExporter(Meter meter, int maxSeries, Func<long>? externalDropped = null)
    {
        _maxSeries = maxSeries;
        _externalDropped = externalDropped;
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (!ReferenceEquals(instrument.Meter, meter)) return;
                var state = InstrumentState.TryCreate(instrument, this);
                if (state is null) return;
                lock (_instruments) _instruments.Add(state);
                listener.EnableMeasurementEvents(instrument, state);
            },
            MeasurementsCompleted = (_, state) => { lock (_instruments) _instruments.Remove((InstrumentState)state!); },
        };
        _listener.SetMeasurementEventCallback<long>(static (_, v, tags, s) => ((InstrumentState)s!).Record(v, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, v, tags, s) => ((InstrumentState)s!).Record(v, tags));
        _listener.SetMeasurementEventCallback<short>(static (_, v, tags, s) => ((InstrumentState)s!).Record(v, tags));
        _listener.SetMeasurementEventCallback<byte>(static (_, v, tags, s) => ((InstrumentState)s!).Record(v, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, v, tags, s) => ((InstrumentState)s!).Record(v, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, v, tags, s) => ((InstrumentState)s!).Record(v, tags));
        _listener.SetMeasurementEventCallback<decimal>(static (_, v, tags, s) => ((InstrumentState)s!).Record((double)v, tags));
        _listener.Start();
    }

    /// <summary>Observes the observable instruments and renders every family.</summary>
    public string Collect()
    {
        var sb = new StringBuilder(16 * 1024);
        lock (_collectLock)
        {
            InstrumentState[] instruments;
            lock (_instruments) instruments = _instruments.ToArray();
            Interlocked.Exchange(ref _droppedObservable, 0);
            foreach (var i in instruments) if (i.Observable) i.Clear();
            try
            {
                _listener.RecordObservableInstruments();
            }
            catch (AggregateException)
            {
                // A callback failed (it is reported by its own instrument's absence); the rest is still worth exporting.
            }

            var families = new HashSet<string>(StringComparer.Ordinal) { DroppedFamily };
            foreach (var i in instruments)
                if (families.Add(i.Family)) i.Render(sb);

            long dropped = Interlocked.Read(ref _droppedSync) + Interlocked.Read(ref _droppedObservable) + (_externalDropped?.Invoke() ?? 0);
            sb.Append("# HELP ").Append(DroppedFamily).Append(" Series left out of this exposition because an instrument reached metrics.max.series\n");
            sb.Append("# TYPE ").Append(DroppedFamily).Append(" gauge\n");
            sb.Append(DroppedFamily).Append(' ').Append(dropped.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        return sb.ToString();
    }

    public void Dispose() => _listener.Dispose();

    // ------------------------------------------------------------------ formatting

    /// <summary>A metric or label name reduced to [a-zA-Z_:][a-zA-Z0-9_:]* (no colon in label names).</summary>
    public static string SanitizeName(string name, bool label = false)
    {
        var sb = new StringBuilder(name.Length + 1);
        foreach (char c in name)
            sb.Append(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '_' || (!label && c == ':') ? c : '_');
        if (sb.Length == 0 || char.IsAsciiDigit(sb[0])) sb.Insert(0, '_');
        if (label && sb.Length >= 2 && sb[0] == '_' && sb[1] == '_') sb.Insert(0, 'x');
        return sb.ToString();
    }

    /// <summary>Label value escaping: backslash, double quote and line feed.</summary>
    public static string EscapeLabelValue(string value)
    {
        if (value.AsSpan().IndexOfAny("\\\"\n") < 0) return value;
        return value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
    }

    /// <summary>HELP text escaping: backslash and line feed.</summary>
    public static string EscapeHelp(string value) => value.Replace("\\", "\\\\").Replace("\n", "\\n");

    public static string FormatDouble(double v) =>
        double.IsNaN(v) ? "NaN"
        : double.IsPositiveInfinity(v) ? "+Inf"
        : double.IsNegativeInfinity(v) ? "-Inf"
        : v.ToString("R", CultureInfo.InvariantCulture);

    private static string FormatTagValue(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    // ------------------------------------------------------------------ aggregation

    private enum Kind { Counter, Gauge, Histogram }

    private sealed class InstrumentState
    {
        private readonly PrometheusExporter _owner;
        private readonly ConcurrentDictionary<TagKey, Series> _series = new();
        private readonly bool _cumulative; // observable counters report totals; gauges report values: both replace
        private readonly bool _integer;
        private readonly double[] _bounds;
        private readonly string _help;
        private readonly Kind _kind;
        private int _count;

        private InstrumentState(PrometheusExporter owner, Instrument instrument, Kind kind, bool observable, bool replace, bool integer, double[] bounds)
        {
            _owner = owner;
            _kind = kind;
            Observable = observable;
            _cumulative = replace;
            _integer = integer;
            _bounds = bounds;
            var name = SanitizeName(instrument.Name);
            Family = kind == Kind.Counter && !name.EndsWith("_total", StringComparison.Ordinal) ? name + "_total" : name;
            _help = EscapeHelp(string.IsNullOrEmpty(instrument.Description) ? instrument.Name : instrument.Description);
        }

        public bool Observable { get; }
        public string Family { get; }

        public static InstrumentState? TryCreate(Instrument instrument, PrometheusExporter owner)
        {
            var type = instrument.GetType();
            if (!type.IsGenericType) return null;
            var definition = type.GetGenericTypeDefinition();
            var valueType = type.GetGenericArguments()[0];
            bool integer = valueType == typeof(long) || valueType == typeof(int) || valueType == typeof(short) || valueType == typeof(byte);
            if (definition == typeof(Counter<>)) return new(owner, instrument, Kind.Counter, false, false, integer, []);
            if (definition == typeof(ObservableCounter<>)) return new(owner, instrument, Kind.Counter, true, true, integer, []);
            if (definition == typeof(UpDownCounter<>)) return new(owner, instrument, Kind.Gauge, false, false, integer, []);
            if (definition == typeof(ObservableUpDownCounter<>)) return new(owner, instrument, Kind.Gauge, true, true, integer, []);
            if (definition == typeof(ObservableGauge<>)) return new(owner, instrument, Kind.Gauge, true, true, integer, []);
            if (definition == typeof(Gauge<>)) return new(owner, instrument, Kind.Gauge, false, true, integer, []);
            if (definition == typeof(Histogram<>)) return new(owner, instrument, Kind.Histogram, false, false, false, BoundsOf(instrument));
            return null;
        }

        private static double[] BoundsOf(Instrument instrument)
        {
            IReadOnlyList<double>? advised = instrument switch
            {
                Histogram<double> h => h.Advice?.HistogramBucketBoundaries,
                Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                _ => null,
            };
            var bounds = (advised ?? BrokerMetrics.DurationBuckets).Where(double.IsFinite).Distinct().Order().ToArray();
            return bounds;
        }

        public void Clear()
        {
            _series.Clear();
            Interlocked.Exchange(ref _count, 0);
        }

        private Series? SeriesFor(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var key = TagKey.From(tags);
            if (_series.TryGetValue(key, out var series)) return series;
            if (Interlocked.Increment(ref _count) > _owner._maxSeries)
            {
                Interlocked.Decrement(ref _count);
                Interlocked.Increment(ref Observable ? ref _owner._droppedObservable : ref _owner._droppedSync);
                return null;
            }
            var created = new Series(key, _kind == Kind.Histogram ? _bounds.Length + 1 : 0);
            if (_series.TryAdd(key, created)) return created;
            Interlocked.Decrement(ref _count);
            return _series[key];
        }

        public void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (_kind == Kind.Histogram || !_integer) { Record((double)value, tags); return; }
            var s = SeriesFor(tags);
            if (s is null) return;
            if (_cumulative) Interlocked.Exchange(ref s.Long, value);
            else Interlocked.Add(ref s.Long, value);
        }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (_integer && _kind != Kind.Histogram) { Record((long)value, tags); return; }
            var s = SeriesFor(tags);
            if (s is null) return;
            if (_kind == Kind.Histogram)
            {
                if (double.IsNaN(value)) return;
                int i = Array.BinarySearch(_bounds, value);
                if (i < 0) i = ~i; // first bound >= value: Prometheus buckets count values <= le
                Interlocked.Increment(ref s.Buckets![i]);
                AddDouble(ref s.Double, value);
            }
            else if (_cumulative) Interlocked.Exchange(ref s.Double, value);
            else AddDouble(ref s.Double, value);
        }

        private static void AddDouble(ref double target, double value)
        {
            double seen = Volatile.Read(ref target);
            while (true)
            {
                double found = Interlocked.CompareExchange(ref target, seen + value, seen);
                if (found.Equals(seen)) return;
                seen = found;
            }
        }

        public void Render(StringBuilder sb)
        {
            sb.Append("# HELP ").Append(Family).Append(' ').Append(_help).Append('\n');
            sb.Append("# TYPE ").Append(Family).Append(' ').Append(_kind switch { Kind.Counter => "counter", Kind.Gauge => "gauge", _ => "histogram" }).Append('\n');
            var all = _series.Values.ToArray();
            Array.Sort(all, static (a, b) => a.Key.CompareTo(b.Key));
            foreach (var s in all)
            {
                if (_kind != Kind.Histogram)
                {
                    sb.Append(Family);
                    AppendLabels(sb, s.Labels, null);
                    sb.Append(' ').Append(_integer ? Interlocked.Read(ref s.Long).ToString(CultureInfo.InvariantCulture) : FormatDouble(Volatile.Read(ref s.Double))).Append('\n');
                    continue;
                }
                long cumulative = 0;
                for (int i = 0; i <= _bounds.Length; i++)
                {
                    cumulative += Interlocked.Read(ref s.Buckets![i]);
                    sb.Append(Family).Append("_bucket");
                    AppendLabels(sb, s.Labels, i < _bounds.Length ? FormatDouble(_bounds[i]) : "+Inf");
                    sb.Append(' ').Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }
                sb.Append(Family).Append("_sum");
                AppendLabels(sb, s.Labels, null);
                sb.Append(' ').Append(FormatDouble(Volatile.Read(ref s.Double))).Append('\n');
                sb.Append(Family).Append("_count");
                AppendLabels(sb, s.Labels, null);
                sb.Append(' ').Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }

        private static void AppendLabels(StringBuilder sb, string labels, string? le)
        {
            if (labels.Length == 0 && le is null) return;
            sb.Append('{').Append(labels);
            if (le is not null) sb.Append(labels.Length > 0 ? "," : "").Append("le=\"").Append(le).Append('"');
            sb.Append('}');
        }
    }

    private sealed class Series(TagKey key, int buckets)
    {
        public readonly TagKey Key = key;
        /// <summary>The rendered label pairs, without braces: <c>a="x",b="y"</c>.</summary>
        public readonly string Labels = key.Render();
        public long Long;
        public double Double;
        public readonly long[]? Buckets = buckets > 0 ? new long[buckets] : null;
    }

    /// <summary>
    /// A series' identity: its tags sorted by name. Up to three tags are held inline so looking up an existing
    /// series allocates nothing (the request path has one tag).
    /// </summary>
    private readonly struct TagKey : IEquatable<TagKey>, IComparable<TagKey>
    {
        private readonly int _count;
        private readonly KeyValuePair<string, object?> _t0, _t1, _t2;
        private readonly KeyValuePair<string, object?>[]? _more;

        private TagKey(ReadOnlySpan<KeyValuePair<string, object?>> sorted)
        {
            _count = sorted.Length;
            if (_count > 3) { _more = sorted.ToArray(); return; }
            if (_count > 0) _t0 = sorted[0];
            if (_count > 1) _t1 = sorted[1];
            if (_count > 2) _t2 = sorted[2];
        }

        public static TagKey From(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            switch (tags.Length)
            {
                case 0:
                    return default;
                case 1:
                    return new TagKey(tags[0], default, default, 1);
                case 2 or 3:
                {
                    // Small and frequent: sort in locals, no allocation.
                    KeyValuePair<string, object?> a = tags[0], b = tags[1], c = tags.Length > 2 ? tags[2] : default;
                    if (string.CompareOrdinal(a.Key, b.Key) > 0) (a, b) = (b, a);
                    if (tags.Length > 2)
                    {
                        if (string.CompareOrdinal(b.Key, c.Key) > 0) (b, c) = (c, b);
                        if (string.CompareOrdinal(a.Key, b.Key) > 0) (a, b) = (b, a);
                    }
                    return new TagKey(a, b, c, tags.Length);
                }
                default:
                {
                    var sorted = tags.ToArray();
                    Array.Sort(sorted, static (x, y) => string.CompareOrdinal(x.Key, y.Key));
                    return new TagKey(sorted);
                }
            }
        }

        private TagKey(KeyValuePair<string, object?> a, KeyValuePair<string, object?> b, KeyValuePair<string, object?> c, int count)
        {
            _count = count;
            _t0 = a;
            _t1 = b;
            _t2 = c;
        }

        private KeyValuePair<string, object?> this[int i] => _more is not null ? _more[i] : i switch { 0 => _t0, 1 => _t1, _ => _t2 };

        public bool Equals(TagKey other)
        {
            if (_count != other._count) return false;
            for (int i = 0; i < _count; i++)
            {
                var x = this[i];
                var y = other[i];
                if (!string.Equals(x.Key, y.Key, StringComparison.Ordinal) || !Equals(x.Value, y.Value)) return false;
            }
            return true;
        }

        public override bool Equals(object? obj) => obj is TagKey other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            for (int i = 0; i < _count; i++)
            {
                var t = this[i];
                hash.Add(t.Key);
                hash.Add(t.Value);
            }
            return hash.ToHashCode();
        }

        /// <summary>Orders series by their label values: numbers numerically, everything else ordinally.</summary>
        public int CompareTo(TagKey other)
        {
            for (int i = 0; i < Math.Min(_count, other._count); i++)
            {
                var x = this[i];
                var y = other[i];
                int c = string.CompareOrdinal(x.Key, y.Key);
                if (c != 0) return c;
                c = x.Value is IConvertible && y.Value is IConvertible && IsInteger(x.Value) && IsInteger(y.Value)
                    ? Convert.ToInt64(x.Value, CultureInfo.InvariantCulture).CompareTo(Convert.ToInt64(y.Value, CultureInfo.InvariantCulture))
                    : string.CompareOrdinal(FormatTagValue(x.Value), FormatTagValue(y.Value));
                if (c != 0) return c;
            }
            return _count.CompareTo(other._count);
        }

        private static bool IsInteger(object? v) => v is int or long or short or byte or uint or ushort or sbyte;

        public string Render()
        {
            var sb = new StringBuilder();
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < _count; i++)
            {
                var t = this[i];
                var name = SanitizeName(t.Key, label: true);
                if (name == "le") name = "le_"; // reserved for histogram buckets
                if (!names.Add(name)) continue; // two tags that sanitize alike: keep the first
                if (sb.Length > 0) sb.Append(',');
                sb.Append(name).Append("=\"").Append(EscapeLabelValue(FormatTagValue(t.Value))).Append('"');
            }
            return sb.ToString();
        }
    }
}
