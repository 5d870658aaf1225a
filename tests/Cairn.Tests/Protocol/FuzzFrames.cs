using System.Buffers.Binary;
using System.Reflection;
using Cairn.Protocol;
using Cairn.Protocol.Compression;
using Cairn.Protocol.Messages;
using Cairn.Protocol.Primitives;
using Cairn.Protocol.Records;
using Cairn.Protocol.Schema;
using Cairn.Tests.Broker;

namespace Cairn.Tests.Protocol;

/// <summary>One generated request frame (size prefix included) and what it was made from.</summary>
public sealed record FuzzFrame(long Index, ApiKey ApiKey, short Version, byte[] Bytes, bool EndsMidFrame);

/// <summary>
/// Mutated request frames for every API and version in <paramref name="served"/>, generated from the message
/// declarations: each starts from a valid request encoded from the schema (every field set and one element per array,
/// see <see cref="NullFieldFrames.Filled"/>, made plausible so it reaches the handler, or the empty message). 40% then
/// get one to three field values set to extremes in the message (-1, 0, MinValue/MaxValue, empty, long or odd names,
/// null, lists repeated up to 50 times, other record batches) and are encoded again; the rest take one to three byte
/// mutations: bit flips, byte substitutions, truncation, extension, insertions and deletions, int16/int32 and varint
/// length or count fields overwritten with -1 (null), 0 or huge values, tagged-field sections. A few frames stay valid;
/// a few corrupt the header or the outer size. Frame <c>i</c> depends only on the seed and <c>i</c> (round-robin over the API versions), so
/// a failure can be replayed; its correlation id is <c>i</c>, which the broker's log lines name.
/// </summary>
public sealed class FuzzFrames
{
    /// <summary>Partitions a generated CreateTopics or CreatePartitions may ask for in all; more is regenerated.</summary>
    public const int MaxPartitionsPerRequest = 4;

    private readonly record struct Base(ApiKey ApiKey, short Version, byte[] Frame, int BodyStart, Type Type, bool Filled);

    private readonly Base[] _bases;
    private readonly int _seed;
    private readonly byte[] _forbidden;

    /// <param name="served">(api, min version, max version) as ApiVersions reports them.</param>
    /// <param name="forbiddenName">A name no frame may contain (the topic whose records must survive).</param>
    public FuzzFrames(IEnumerable<(ApiKey Api, short Min, short Max)> served, int seed, string forbiddenName)
    {
        _seed = seed;
        _forbidden = System.Text.Encoding.UTF8.GetBytes(forbiddenName);
        var bases = new List<Base>();
        foreach (var (api, min, max) in served)
        {
            var type = MessageCatalog.Request(api)!.Type;
            for (short v = min; v <= max; v++)
            {
                bases.Add(Frame(api, v, Plausible(NullFieldFrames.Filled(type, v)), filled: true));
                bases.Add(Frame(api, v, Plausible(Activator.CreateInstance(type)!), filled: false));
            }
        }
        _bases = [.. bases];
    }

    /// <summary>Every (api, version) the frames cover, each reached within the first <see cref="Count"/> frames.</summary>
    public IEnumerable<(ApiKey, short)> Covered => _bases.Select(b => (b.ApiKey, b.Version)).Distinct();

    /// <summary>Number of base frames: frames 0..Count-1 use each once.</summary>
    public int Count => _bases.Length;

    public FuzzFrame Get(long index)
    {
        var b = _bases[index % _bases.Length];
        var rng = new Random(unchecked((int)(_seed * 1_000_003L + index)));
        for (int attempt = 0; attempt < 16; attempt++)
        {
            var (bytes, endsMidFrame) = Mutate(b, rng, (int)index);
            if (Acceptable(b, bytes)) return new FuzzFrame(index, b.ApiKey, b.Version, bytes, endsMidFrame);
        }
        return new FuzzFrame(index, b.ApiKey, b.Version, WithCorrelationId(b.Frame, (int)index), false);
    }

    private (byte[] Bytes, bool EndsMidFrame) Mutate(Base b, Random rng, int correlationId)
    {
        int roll = rng.Next(100);
        if (roll < 40)
        {
            // Structure-aware: field values set to extremes in the message itself, so the frame still decodes and the
            // handler, not the decoder, meets them; now and then one byte-level mutation on top.
            var message = Plausible(b.Filled ? NullFieldFrames.Filled(b.Type, b.Version) : Activator.CreateInstance(b.Type)!);
            var slots = new List<(object Owner, PropertyInfo Property)>();
            Slots(message, b.Version, slots);
            for (int m = 1 + rng.Next(3); m > 0 && slots.Count > 0; m--)
            {
                var (owner, property) = slots[rng.Next(slots.Count)];
                property.SetValue(owner, Extreme(property, property.GetValue(owner), rng));
            }
            var encoded = Frame(b.ApiKey, b.Version, message, b.Filled);
            var mutated = new List<byte>(WithCorrelationId(encoded.Frame, correlationId));
            if (rng.Next(5) == 0) MutateOnce(mutated, encoded.BodyStart, rng);
            var result = mutated.ToArray();
            BinaryPrimitives.WriteInt32BigEndian(result, result.Length - 4);
            return (result, false);
        }
        var frame = new List<byte>(WithCorrelationId(b.Frame, correlationId));
        if (roll < 46) return ([.. frame], false); // a valid request now and then keeps groups, sessions and topics moving
        // Mostly the body; sometimes anywhere after the size (api key, version, client id, header tags).
        int start = roll < 52 ? 4 : b.BodyStart;
        int mutations = 1 + rng.Next(3);
        for (int m = 0; m < mutations; m++) MutateOnce(frame, start, rng);
        var bytes = frame.ToArray();
        int size = bytes.Length - 4;
        bool endsMidFrame = false;
        if (rng.Next(100) == 0)
        {
            // The outer size disagrees with the bytes sent: the sender then half-closes, so a broker waiting for the rest sees the end.
            size += rng.Next(2) == 0 ? -1 - rng.Next(Math.Max(1, Math.Min(size, 8))) : 1 + rng.Next(64);
            endsMidFrame = true;
        }
        BinaryPrimitives.WriteInt32BigEndian(bytes, size);
        return (bytes, endsMidFrame);
    }

    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF];

    private static void MutateOnce(List<byte> f, int start, Random rng)
    {
        int Pos() => f.Count > start ? start + rng.Next(f.Count - start) : start;
        void Put(int pos, ReadOnlySpan<byte> value)
        {
            for (int i = 0; i < value.Length; i++)
            {
                if (pos + i < f.Count) f[pos + i] = value[i];
                else f.Add(value[i]);
            }
        }
        Span<byte> scratch = stackalloc byte[5];
        switch (rng.Next(10))
        {
            case 0: // bit flip
                if (f.Count > start) { int p = Pos(); f[p] ^= (byte)(1 << rng.Next(8)); }
                break;
            case 1: // byte substitution
                if (f.Count > start) f[Pos()] = rng.Next(2) == 0 ? Interesting[rng.Next(Interesting.Length)] : (byte)rng.Next(256);
                break;
            case 2: // truncation
                if (f.Count > start) { int p = Pos(); f.RemoveRange(p, f.Count - p); }
                break;
            case 3: // extension
                for (int i = rng.Next(1, 33); i > 0; i--) f.Add((byte)rng.Next(256));
                break;
            case 4: // an int16 length (string, classic array count): null, zero, huge, or random
                BinaryPrimitives.WriteInt16BigEndian(scratch, rng.Next(4) switch { 0 => -1, 1 => 0, 2 => short.MaxValue, _ => (short)rng.Next(-2, 300) });
                Put(Pos(), scratch[..2]);
                break;
            case 5: // an int32 length or count (bytes, records, array): null, zero, huge, or random
                BinaryPrimitives.WriteInt32BigEndian(scratch, rng.Next(5) switch { 0 => -1, 1 => 0, 2 => int.MaxValue, 3 => 0x0010_0000, _ => rng.Next(-2, 5000) });
                Put(Pos(), scratch[..4]);
                break;
            case 6: // a compact (varint) length: 0 is null, or huge, or unterminated
                int which = rng.Next(3);
                if (which == 0) Put(Pos(), [0]);
                else if (which == 1) Put(Pos(), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
                else Put(Pos(), [0x80, 0x80, 0x80, 0x80, 0x80]);
                break;
            case 7: // insertion
                {
                    int p = Pos();
                    for (int i = rng.Next(1, 9); i > 0; i--) f.Insert(Math.Min(p, f.Count), (byte)rng.Next(256));
                    break;
                }
            case 8: // deletion
                if (f.Count > start) { int p = Pos(); f.RemoveRange(p, Math.Min(f.Count - p, rng.Next(1, 9))); }
                break;
            default: // a tagged-field section: count 1, unknown or known tag, a size
                Put(Pos(), [1, (byte)rng.Next(4), (byte)rng.Next(0, 40)]);
                break;
        }
    }

    /// <summary>
    /// False for a frame naming the protected topic, or a CreateTopics/CreatePartitions that decodes and asks for more
    /// than <see cref="MaxPartitionsPerRequest"/> partitions (a partition limit is another setting's job; here the
    /// broker's open files must stay bounded).
    /// </summary>
    private bool Acceptable(Base b, byte[] frame)
    {
        if (frame.AsSpan().IndexOf(_forbidden) >= 0) return false;
        if (b.ApiKey is not (ApiKey.CreateTopics or ApiKey.CreatePartitions)) return true;
        try
        {
            var reader = new KafkaReader(frame.AsMemory(4));
            var header = RequestHeader.Read(reader);
            if (header.ApiKey != b.ApiKey || header.ApiVersion != b.Version) return true; // never reaches a handler that creates
            long partitions = header.ApiKey == ApiKey.CreateTopics
                ? MessageSerializer.Read<CreateTopicsRequest>(reader, header.ApiVersion).Topics
                    .Sum(t => (long)Math.Max(Math.Max(t.NumPartitions, 1), t.Assignments.Count))
                : MessageSerializer.Read<CreatePartitionsRequest>(reader, header.ApiVersion).Topics.Sum(t => (long)Math.Max(t.Count, 0));
            return partitions <= MaxPartitionsPerRequest;
        }
        catch (MalformedMessageException)
        {
            return true;
        }
    }

    /// <summary>Values that get the request past the first checks, so mutations exercise the handlers, not only the decoder.</summary>
    private static object Plausible(object message)
    {
        switch (message)
        {
            case ProduceRequest p:
                p.Acks = 1;
                p.TimeoutMs = 1000;
                p.TransactionalId = null;
                foreach (var t in p.TopicData)
                    foreach (var d in t.PartitionData)
                        d.Records = new MemoryRecords(Batches.Build(3, "fuzz", codec: CompressionCodec.Gzip));
                break;
            case FetchRequest f:
                f.MaxWaitMs = 0;
                f.MaxBytes = 1 << 20;
                f.SessionEpoch = -1;
                foreach (var t in f.Topics) foreach (var p in t.Partitions) p.PartitionMaxBytes = 1 << 16;
                break;
            case CreateTopicsRequest c:
                foreach (var t in c.Topics) { t.NumPartitions = 1; t.ReplicationFactor = 1; t.Assignments.Clear(); t.Configs.Clear(); }
                break;
            case CreatePartitionsRequest c:
                foreach (var t in c.Topics) { t.Count = 2; t.Assignments = null; }
                break;
            case JoinGroupRequest j:
                j.SessionTimeoutMs = 6000;
                j.RebalanceTimeoutMs = 200;
                j.ProtocolType = "consumer";
                break;
        }
        return message;
    }

    /// <summary>Every declared field of <paramref name="version"/> in <paramref name="message"/> and the structs and lists inside it.</summary>
    private static void Slots(object message, short version, List<(object, PropertyInfo)> into)
    {
        foreach (var property in message.GetType().GetProperties())
        {
            if (property.GetCustomAttribute<KafkaFieldAttribute>() is not { } field || !field.Versions.Contains(version)) continue;
            into.Add((message, property));
            var value = property.GetValue(message);
            if (value is System.Collections.IList list)
            {
                foreach (var element in list)
                    if (element is not null && IsStruct(element.GetType())) Slots(element, version, into);
            }
            else if (value is not null && IsStruct(value.GetType())) Slots(value, version, into);
        }
    }

    private static bool IsStruct(Type t) => t.IsClass && t.GetProperties().Any(p => p.GetCustomAttribute<KafkaFieldAttribute>() is not null);

    private static readonly string[] Strings = ["", "x", "y", "..", ".", "a/b", "__consumer_offsets", "é\u0000ü", new('a', 250), new('b', 300), "x-0", "consumer", "range", "-1"];

    /// <summary>A value at or past the edge of what <paramref name="property"/> can hold (null where the type allows it).</summary>
    private static object? Extreme(PropertyInfo property, object? current, Random rng)
    {
        var t = property.PropertyType;
        T Pick<T>(params T[] values) => values[rng.Next(values.Length)];
        if (t == typeof(int)) return Pick(0, -1, -2, 1, int.MaxValue, int.MinValue, rng.Next(-5, 100), 1 << 20);
        if (t == typeof(long)) return Pick(0L, -1L, -2L, 1L, long.MaxValue, long.MinValue, 1L << 40, (long)rng.Next(0, 200));
        if (t == typeof(short)) return Pick<short>(0, -1, 1, short.MaxValue, short.MinValue, (short)rng.Next(-3, 20));
        if (t == typeof(sbyte)) return Pick<sbyte>(-1, 0, 1, 2, sbyte.MaxValue, sbyte.MinValue);
        if (t == typeof(bool)) return current is not true;
        if (t == typeof(double)) return Pick(double.NaN, double.PositiveInfinity, -1.0, 0.0);
        if (t == typeof(Guid)) return rng.Next(2) == 0 ? Guid.Empty : new Guid(Enumerable.Range(0, 16).Select(_ => (byte)rng.Next(256)).ToArray());
        if (t == typeof(string)) return rng.Next(8) == 0 ? null : Pick(Strings);
        if (t == typeof(byte[])) return rng.Next(8) == 0 ? null : Enumerable.Range(0, Pick(0, 1, 2, 6, 40)).Select(_ => (byte)rng.Next(256)).ToArray();
        if (t == typeof(RecordsPayload))
        {
            return rng.Next(6) switch
            {
                0 => null,
                1 => RecordsPayload.Empty,
                2 => new MemoryRecords(Enumerable.Range(0, rng.Next(1, 80)).Select(_ => (byte)rng.Next(256)).ToArray()),
                3 => new MemoryRecords(Batches.Build(rng.Next(1, 20), "z", codec: Pick(CompressionCodec.None, CompressionCodec.Snappy, CompressionCodec.Lz4, CompressionCodec.Zstd))),
                4 => new MemoryRecords(Batches.Build(2, "a").Concat(Batches.Build(3, "b", codec: CompressionCodec.Gzip)).ToArray()),
                _ => new MemoryRecords(Batches.Build(5, "idem", producerId: rng.Next(0, 3), producerEpoch: 0, baseSequence: Pick(0, 5, int.MaxValue - 1))),
            };
        }
        if (current is System.Collections.IList list)
        {
            if (rng.Next(3) == 0) return rng.Next(2) == 0 ? null : Activator.CreateInstance(t);
            var grown = (System.Collections.IList)Activator.CreateInstance(t)!;
            int copies = Pick(2, 3, 10, 50);
            for (int i = 0; i < copies; i++) foreach (var e in list) grown.Add(e);
            return grown;
        }
        return null; // a nested struct: absent (or written as its defaults where it cannot be null)
    }

    private static Base Frame(ApiKey api, short version, object message, bool filled)
    {
        using var writer = new KafkaWriter();
        writer.Advance(4);
        new RequestHeader(api, version, 0, "fuzz").Write(writer);
        int bodyStart = writer.Position;
        typeof(MessageSerializer).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Single(m => m.Name == nameof(MessageSerializer.Write))
            .MakeGenericMethod(message.GetType()).Invoke(null, [writer, message, version]);
        writer.PatchInt32(0, writer.Position - 4);
        return new Base(api, version, writer.WrittenSpan.ToArray(), bodyStart, message.GetType(), filled);
    }

    private static byte[] WithCorrelationId(byte[] frame, int id)
    {
        var copy = (byte[])frame.Clone();
        BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(8), id);
        return copy;
    }
}
