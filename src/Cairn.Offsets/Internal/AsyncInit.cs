namespace Cairn.Offsets.Internal;

/// <summary>
/// Runs an initialization once, on first need. A failed or cancelled attempt is not remembered: the next caller
/// tries again (a corrupt file keeps failing with the same clear error; a transient one may recover).
/// </summary>
internal sealed class AsyncInit(Func<Task> initialize)
{
    private readonly object _gate = new();
    private Task? _task;

    public bool IsCompleted => _task is { IsCompletedSuccessfully: true };

    public Task EnsureAsync(CancellationToken cancellationToken)
    {
        var task = _task;
        if (task is { IsCompletedSuccessfully: true }) return Task.CompletedTask;
        lock (_gate)
        {
            if (_task is null || _task.IsFaulted || _task.IsCanceled) _task = Task.Run(initialize, CancellationToken.None);
            task = _task;
        }
        return task.WaitAsync(cancellationToken);
    }
}
