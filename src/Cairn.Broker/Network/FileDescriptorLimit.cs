using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>
/// The process's open-file limit (RLIMIT_NOFILE). Every connection and every open segment file takes a descriptor, and
/// the usual soft limit (1024) is far below the hard one, so the broker raises the soft limit to the hard limit at
/// start, as a Kafka distribution's service unit would (LimitNOFILE). Linux only; elsewhere the limit is unknown and
/// <see cref="SoftLimit"/> is <see cref="long.MaxValue"/>.
/// </summary>
internal static class FileDescriptorLimit
{
    private const int RlimitNofile = 7; // <sys/resource.h> on Linux
    private const ulong Infinity = ulong.MaxValue; // RLIM_INFINITY

    private static readonly object Gate = new();
    private static bool _raised;

    /// <summary>
    /// The current soft limit on open descriptors, read afresh (an operator may change it with prlimit); long.MaxValue when
    /// unlimited or unknown. Budgets of descriptors (connections, segment file handles) derive from it.
    /// </summary>
    internal static long SoftLimit => TryGet(out var soft, out _) ? soft : long.MaxValue;

    /// <summary>The hard limit, the ceiling of <see cref="SoftLimit"/>; long.MaxValue when unlimited or unknown.</summary>
    internal static long HardLimit => TryGet(out _, out var hard) ? hard : long.MaxValue;

    /// <summary>
    /// Raises the soft limit to the hard limit, once per process, and logs both (info). Returns the soft limit in effect.
    /// A failure (not Linux, a sandbox refusing setrlimit) is logged and start-up continues with the limit as it is.
    /// </summary>
    internal static long RaiseToHardLimit(ILogger logger)
    {
        lock (Gate)
        {
            if (_raised || !OperatingSystem.IsLinux() || IntPtr.Size != 8) return SoftLimit;
            _raised = true;
            if (!TryGet(out long soft, out long hard))
            {
                logger.LogInformation("open file limit unknown (getrlimit failed with errno {Errno})", Marshal.GetLastPInvokeError());
                return long.MaxValue;
            }
            if (soft < hard)
            {
                var wanted = new RLimit { Current = ToNative(hard), Maximum = ToNative(hard) };
                if (setrlimit(RlimitNofile, ref wanted) != 0)
                {
                    logger.LogWarning("open file limit: soft {Soft}, hard {Hard}; raising the soft limit failed (errno {Errno})",
                        Show(soft), Show(hard), Marshal.GetLastPInvokeError());
                    return soft;
                }
                logger.LogInformation("open file limit: soft {Soft} raised to the hard limit {Hard}", Show(soft), Show(hard));
                return SoftLimit;
            }
            logger.LogInformation("open file limit: soft {Soft}, hard {Hard}", Show(soft), Show(hard));
            return soft;
        }
    }

    private static bool TryGet(out long soft, out long hard)
    {
        soft = hard = long.MaxValue;
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8) return false; // rlim_t is 32 bits on 32-bit Linux
        if (getrlimit(RlimitNofile, out var limit) != 0) return false;
        soft = FromNative(limit.Current);
        hard = FromNative(limit.Maximum);
        return true;
    }

    private static long FromNative(ulong value) => value >= long.MaxValue ? long.MaxValue : (long)value;

    private static ulong ToNative(long value) => value == long.MaxValue ? Infinity : (ulong)value;

    private static string Show(long limit) => limit == long.MaxValue ? "unlimited" : limit.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>struct rlimit: two rlim_t (unsigned long, 64 bits on the 64-bit Linux targets .NET runs on).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrlimit(int resource, out RLimit limit);

    [DllImport("libc", SetLastError = true)]
    private static extern int setrlimit(int resource, ref RLimit limit);
}
