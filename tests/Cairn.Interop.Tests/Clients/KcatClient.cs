using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Clients;

/// <summary>
/// kcat (librdkafka) driven from C#.
/// Producing: records go through stdin split by a multi-byte delimiter, keys by another;
/// a message without the key delimiter has a null key, "KEYDELIM..." an empty key; -Z turns an
/// empty value into null. Headers (-H) are fixed per invocation, so records are produced in
/// runs of consecutive records with equal partition and headers. kcat cannot set timestamps.
/// Consuming: a -f format with key/value lengths (-1 = null) makes binary output parseable.
/// </summary>
public sealed class KcatClient : IKafkaClient
{
    public const string Exe = "kcat";
    private const string RecordDelimiter = "<~CAIRN-REC~>";
    private const string KeyDelimiter = "<~CAIRN-KEY~>";
    private static readonly byte[] HeaderEnd = [0x1e, 0x1f, 0x1e, (byte)'\n'];
    private const string Format = "%p %o %T %K %S\\n%k%s\\n%h\\x1e\\x1f\\x1e\\n";

    public string Name => "kcat";

    public ClientCaps Caps { get; } = new()
    {
        Codecs = ["none", "gzip", "snappy", "lz4", "zstd"],
        NullKeyAndNullValue = false,
        PerRecordHeaders = false,
        NullHeaderValues = false,
        Timestamps = false,
        ExactHeadersOnConsume = false,
    };

    public override string ToString() => Name;

    public async Task<ProduceResult> ProduceAsync(string bootstrap, string topic, IReadOnlyList<OutRecord> records,
        string codec = "none", bool idempotent = false)
    {
        var diagnostics = new StringBuilder();
        var i = 0;
        while (i < records.Count)
        {
            var first = records[i];
            var nullRun = first.Value is null;
            var run = new List<OutRecord>();
            while (i < records.Count && records[i].Partition == first.Partition && SameHeaders(records[i].Headers, first.Headers)
                   && (records[i].Value is null) == nullRun)
                run.Add(records[i++]);

            var args = new List<string>
            {
                "-P", "-b", bootstrap, "-t", topic, "-p", first.Partition.ToString(CultureInfo.InvariantCulture),
                "-D", RecordDelimiter, "-K", KeyDelimiter, "-m", "15",
                "-X", $"compression.codec={codec}", "-X", "acks=all",
            };
            if (idempotent) args.AddRange(["-X", "enable.idempotence=true"]);
            if (nullRun) args.Add("-Z");
            foreach (var h in first.Headers)
            {
                if (h.Value is null) throw new NotSupportedException("kcat cannot produce a null header value");
                args.AddRange(["-H", $"{h.Key}={Encoding.UTF8.GetString(h.Value)}"]);
            }
            var r = await ChildProcess.RunAsync(Exe, args, TimeSpan.FromSeconds(60), stdin: Stdin(run, nullRun));
            diagnostics.AppendLine(r.Describe());
            if (r.ExitCode != 0 || r.Stderr.Contains("ERROR", StringComparison.Ordinal))
                throw new ExternalCommandException($"kcat produce ({codec}) to {topic} failed. {r.Describe()}");
        }
        return new ProduceResult { Acks = null, Diagnostics = diagnostics.ToString() };
    }

    private static bool SameHeaders(IReadOnlyList<KHeader> a, IReadOnlyList<KHeader> b) =>
        a.Count == b.Count && a.Zip(b).All(p => p.First.Key == p.Second.Key && Same(p.First.Value, p.Second.Value));

    private static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    private static byte[] Stdin(List<OutRecord> run, bool nullValues)
    {
        using var ms = new MemoryStream();
        var rec = Encoding.ASCII.GetBytes(RecordDelimiter);
        var key = Encoding.ASCII.GetBytes(KeyDelimiter);
        foreach (var r in run)
        {
            var value = r.Value ?? [];
            if (Contains(value, rec) || Contains(value, key) || (r.Key is not null && (Contains(r.Key, rec) || Contains(r.Key, key))))
                throw new NotSupportedException("record contains a kcat delimiter");
            if (nullValues && (r.Key is null || r.Key.Length == 0))
                throw new NotSupportedException("kcat -Z: a null value needs a non-empty key (an empty key would turn null too)");
            if (!nullValues && r.Key is null && value.Length == 0)
                throw new NotSupportedException("kcat skips an empty message: null key with empty value cannot be produced");
            if (r.Key is not null)
            {
                ms.Write(r.Key);
                ms.Write(key);
            }
            ms.Write(value);
            ms.Write(rec);
        }
        return ms.ToArray();
    }

    private static bool Contains(byte[] hay, byte[] needle) => hay.AsSpan().IndexOf(needle) >= 0;

    public async Task<RunningConsumer> StartConsumeAsync(string bootstrap, string topic, int count, StartAt start,
        int[]? partitions = null, TimeSpan? timeout = null)
    {
        var bound = timeout ?? TimeSpan.FromSeconds(30);
        var args = new List<string> { "-C", "-b", bootstrap, "-t", topic, "-m", "15", "-c", count.ToString(CultureInfo.InvariantCulture), "-f", Format };
        if (partitions is { Length: 1 }) args.AddRange(["-p", partitions[0].ToString(CultureInfo.InvariantCulture)]);
        else if (partitions is { Length: > 1 }) throw new NotSupportedException("kcat consumes one partition or all of them");
        args.AddRange(["-o", start switch
        {
            StartAt.OffsetStart o => o.Value.ToString(CultureInfo.InvariantCulture),
            StartAt.TimestampStart t => $"s@{t.Ms}",
            _ when start == StartAt.Latest => "end",
            _ => "beginning",
        }]);
        // -e: exit at the end of every partition (not for Latest, which starts there).
        if (start != StartAt.Latest) args.Add("-e");

        var p = ChildProcess.Start(Exe, args);
        if (start == StartAt.Latest)
        {
            // kcat reports "% Reached end of topic T [p] at offset N" once positioned at the end.
            var marker = partitions is { Length: 1 } ? $"Reached end of topic {topic} [{partitions[0]}]" : $"Reached end of topic {topic} [";
            try
            {
                await p.WaitForStderrLineAsync(l => l.Contains(marker, StringComparison.Ordinal), TimeSpan.FromSeconds(40),
                    $"kcat to reach the end of {topic}");
            }
            catch
            {
                await p.DisposeAsync();
                throw;
            }
        }
        return new Running(p, bound + TimeSpan.FromSeconds(20));
    }

    private sealed class Running(ChildProcess process, TimeSpan timeout) : RunningConsumer(process, timeout)
    {
        public override async Task<ConsumeResult> FinishAsync()
        {
            var r = await Process.WaitForExitAsync(Timeout);
            if (r.ExitCode != 0)
                throw new ExternalCommandException($"kcat consumer failed. {r.Describe()}");
            return new ConsumeResult { Records = ParseOutput(r.StdoutBytes, r.Describe()), Diagnostics = r.Describe() };
        }
    }

    /// <summary>Parses "%p %o %T %K %S\n%k%s\n%h\x1e\x1f\x1e\n" records.</summary>
    internal static List<KRecord> ParseOutput(byte[] output, string context)
    {
        var records = new List<KRecord>();
        var pos = 0;
        while (pos < output.Length)
        {
            var nl = Array.IndexOf(output, (byte)'\n', pos);
            if (nl < 0) throw new FormatException($"kcat output: truncated record header at byte {pos}. {context}");
            var fields = Encoding.ASCII.GetString(output, pos, nl - pos).Split(' ');
            if (fields.Length != 5) throw new FormatException($"kcat output: bad record header '{string.Join(' ', fields)}'. {context}");
            var keyLen = int.Parse(fields[3], CultureInfo.InvariantCulture);
            var valueLen = int.Parse(fields[4], CultureInfo.InvariantCulture);
            pos = nl + 1;
            byte[]? key = keyLen < 0 ? null : output.AsSpan(pos, keyLen).ToArray();
            pos += Math.Max(0, keyLen);
            byte[]? value = valueLen < 0 ? null : output.AsSpan(pos, valueLen).ToArray();
            pos += Math.Max(0, valueLen);
            if (pos >= output.Length || output[pos] != (byte)'\n') throw new FormatException($"kcat output: missing separator at byte {pos}. {context}");
            pos++;
            var end = output.AsSpan(pos).IndexOf(HeaderEnd);
            if (end < 0) throw new FormatException($"kcat output: unterminated headers at byte {pos}. {context}");
            var headers = output.AsSpan(pos, end).ToArray();
            pos += end + HeaderEnd.Length;
            records.Add(new KRecord
            {
                Partition = int.Parse(fields[0], CultureInfo.InvariantCulture),
                Offset = long.Parse(fields[1], CultureInfo.InvariantCulture),
                Timestamp = long.Parse(fields[2], CultureInfo.InvariantCulture),
                Key = key,
                Value = value,
                HeadersRendered = headers,
            });
        }
        return records;
    }

    /// <summary>How kcat's %h prints headers: name=value joined by ',', NULL for null, value cut at a NUL byte.</summary>
    public static byte[] RenderHeaders(IReadOnlyList<KHeader> headers)
    {
        using var ms = new MemoryStream();
        for (var i = 0; i < headers.Count; i++)
        {
            if (i > 0) ms.WriteByte((byte)',');
            ms.Write(Encoding.UTF8.GetBytes(headers[i].Key));
            ms.WriteByte((byte)'=');
            var v = headers[i].Value;
            if (v is null)
            {
                ms.Write("NULL"u8);
            }
            else
            {
                var nul = Array.IndexOf(v, (byte)0);
                ms.Write(v, 0, nul < 0 ? v.Length : nul);
            }
        }
        return ms.ToArray();
    }

    /// <summary>`kcat -L -J` metadata (all topics unless one is named; naming one may auto-create it).</summary>
    public static async Task<JsonElement> MetadataAsync(string bootstrap, string? topic = null)
    {
        var args = new List<string> { "-L", "-J", "-b", bootstrap, "-m", "15" };
        if (topic is not null) args.AddRange(["-t", topic]);
        var r = await ChildProcess.RunCheckedAsync(Exe, args, TimeSpan.FromSeconds(40));
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    /// <summary>`kcat -Q`: the first offset whose timestamp is >= ts (-1 if none).</summary>
    public static async Task<long> OffsetForTimeAsync(string bootstrap, string topic, int partition, long ts)
    {
        var r = await ChildProcess.RunCheckedAsync(Exe, ["-Q", "-b", bootstrap, "-m", "15", "-t", $"{topic}:{partition}:{ts}"], TimeSpan.FromSeconds(40));
        // "<topic> [<partition>] offset <offset>"
        var line = r.StdoutLines.FirstOrDefault(l => l.Contains(" offset ", StringComparison.Ordinal))
                   ?? throw new ExternalCommandException($"kcat -Q printed no offset. {r.Describe()}");
        return long.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
}
