namespace MmapQueues.Benchmarks.Bdn;

/// <summary>
/// Long-lived producer threads for multi-threaded append benchmarks: <see cref="Run"/> has each of them
/// call the work delegate once (with its index) and waits for all, so no thread is created per invocation.
/// With one thread the work runs on the caller.
/// </summary>
internal sealed class ProducerPool : IDisposable
{
    private readonly Thread[] _threads;
    private readonly Action<int> _work;
    private readonly SemaphoreSlim _go = new(0);
    private readonly CountdownEvent _done;
    private volatile bool _stopping;

    public ProducerPool(int threads, Action<int> work)
    {
        _work = work;
        _done = new CountdownEvent(threads);
        _threads = threads == 1 ? Array.Empty<Thread>() : Enumerable.Range(0, threads).Select(i => new Thread(() => Loop(i)) { IsBackground = true, Name = $"producer {i}" }).ToArray();
        foreach (Thread t in _threads) t.Start();
        Count = threads;
    }

    public int Count { get; }

    public void Run()
    {
        if (_threads.Length == 0)
        {
            _work(0);
            return;
        }
        _done.Reset(_threads.Length);
        _go.Release(_threads.Length);
        _done.Wait();
    }

    private void Loop(int index)
    {
        while (true)
        {
            _go.Wait();
            if (_stopping) return;
            _work(index);
            _done.Signal();
        }
    }

    public void Dispose()
    {
        _stopping = true;
        if (_threads.Length > 0) _go.Release(_threads.Length); // Release(0) throws
        foreach (Thread t in _threads) t.Join();
        _go.Dispose();
        _done.Dispose();
    }
}
