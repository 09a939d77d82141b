using Microsoft.Extensions.Logging;
using MmapQueues.Processes;

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

    // Across processes (SharedWakeup, the notify page). The writer: AfterPublish loads the page's waiter count.
    // A read-only queue: each wait blocks a pool thread in the futex for at most CrossProcessWaitSlice.
    private SharedWakeup? _sharedWakeup;        // the writer's, opened in the constructor; null where futex(2) is not known
    private SharedWakeup? _readerWakeup;        // a read-only queue's, opened by the first wait
    private bool _readerWakeupUnavailable;      // no write access to notify (a reader as another user): poll
    private int _waitsInFlight;                 // Interlocked: blocking waits on _readerWakeup (Dispose waits for 0)
    private readonly object _readerWakeupLock = new(); // a leaf: opening and closing _readerWakeup

    /// <summary>The longest one blocking wait of a read-only queue lasts before its caller looks again: 100 ms.</summary>
    private static readonly TimeSpan CrossProcessWaitSlice = TimeSpan.FromMilliseconds(100);

    /// <summary>Completes when a producer publishes after this call, or within <see cref="RecheckInterval"/>.</summary>
    internal async Task WaitForPublishAsync(Func<bool> ready, CancellationToken cancellationToken)
    {
        if (_readOnly)
        {
            await WaitAcrossProcessesAsync(ready, cancellationToken).ConfigureAwait(false);
            return;
        }
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

    /// <summary>
    /// A read-only queue's wait: a pool thread sleeps in the notify page's futex until the writer's publish wakes it,
    /// <paramref name="ready"/> holds, or <see cref="CrossProcessWaitSlice"/> passes. Without a notify page it can
    /// use (no write access), it polls every <see cref="SharedWakeup.RecheckInterval"/>.
    /// </summary>
    private async Task WaitAcrossProcessesAsync(Func<bool> ready, CancellationToken cancellationToken)
    {
        SharedWakeup? wakeup = ReaderWakeup();
        if (wakeup is null)
        {
            await Task.Delay(SharedWakeup.RecheckInterval, cancellationToken).ConfigureAwait(false);
            return;
        }
        Interlocked.Increment(ref _waitsInFlight); // full fence before the _disposed check; pairs with DisposeReadOnly's wait for 0
        try
        {
            if (_disposed) return;
            await Task.Run(() => wakeup.WaitUntil(() => _disposed || ready(), CrossProcessWaitSlice, cancellationToken), cancellationToken)
                .ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waitsInFlight);
        }
    }

    private SharedWakeup? ReaderWakeup()
    {
        if (Volatile.Read(ref _readerWakeup) is { } open) return open;
        lock (_readerWakeupLock)
        {
            if (_readerWakeup is not null || _readerWakeupUnavailable || _disposed) return _readerWakeup;
            try
            {
                Volatile.Write(ref _readerWakeup, SharedWakeup.Open(_directory, _options.FilePermissions, reader: true));
            }
            catch (Exception e) when (e is UnauthorizedAccessException or PlatformNotSupportedException)
            {
                _readerWakeupUnavailable = true; // documented fallback: poll (README, "Process model")
                Log.ReaderWakeupUnavailable(_logger, _directory, e.Message);
            }
            return _readerWakeup;
        }
    }

    /// <summary>Unmaps the read-only queue's notify page once no wait uses it (each ends within 10 ms of <c>_disposed</c>).</summary>
    private void CloseSharedWakeupForReaders()
    {
        Interlocked.MemoryBarrier(); // _disposed is set: a wait that registers from here sees it (pairs with the Increment above)
        lock (_readerWakeupLock)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _waitsInFlight) > 0) spin.SpinOnce();
            _readerWakeup?.Dispose();
            _readerWakeup = null;
        }
    }

    /// <summary>
    /// Closes the writer's notify page: a producer that published before Dispose sealed the segment may still be
    /// between its publish and AfterPublish's load of the waiter count (Dispose's flush waited for the publish,
    /// not for that load): it reads zero from the detached page for one more second instead of faulting.
    /// </summary>
    private void CloseWriterWakeup() => _sharedWakeup?.CloseForPublishers();

    /// <summary>The writer's side of the notify page, opened at open; null (in-process wake-ups only) where futex(2) is not known.</summary>
    private static SharedWakeup? OpenWriterWakeup(string directory, UnixFileMode fileMode, ILogger logger)
    {
        try
        {
            SharedWakeup wakeup = SharedWakeup.Open(directory, fileMode, reader: false);
            if (wakeup.ReplacedBecause is { } why) Log.NotifyReplaced(logger, wakeup.Path, why);
            return wakeup;
        }
        catch (PlatformNotSupportedException)
        {
            return null;
        }
    }
}
