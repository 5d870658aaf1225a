using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Cairn.Bench.RealClient;

/// <summary>
/// Points Confluent.Kafka 1.9.3 at Debian's librdkafka1 (2.0.2), the library the other interop clients use. The
/// package's own native libraries are replaced by an empty stand-in (bench/packages/README.md), so the library must
/// be loaded by path before the first producer or consumer is built.
/// </summary>
internal static class SystemLibrdkafka
{
    private static readonly string[] Candidates =
    [
        "/usr/lib/x86_64-linux-gnu/librdkafka.so.1",
        "/usr/lib/aarch64-linux-gnu/librdkafka.so.1",
        "/usr/lib/librdkafka.so.1",
    ];

    private static readonly Lock Gate = new();
    private static string? _version;

    /// <summary>Loads the system librdkafka once; throws naming the Debian package when it is missing.</summary>
    public static string EnsureLoaded()
    {
        lock (Gate)
        {
            if (_version is not null) return _version;
            var path = Candidates.FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException(
                    "librdkafka.so.1 not found; install Debian's librdkafka1 (test.sh installs it with python3-confluent-kafka)");
            // Confluent.Kafka 1.9.3 calls dlopen through [DllImport("libdl")]; glibc 2.34+ ships only libdl.so.2
            // (the unversioned name comes with libc6-dev), so the name is resolved here.
            NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, (name, _, _) =>
                name == "libdl" ? NativeLibrary.Load("libdl.so.2") : IntPtr.Zero);
            Library.Load(path);
            _version = Library.VersionString;
            return _version;
        }
    }
}
