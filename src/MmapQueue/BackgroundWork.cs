using Microsoft.Extensions.Logging;

namespace MmapQueues;

/// <summary>
/// The queue's fire-and-forget work (index builds after a roll, retention passes off the writer's thread):
/// runs each item on the thread pool, logs what fails, and lets dispose wait for everything started.
/// </summary>
/// <remarks>
/// One lock, the set <c>_running</c> itself (a leaf lock), guards the set and <c>_closed</c>. Once
/// <see cref="Close"/> ran, <see cref="Run"/> starts nothing more, so <see cref="WaitAll()"/> after it sees every item.
/// </remarks>
internal sealed class BackgroundWork(string directory, ILogger logger)
{
    private readonly HashSet<Task> _running = [];
    private bool _closed;

    /// <summary>Runs <paramref name="work"/> on the thread pool unless closed. Failures are logged (event 1035).</summary>
    public void Run(Action work)
    {
        Task? task = null;
        task = new Task(() =>
        {
            try
            {
                work();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                Log.RetentionFailed(logger, directory, e);
            }
            finally
            {
                lock (_running) _running.Remove(task!);
            }
        });
        lock (_running)
        {
            if (_closed) return;
            _running.Add(task);
        }
        task.Start(TaskScheduler.Default);
    }

    /// <summary>Refuses new work from now on (the queue is disposing).</summary>
    public void Close()
    {
        lock (_running) _closed = true;
    }

    /// <summary>Waits for the work started so far (dispose, and tests that count mappings).</summary>
    public void WaitAll() => WaitAll(Timeout.InfiniteTimeSpan);

    /// <summary>Waits at most <paramref name="timeout"/> for the work started so far; false if some still runs.</summary>
    public bool WaitAll(TimeSpan timeout)
    {
        Task[] pending;
        lock (_running) pending = [.. _running];
        return Task.WaitAll(pending, timeout);
    }
}
