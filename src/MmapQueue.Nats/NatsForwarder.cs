using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace MmapQueues.Nats;

/// <summary>
/// Forwards a queue into a NATS JetStream stream, exactly once: reads the queue's named consumer
/// (<see cref="NatsForwarderOptions.ConsumerName"/>), publishes each record (or a batch of records) with a
/// message id made of the queue id and the sequence, keeps up to <see cref="NatsForwarderOptions.MaxInFlight"/>
/// publishes in flight, and commits the consumer only past records whose ack arrived (the contiguous prefix).
/// </summary>
/// <remarks>
/// <para><b>No loss:</b> a record is committed only after the stream acknowledged it (stored, or reported as a
/// duplicate of a stored one). Until then it stays in the queue, whose capacity policy applies while the server
/// is away; transient failures are retried with exponential backoff and jitter, from the first unacknowledged
/// record.</para>
/// <para><b>No duplicate:</b> within the stream's duplicate window the message id removes repeats. Beyond it, the
/// forwarder asks the stream on every (re)start which of this queue's records it already holds (the last message
/// on the subject and a walk back to the committed position, see docs/DECISIONS.md) and resumes after them.</para>
/// <para>Run one forwarder per queue and subject; <see cref="RunAsync"/> runs once at a time.</para>
/// </remarks>
public sealed partial class NatsForwarder : IAsyncDisposable
{
    private readonly MmapQueue _queue;
    private readonly NatsForwarderOptions _options;
    private readonly NatsConnection? _ownedConnection;
    private readonly INatsConnection _connection;
    private readonly INatsJSContext _js;
    private readonly ILogger _logger;
    private readonly ForwarderMetrics _metrics;
    private readonly string _queueId;
    private int _running;

    // Run state, touched only by the one RunAsync flow.
    private readonly Queue<Pending> _window = new();
    private readonly List<(long From, long Last)> _replay = new(); // ranges to cut identically after a retry
    private QueueReader? _consumer; // the named consumer: only Seek + Commit
    private QueueReader? _reader;   // the read-ahead (anonymous) reader
    private long _acked;            // every sequence below is in the stream; Volatile.Write by the loop pairs with Volatile.Read in Acknowledged (other threads)
    private long _committed;        // the consumer's durable position; Volatile.Write in CommitAt (a pool thread) pairs with Volatile.Read in Commit and WaitOrCommitAsync
    private long _nextFrom;         // the first sequence the next unit covers
    private long _lastCommitTicks;
    private int _attempt;
    private long _armedAt;          // when the attempt's deadline was last pushed out
    private Task _commitTask = Task.CompletedTask; // a background commit the publish loop does not wait for

    /// <summary>Creates a forwarder with its own connection (from <see cref="NatsForwarderOptions.NatsOpts"/>), closed on dispose.</summary>
    public NatsForwarder(MmapQueue queue, NatsForwarderOptions options, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
        : this(queue, null, options, loggerFactory, meterFactory) { }

    /// <summary>Creates a forwarder on an existing connection (not closed on dispose).</summary>
    public NatsForwarder(MmapQueue queue, INatsConnection? connection, NatsForwarderOptions options, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _queue = queue;
        _options = options;
        if (connection is null) connection = _ownedConnection = new NatsConnection(options.NatsOpts);
        _connection = connection;
        _js = connection.CreateJetStreamContext();
        _logger = loggerFactory?.CreateLogger<NatsForwarder>() ?? NullLogger<NatsForwarder>.Instance;
        _metrics = new ForwarderMetrics(queue, options, meterFactory);
        _queueId = queue.QueueId.ToString("N");
    }

    /// <summary>Every sequence below this one is in the stream.</summary>
    public long Acknowledged => Volatile.Read(ref _acked);

    /// <summary>
    /// Forwards from the consumer's committed position until caught up (returns the sequence reached), or with
    /// <see cref="NatsForwarderOptions.Follow"/> until <paramref name="cancellationToken"/> fires or the queue is
    /// disposed. Creates the stream when missing. Transient failures (server down, timeouts, no JetStream
    /// responders) are retried forever with backoff; the acknowledged prefix is committed on the way out.
    /// </summary>
    /// <returns>The first sequence not forwarded: every record below it is in the stream and committed.</returns>
    /// <exception cref="NatsForwardException">A failure retrying cannot fix, naming the record.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (after committing the acknowledged prefix).</exception>
    public async Task<long> RunAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
            throw new InvalidOperationException("This forwarder is already running; a queue's consumer has one forwarder at a time.");
        string stopReason = "caught up";
        try
        {
            _consumer = _queue.OpenReader(_options.ConsumerName);
            _committed = _acked = _consumer.NextSequence;
            bool started = false;
            while (true)
            {
                try
                {
                    if (_connection.ConnectionState != NatsConnectionState.Open) await _connection.ConnectAsync().ConfigureAwait(false);
                    INatsJSStream stream = await EnsureStreamAsync(cancellationToken).ConfigureAwait(false);
                    await SkipWhatTheStreamHoldsAsync(stream, cancellationToken).ConfigureAwait(false);
                    Restart();
                    if (!started)
                    {
                        Log.ForwarderStarted(_logger, _queue.Path, _options.ConsumerName, _options.Stream, _options.Subject, _acked);
                        started = true;
                    }
                    if (!await PumpAsync(cancellationToken).ConfigureAwait(false)) stopReason = "the queue was disposed";
                    return _acked;
                }
                catch (Exception e) when (IsTransient(e, cancellationToken))
                {
                    await DropWindowAsync().ConfigureAwait(false);
                    _attempt++;
                    Interlocked.Increment(ref _metrics.Retries);
                    TimeSpan delay = Backoff(_attempt);
                    Log.ForwardRetrying(_logger, e, _queue.Path, _options.Stream, _acked, _attempt, (long)delay.TotalMilliseconds);
                    Report();
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            stopReason = "cancelled";
            throw;
        }
        catch (NatsForwardException e)
        {
            stopReason = "failed";
            Log.ForwardFailed(_logger, e, _queue.Path, e.Sequence);
            throw;
        }
        finally
        {
            await DropWindowAsync().ConfigureAwait(false);
            if (_consumer is not null)
            {
                try { Commit(force: true); }
                catch (Exception e) when (e is ObjectDisposedException or IOException)
                {
                    Log.ForwardCommitFailed(_logger, e, _queue.Path, _committed);
                }
            }
            Log.ForwarderStopped(_logger, _queue.Path, _acked, stopReason);
            _reader?.Dispose();
            _reader = null;
            _consumer?.Dispose();
            _consumer = null;
            Volatile.Write(ref _running, 0);
        }
    }

    /// <summary>Re-reads from the first sequence not yet in the stream (after a start or a retry).</summary>
    private void Restart()
    {
        _reader?.Dispose();
        _reader = _queue.OpenReader(_acked, OutOfRange.Clamp);
        // Records below FirstSequence were removed by a limit of the queue (logged there): nothing to send.
        if (_reader.NextSequence > _acked) Volatile.Write(ref _acked, _reader.NextSequence);
        _nextFrom = _acked;
        _carryLength = -1;
        Volatile.Write(ref _metrics.Acknowledged, _acked);
    }

    /// <summary>Publishes and collects acks until caught up (true) or the queue is disposed while following (false).</summary>
    private async Task<bool> PumpAsync(CancellationToken cancellationToken)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        int maxPayload = _connection.ServerInfo?.MaxPayload ?? 1 << 20;
        _armedAt = 0;
        long duplicates = 0;
        while (true)
        {
            while (_window.Count < _options.MaxInFlight && TryCutUnit(maxPayload, out Unit unit))
            {
                Arm(attempt);
                NatsJSPublishConcurrentFuture future = await PublishAsync(unit, attempt.Token).ConfigureAwait(false);
                _window.Enqueue(new Pending(unit.From, unit.Last, unit.Records, unit.PayloadBytes, future));
                Interlocked.Increment(ref _metrics.InFlight);
            }
            if (_window.Count == 0)
            {
                if (duplicates > 0) Log.DuplicatesAcknowledged(_logger, _options.Stream, duplicates, _queue.Path);
                duplicates = 0;
                if (!_options.Follow)
                {
                    Commit(force: true);
                    return true;
                }
                attempt.CancelAfter(Timeout.InfiniteTimeSpan); // idle is not a stall: no ack deadline while waiting
                _armedAt = 0;
                if (!await WaitOrCommitAsync(cancellationToken).ConfigureAwait(false)) return false;
                continue;
            }
            Pending oldest = _window.Peek();
            Arm(attempt);
            PubAckResponse ack = await oldest.Future.GetResponseAsync(attempt.Token).ConfigureAwait(false);
            if (ack.Error is { } error)
            {
                var apiError = new NatsJSApiException(error);
                if (IsTransient(apiError, cancellationToken)) throw apiError;
                throw Permanent(oldest.Last, $"the stream rejected it: {error.Description} (code {error.Code}, error code {error.ErrCode})", apiError);
            }
            _window.Dequeue();
            Interlocked.Decrement(ref _metrics.InFlight);
            await oldest.Future.DisposeAsync().ConfigureAwait(false);
            if (ack.Duplicate)
            {
                duplicates++;
                Interlocked.Increment(ref _metrics.Duplicates);
            }
            Interlocked.Add(ref _metrics.Records, oldest.Records);
            Interlocked.Add(ref _metrics.Bytes, oldest.PayloadBytes);
            Volatile.Write(ref _acked, oldest.Last + 1);
            Volatile.Write(ref _metrics.Acknowledged, oldest.Last + 1);
            _attempt = 0;
            Commit(force: false);
        }
    }

    /// <summary>
    /// Pushes the attempt's deadline to <see cref="NatsForwarderOptions.AckTimeout"/> from now, at most every quarter
    /// of it (moving a timer per message costs more than the publish): a stall is detected after 0.75 to 1 AckTimeout.
    /// </summary>
    private void Arm(CancellationTokenSource attempt)
    {
        long now = Stopwatch.GetTimestamp();
        if (_armedAt != 0 && Stopwatch.GetElapsedTime(_armedAt, now) < _options.AckTimeout / 4) return;
        attempt.CancelAfter(_options.AckTimeout);
        _armedAt = now;
    }

    /// <summary>
    /// Caught up while following: waits for the next record. A trickle of records would otherwise pay one
    /// commit (an fdatasync) each; instead the acknowledged prefix is committed once the queue has been idle for
    /// <see cref="NatsForwarderOptions.CommitInterval"/>, or with the next ack past that interval.
    /// </summary>
    private async Task<bool> WaitOrCommitAsync(CancellationToken cancellationToken)
    {
        Commit(force: false);
        if (_acked <= Volatile.Read(ref _committed)) return await _reader!.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        idle.CancelAfter(_options.CommitInterval);
        try
        {
            return await _reader!.WaitToReadAsync(idle.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Commit(force: true); // idle for a commit interval
            return true;
        }
    }

    private ValueTask<NatsJSPublishConcurrentFuture> PublishAsync(Unit unit, CancellationToken cancellationToken)
    {
        bool batch = _options.BatchMaxBytes > 0;
        // Kept short: on 64-byte records the headers are most of the bytes on the wire.
        var headers = new NatsHeaders
        {
            [NatsForwardHeaders.QueueId] = _queueId,
            [NatsForwardHeaders.Sequence] = unit.Last.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (unit.From != unit.Last) headers[NatsForwardHeaders.From] = unit.From.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (batch) headers[NatsForwardHeaders.Format] = "batch";
        string msgId = batch ? $"{_queueId}:{unit.From}-{unit.Last}" : $"{_queueId}:{unit.Last}";
        return _js.PublishConcurrentAsync(_options.Subject, new ReadOnlyMemory<byte>(_buffer, 0, _length), NatsRawSerializer<ReadOnlyMemory<byte>>.Default,
            new NatsJSPubOpts { MsgId = msgId }, headers, cancellationToken);
    }

    /// <summary>
    /// Commits the acknowledged prefix: at once and waiting when <paramref name="force"/>; otherwise at most once per
    /// <see cref="NatsForwarderOptions.CommitInterval"/> and in the background, so the publish loop never waits for
    /// the cursors file's fdatasync (it stalls for tens of milliseconds on a busy disk).
    /// </summary>
    private void Commit(bool force)
    {
        if (!force && !_commitTask.IsCompleted) return;
        FinishCommit();
        long acked = _acked;
        if (acked <= Volatile.Read(ref _committed)) return;
        long now = Stopwatch.GetTimestamp();
        // Also commit every CommitEvery records at full rate: it bounds what a restart has to walk back over.
        if (!force && acked - Volatile.Read(ref _committed) < CommitEvery && Stopwatch.GetElapsedTime(_lastCommitTicks, now) < _options.CommitInterval) return;
        _lastCommitTicks = now;
        if (force) CommitAt(acked);
        else _commitTask = Task.Run(() => CommitAt(acked));
    }

    private const long CommitEvery = 4096;

    private void CommitAt(long acked)
    {
        _consumer!.Seek(acked, OutOfRange.Clamp);
        _consumer.Commit();
        Volatile.Write(ref _committed, acked);
        Report();
    }

    /// <summary>Waits for a background commit; rethrows its failure (an <see cref="IOException"/> from the cursors file).</summary>
    private void FinishCommit()
    {
        Task pending = _commitTask;
        _commitTask = Task.CompletedTask;
        pending.GetAwaiter().GetResult();
    }

    private void Report() =>
        _options.Progress?.Report(new NatsForwardProgress(_acked, _queue.NextSequence, Volatile.Read(ref _metrics.Bytes), Volatile.Read(ref _metrics.Retries)));

    /// <summary>Forgets the publishes in flight; their ranges are cut identically when re-read, so message ids repeat exactly.</summary>
    private async Task DropWindowAsync()
    {
        if (_window.Count == 0) return;
        _replay.Clear();
        foreach (Pending p in _window)
        {
            _replay.Add((p.From, p.Last));
            try
            {
                await p.Future.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, CancellationToken.None))
            {
                // Disposing a future rethrows its publish's failure (no responders while a stream leader
                // fails over, for one). Its records are in _replay and go out again with the same message ids,
                // so this outcome is superseded, not lost; the failure that made us drop the window is logged.
            }
        }
        _window.Clear();
        Volatile.Write(ref _metrics.InFlight, 0);
    }

    private TimeSpan Backoff(int attempt)
    {
        double baseMs = _options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30));
        double capped = Math.Min(baseMs, _options.RetryMaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + Random.Shared.NextDouble())); // jitter: 50-150 %
    }

    private static bool IsTransient(Exception e, CancellationToken cancellationToken) => e switch
    {
        OperationCanceledException => !cancellationToken.IsCancellationRequested, // our ack timeout
        NatsForwardException => false,
        NatsJSApiException api => api.Error.Code >= 500,
        NatsNoRespondersException or NatsJSPublishNoResponseException => true,
        NatsException or TimeoutException or IOException or System.Net.Sockets.SocketException => true,
        _ => false,
    };

    private NatsForwardException Permanent(long sequence, string why, Exception? inner = null) =>
        new($"Record {sequence} of queue {_queue.Path} cannot be forwarded to stream {_options.Stream} (subject {_options.Subject}): {why}", sequence, inner);

    /// <summary>Closes the connection when the forwarder opened it.</summary>
    public async ValueTask DisposeAsync()
    {
        _metrics.Dispose();
        if (_ownedConnection is not null) await _ownedConnection.DisposeAsync().ConfigureAwait(false);
    }

    private readonly record struct Pending(long From, long Last, int Records, long PayloadBytes, NatsJSPublishConcurrentFuture Future);
}
