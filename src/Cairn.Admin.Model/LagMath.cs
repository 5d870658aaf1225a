namespace Cairn.Admin.Model;

/// <summary>Lag arithmetic both the broker and the command line use, so their numbers agree.</summary>
public static class LagMath
{
    /// <summary>
    /// Records still to consume after <paramref name="committed"/>: log end minus the committed offset, counted from the
    /// log start when the committed offset is below it (those records are gone).
    /// </summary>
    public static long Records(long committed, long logStart, long logEnd) => Math.Max(0, logEnd - Math.Max(committed, logStart));
}
