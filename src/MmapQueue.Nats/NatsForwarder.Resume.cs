using System.Globalization;
using System.Text;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace MmapQueues.Nats;

public sealed partial class NatsForwarder
{
    /// <summary>Gets the stream, creating it when missing; checks that it captures the subject.</summary>
    private async Task<INatsJSStream> EnsureStreamAsync(CancellationToken cancellationToken)
    {
        INatsJSStream stream;
        try
        {
            stream = await _js.GetStreamAsync(_options.Stream, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            var config = new StreamConfig(_options.Stream, [_options.Subject])
            {
                NumReplicas = _options.StreamReplicas,
                Storage = StreamConfigStorage.File,
            };
            if (_options.DuplicateWindow is { } window) config.DuplicateWindow = window;
            try
            {
                stream = await _js.CreateStreamAsync(config, cancellationToken).ConfigureAwait(false);
            }
            catch (NatsJSApiException create) when (create.Error.Code != 503) // 503: JetStream or its cluster is not available yet
            {
                throw Permanent(_acked, $"stream {_options.Stream} is missing and could not be created: {create.Error.Description} (code {create.Error.Code}, error code {create.Error.ErrCode})", create);
            }
            Log.StreamCreated(_logger, _options.Stream, _options.Subject, _options.StreamReplicas);
        }
        ICollection<string> subjects = stream.Info.Config.Subjects ?? [];
        if (!subjects.Any(s => SubjectMatches(s, _options.Subject)))
            throw Permanent(_acked, $"stream {_options.Stream} does not capture the subject (its subjects: {string.Join(", ", subjects)})");
        return stream;
    }

    /// <summary>
    /// Moves past what the stream already holds of this queue. The walk back from the last message on the subject
    /// reads this queue's messages until one reaches the acknowledged position (and a reorder's span further);
    /// the records they cover without a hole from that position on are skipped. When none reaches it (a gap,
    /// another publisher), everything from the acknowledged position is sent again and the duplicate window
    /// removes repeats.
    /// </summary>
    private async Task SkipWhatTheStreamHoldsAsync(INatsJSStream stream, CancellationToken cancellationToken)
    {
        long from = _acked;
        StoredMessage? last = await GetAsync(stream, new StreamMsgGetRequest { LastBySubj = _options.Subject }, cancellationToken).ConfigureAwait(false);
        if (last is null) return; // nothing on the subject yet
        if (Describe(last) is not { } newest)
        {
            Log.ResumeUnproven(_logger, _options.Stream, from, _queue.Path, $"the last message on {_options.Subject} (stream sequence {last.Seq}) is not from this queue");
            return;
        }
        if (newest.Last + 1 < from)
        {
            // The stream lost records it had acknowledged (an R1 server killed before its store wrote them):
            // send again what the queue still holds.
            Log.StreamLostAcknowledged(_logger, _options.Stream, newest.Last + 1, from, _queue.Path);
            Volatile.Write(ref _acked, newest.Last + 1);
            FinishCommit();
            _consumer!.Seek(newest.Last + 1, OutOfRange.Clamp);
            _consumer.Commit();
            _committed = _consumer.NextSequence;
            return;
        }
        if (newest.Last < from) return; // the stream holds nothing past the committed position
        if (newest.Last >= _queue.NextSequence)
        {
            Log.ResumeUnproven(_logger, _options.Stream, from, _queue.Path,
                $"it holds sequence {newest.Last} but the queue ends at {_queue.NextSequence} (did the queue lose records it had forwarded?)");
            return;
        }
        // What a crash leaves uncommitted: up to a commit interval of acks (thousands of records at full rate)
        // plus the window. The messages are fetched WalkChunk at a time, concurrently. Around an outage the stream
        // may hold records out of order (the client sends its buffer after later publishes), by at most what was in
        // flight: so the walk goes on for ReorderSpan messages past the first one reaching back to the committed
        // position, and skips exactly the records the messages read cover without a hole from there.
        int maxSteps = MaxWalk + 4 * _options.MaxInFlight;
        int reorderSpan = 2 * _options.MaxInFlight;
        var ranges = new List<(long From, long Last)> { newest };
        long lowest = newest.From;
        int extra = lowest <= from ? reorderSpan : -1; // messages still to read past the one reaching `from` (-1: none reached yet)
        (long From, long Last) current = newest;
        ulong streamSequence = last.Seq;
        int step = 0;
        bool ended = false; // a message that is not this queue's, or none (a gap): what was read so far decides
        while (extra != 0 && !ended && step < maxSteps && streamSequence > 1)
        {
            // As many messages as the last one's size suggests are left (batches cover many records each), at most WalkChunk.
            long perMessage = Math.Max(1, current.Last - current.From + 1);
            long needed = extra > 0 ? extra : (lowest - from + perMessage - 1) / perMessage + 1;
            int chunk = (int)Math.Min((ulong)Math.Min(Math.Min(WalkChunk, needed), maxSteps - step), streamSequence - 1);
            var fetches = new Task<StoredMessage?>[chunk];
            for (int i = 0; i < chunk; i++)
                fetches[i] = GetAsync(stream, new StreamMsgGetRequest { Seq = streamSequence - 1 - (ulong)i }, cancellationToken);
            StoredMessage?[] previous = await Task.WhenAll(fetches).ConfigureAwait(false);
            for (int i = 0; i < chunk && extra != 0; i++, step++)
            {
                streamSequence--;
                if (previous[i] is not { } message || Describe(message) is not { } p)
                {
                    ended = true;
                    break;
                }
                ranges.Add(p);
                current = p;
                lowest = Math.Min(lowest, p.From);
                if (extra > 0) extra--;
                else if (lowest <= from) extra = reorderSpan;
            }
        }
        long resume = Math.Min(CoveredFrom(ranges, from), _queue.NextSequence);
        if (resume <= from)
        {
            Log.ResumeUnproven(_logger, _options.Stream, from, _queue.Path,
                $"the {step + 1} messages read back from the newest (stream sequence {last.Seq}) do not cover sequence {from} " +
                $"(a gap, another publisher, or more than {maxSteps} messages)");
            return;
        }
        Volatile.Write(ref _acked, resume);
        Log.ResumedAfterStream(_logger, _options.Stream, from, resume, _queue.Path);
        Commit(force: true);
    }

    /// <summary>The first sequence from <paramref name="from"/> on that none of <paramref name="ranges"/> covers.</summary>
    internal static long CoveredFrom(List<(long From, long Last)> ranges, long from)
    {
        ranges.Sort((x, y) => x.From.CompareTo(y.From));
        long next = from;
        foreach ((long f, long l) in ranges)
        {
            if (f > next) break;
            next = Math.Max(next, l + 1);
        }
        return next;
    }

    /// <summary>Messages fetched at once while walking back.</summary>
    private const int WalkChunk = 256;

    /// <summary>Messages the walk back may read (plus 4 windows) before it gives up and relies on the duplicate window.</summary>
    private const int MaxWalk = 65_536;

    private static async Task<StoredMessage?> GetAsync(INatsJSStream stream, StreamMsgGetRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return (await stream.GetAsync(request, cancellationToken).ConfigureAwait(false)).Message;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return null; // no such message (none on the subject yet, or deleted)
        }
    }

    /// <summary>The range a stored message covers, when its headers say it is this queue's; null otherwise. The headers are untrusted input.</summary>
    private (long From, long Last)? Describe(StoredMessage message)
    {
        if (string.IsNullOrEmpty(message.Hdrs)) return null;
        byte[] raw;
        try { raw = Convert.FromBase64String(message.Hdrs); }
        catch (FormatException) { return null; } // not headers we wrote
        string? queue = null, sequence = null, from = null;
        foreach (string line in Encoding.UTF8.GetString(raw).Split("\r\n"))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) continue;
            string name = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
            if (name.Equals(NatsForwardHeaders.QueueId, StringComparison.OrdinalIgnoreCase)) queue = value;
            else if (name.Equals(NatsForwardHeaders.Sequence, StringComparison.OrdinalIgnoreCase)) sequence = value;
            else if (name.Equals(NatsForwardHeaders.From, StringComparison.OrdinalIgnoreCase)) from = value;
        }
        if (!string.Equals(queue, _queueId, StringComparison.OrdinalIgnoreCase)) return null;
        if (!long.TryParse(sequence, NumberStyles.None, CultureInfo.InvariantCulture, out long lastSeq)) return null;
        long fromSeq = lastSeq; // absent: the message covers its own sequence only
        if (from is not null && (!long.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out fromSeq) || fromSeq > lastSeq)) return null;
        return (fromSeq, lastSeq);
    }

    /// <summary>Whether a stream subject (with NATS wildcards <c>*</c> and <c>&gt;</c>) captures a concrete subject.</summary>
    internal static bool SubjectMatches(string pattern, string subject)
    {
        string[] p = pattern.Split('.'), s = subject.Split('.');
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] == ">") return s.Length > i;
            if (i >= s.Length) return false;
            if (p[i] != "*" && p[i] != s[i]) return false;
        }
        return p.Length == s.Length;
    }
}
