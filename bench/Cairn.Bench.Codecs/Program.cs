using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Cairn.Protocol.Compression;

BenchmarkSwitcher.FromAssembly(typeof(Cairn.Bench.Codecs.CodecBenchmarks).Assembly).Run(args);

namespace Cairn.Bench.Codecs
{
    /// <summary>
    /// Compress and decompress ~1 MB of JSON-ish record values (what a batch's records section holds) with each
    /// codec, old implementation against new. MB/s = 1 MB / Mean (see README.md).
    /// </summary>
    [MemoryDiagnoser]
    public class CodecBenchmarks
    {
        public const int PayloadSize = 1 << 20;

        [Params("snappy", "lz4", "zstd")] public string Codec { get; set; } = "";
        [Params("old", "new")] public string Impl { get; set; } = "";

        private ICompressionCodec _codec = null!;
        private byte[] _payload = [];
        private byte[] _compressed = [];
        private PooledBufferWriter _writer = null!;

        [GlobalSetup]
        public void Setup()
        {
            _codec = (Codec, Impl) switch
            {
                ("snappy", "old") => new Old.SnappyCodec(),
                ("lz4", "old") => new Old.Lz4Codec(),
                ("zstd", "old") => new Old.ZstdCodec(),
                ("snappy", _) => CompressionCodecs.Snappy,
                ("lz4", _) => CompressionCodecs.Lz4,
                ("zstd", _) => CompressionCodecs.Zstd,
                _ => throw new ArgumentException($"unknown codec {Codec}/{Impl}"),
            };
            _payload = Payload(PayloadSize);
            _compressed = _codec.Compress(_payload);
            _writer = new PooledBufferWriter(PayloadSize * 2);
            if (!_codec.Decompress(_compressed).AsSpan().SequenceEqual(_payload))
                throw new InvalidOperationException($"{Codec}/{Impl} does not round-trip");
        }

        [GlobalCleanup]
        public void Cleanup() => _writer.Dispose();

        [Benchmark]
        public int Compress()
        {
            _writer.Reset();
            _codec.Compress(_payload, _writer);
            return _writer.WrittenCount;
        }

        [Benchmark]
        public int Decompress()
        {
            _writer.Reset();
            _codec.Decompress(_compressed, _writer);
            return _writer.WrittenCount;
        }

        /// <summary>Order-event records like a typical JSON topic: repeated keys, varying ids, amounts, timestamps.</summary>
        internal static byte[] Payload(int size)
        {
            var rng = new Random(42);
            string[] events = ["created", "paid", "shipped", "delivered", "cancelled", "refunded"];
            string[] countries = ["DE", "FR", "NL", "PL", "SE", "US", "GB", "ES"];
            var sb = new StringBuilder(size + 512);
            long ts = 1_764_633_600_000;
            for (int i = 0; sb.Length < size; i++)
            {
                ts += rng.Next(0, 50);
                sb.Append("{\"order_id\":\"ord-").Append(rng.Next(1_000_000, 9_999_999))
                  .Append("\",\"customer\":").Append(rng.Next(1, 200_000))
                  .Append(",\"event\":\"").Append(events[rng.Next(events.Length)])
                  .Append("\",\"amount\":").Append(rng.Next(100, 100_000) / 100.0)
                  .Append(",\"currency\":\"EUR\",\"country\":\"").Append(countries[rng.Next(countries.Length)])
                  .Append("\",\"items\":").Append(rng.Next(1, 12))
                  .Append(",\"ts\":").Append(ts).Append(",\"seq\":").Append(i).Append("}\n");
            }
            return Encoding.UTF8.GetBytes(sb.ToString())[..size];
        }
    }
}
