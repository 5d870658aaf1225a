using Microsoft.Extensions.Logging;

namespace Cairn.Broker.Network;

/// <summary>
/// Warning lines about things clients (or the machine) can cause at any rate: at most one line per slot per
/// <see cref="Interval"/>, and the next line written says how many were left out, so a flood of bad frames, refused
/// connections or failing accepts cannot flood the log. Thread-safe; shared by all connections of a server.
/// </summary>
internal sealed class RateLimitedLog(ILogger logger, int slots, TimeProvider? time = null)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly (long LastLogged, long Suppressed)[] _slots = new (long, long)[slots];

    /// <summary>Writes <paramref name="template"/> as a warning unless a line of the same slot was written within the interval.</summary>
    public void Warn(int slot, string template, params object?[] args) => Warn(slot, null, template, args);

    /// <inheritdoc cref="Warn(int, string, object?[])"/>
    public void Warn(int slot, Exception? exception, string template, params object?[] args)
    {
        long suppressed;
        lock (_slots)
        {
            ref var state = ref _slots[slot];
            long now = _time.GetTimestamp();
            if (state.LastLogged != 0 && _time.GetElapsedTime(state.LastLogged, now) < Interval)
            {
                state.Suppressed++;
                return;
            }
            suppressed = state.Suppressed;
            state = (now, 0);
        }
        if (suppressed == 0)
        {
            logger.LogWarning(exception, template, args);
            return;
        }
        logger.LogWarning(exception, template + " ({Suppressed} similar lines left out)", [.. args, suppressed]);
    }
}
