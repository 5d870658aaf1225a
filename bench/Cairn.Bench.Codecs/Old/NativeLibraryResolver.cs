// Frozen copy of the pre-managed-packages codec, kept only as the benchmark baseline (see ../README.md).
using System.Reflection;
using System.Runtime.InteropServices;

using Cairn.Protocol.Compression;

namespace Cairn.Bench.Codecs.Old;

/// <summary>
/// Maps the sonames used in the P/Invoke declarations ("liblz4.so.1", "libzstd.so.1", which Debian's
/// runtime packages install without the unversioned dev symlink) to whatever the platform has:
/// the soname first, then the plain names "lz4" / "zstd" (liblz4.so, lz4.dll, liblz4.dylib ...).
/// </summary>
internal static class NativeLibraryResolver
{
    private static readonly Dictionary<string, string[]> Candidates = new(StringComparer.Ordinal)
    {
        [Lz4Native.LibraryName] = [Lz4Native.LibraryName, "lz4", "liblz4"],
        [ZstdNative.LibraryName] = [ZstdNative.LibraryName, "zstd", "libzstd"],
    };

    private static readonly bool Registered = Register();

    /// <summary>Touching this from the native classes' static constructors guarantees registration first.</summary>
    public static void EnsureRegistered() => _ = Registered;

    private static bool Register()
    {
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
            return true;
        }
        catch (InvalidOperationException)
        {
            // Only one resolver per assembly: if another part of Cairn.Protocol installed one, the
            // sonames in the declarations still resolve through default probing on Linux.
            return false;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!Candidates.TryGetValue(libraryName, out var names)) return IntPtr.Zero;
        foreach (var name in names)
            if (NativeLibrary.TryLoad(name, assembly, searchPath, out var handle))
                return handle;
        return IntPtr.Zero; // let the runtime raise its usual DllNotFoundException
    }
}
