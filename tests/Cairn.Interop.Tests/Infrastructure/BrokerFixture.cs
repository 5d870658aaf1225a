namespace Cairn.Interop.Tests.Infrastructure;

/// <summary>
/// One broker shared by the tests of a class (xunit class fixture). Tests use unique topic names.
/// Topics auto-create with <see cref="DefaultPartitions"/> partitions.
/// </summary>
public class BrokerFixture : IAsyncLifetime
{
    public const int DefaultPartitions = 5;

    private BrokerProcess? _broker;
    private Exception? _startFailure;

    protected virtual BrokerOptions Options => new() { DefaultPartitions = DefaultPartitions, AutoCreateTopics = true };

    public BrokerProcess Broker =>
        _broker ?? throw new InvalidOperationException($"The shared broker did not start: {_startFailure?.Message}", _startFailure);

    public string Bootstrap => Broker.Bootstrap;

    public async Task InitializeAsync()
    {
        try
        {
            _broker = BrokerProcess.ExternalPort is { } port
                ? BrokerProcess.AttachExternal(port)
                : await BrokerProcess.StartAsync(Options);
        }
        catch (Exception e)
        {
            // Reported by every test of the class through Broker.
            _startFailure = e;
        }
    }

    public async Task DisposeAsync()
    {
        if (_broker is not null) await _broker.DisposeAsync();
    }
}

public static class Topics
{
    /// <summary>A topic name unique to this run (letters, digits, '-').</summary>
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 200)];
}

public sealed class InteropFailureException(string message, Exception? inner = null) : Exception(message, inner);

public static class BrokerDiagnostics
{
    /// <summary>Runs a test body; on failure appends the broker's recent output to the message.</summary>
    public static async Task WithBrokerLogAsync(this BrokerProcess broker, Func<Task> body)
    {
        if (!broker.IsRunning)
            throw new InteropFailureException($"The broker is not running (it died earlier).\n\n{broker.RecentOutput()}");
        try
        {
            await body();
            if (!broker.IsRunning)
                throw new InvalidOperationException("The broker process exited during the test.");
        }
        catch (Exception e) when (e is not InteropFailureException)
        {
            throw new InteropFailureException($"{e.GetType().Name}: {e.Message}\n\n{broker.RecentOutput()}", e);
        }
    }
}
