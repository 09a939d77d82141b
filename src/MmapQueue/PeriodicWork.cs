namespace MmapQueues;

/// <summary>
/// A background loop that runs one action per period until stopped (the interval flush, the age retention).
/// An <see cref="IOException"/>, <see cref="UnauthorizedAccessException"/> (a queue file reopened after its
/// mode changed) or <see cref="TimeoutException"/> (a flush that gave up at a claim left open past
/// <c>ClaimTimeout</c>) from a tick goes to the failure callback and the next tick tries again; an
/// <see cref="ObjectDisposedException"/> ends the loop (what it worked on is gone). Anything else faults the
/// loop, and <see cref="Stop"/> throws it.
/// </summary>
internal sealed class PeriodicWork
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public PeriodicWork(TimeSpan period, Action tick, Action<Exception> failed)
    {
        CancellationToken stop = _stop.Token;
        _loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(period);
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                try
                {
                    tick();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException)
                {
                    failed(e);
                }
                catch (ObjectDisposedException)
                {
                    return; // closed without Stop (a Dispose whose earlier steps threw): nothing left to work on
                }
            }
        }, stop);
    }

    /// <summary>Stops the loop and waits for a tick under way.</summary>
    public void Stop()
    {
        _stop.Cancel();
        try
        {
            _loop.Wait();
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
        {
            // the loop ended by cancellation, as asked
        }
        _stop.Dispose();
    }
}
