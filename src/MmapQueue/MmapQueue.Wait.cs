namespace MmapQueues;

public sealed partial class MmapQueue
{
    private readonly object _publishedLock = new(); // a leaf lock: guards _published
    private int _readersWaiting;
    private TaskCompletionSource? _published;

    // A bounded re-check interval covers a benign race: a producer loads _readersWaiting (seeing 0) before
    // its commit word is visible to a reader that has just registered and re-checked. No fence is paid on
    // the append path for it; the cost is that a reader may wake up to this much late when that race hits
    // an idle producer.
    private static readonly TimeSpan RecheckInterval = TimeSpan.FromMilliseconds(5);

    /// <summary>Completes when a producer publishes after this call, or within <see cref="RecheckInterval"/>.</summary>
    internal async Task WaitForPublishAsync(Func<bool> ready, CancellationToken cancellationToken)
    {
        TaskCompletionSource tcs;
        lock (_publishedLock)
        {
            tcs = _published ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        Interlocked.Increment(ref _readersWaiting); // full fence before the re-check below
        try
        {
            if (ready() || _disposed) return;
            await tcs.Task.WaitAsync(RecheckInterval, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // re-check interval elapsed: the caller looks again
        }
        finally
        {
            Interlocked.Decrement(ref _readersWaiting);
        }
    }

    private void WakeReaders()
    {
        TaskCompletionSource? tcs;
        lock (_publishedLock)
        {
            tcs = _published;
            _published = null;
        }
        tcs?.TrySetResult();
    }
}
