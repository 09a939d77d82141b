using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace MmapQueues.Tests;

/// <summary>
/// Dispose may be called while other threads append and flush: no append writes into an unmapped segment
/// (the process would die of SIGSEGV), every append that returned a sequence is on disk after reopen, and
/// every later call throws ObjectDisposedException.
/// </summary>
public class DisposeRaceTests
{
    private const int Producers = 4;

    [Theory]
    [InlineData(FlushMode.Async)]
    [InlineData(FlushMode.Sync)]
    public void DisposeWhileProducersAppendKeepsEveryReturnedRecordAndFailsLaterCallsWithObjectDisposed(FlushMode mode)
    {
        for (int round = 0; round < 12; round++)
        {
            using var dir = new TempDir();
            var options = TestOptions.Small(mode, 16 * 1024); // small segments: some rounds dispose in the middle of a roll
            var q = new MmapQueue(dir.Path, options);
            var returned = new ConcurrentDictionary<long, (int Producer, int Index)>();
            var unexpected = new ConcurrentBag<Exception>();
            using var running = new CountdownEvent(Producers + 1);
            var threads = Enumerable.Range(0, Producers).Select(p => new Thread(() => Produce(q, p, running, returned, unexpected)))
                .Append(new Thread(() => FlushRepeatedly(q, running, unexpected)))
                .ToArray();
            foreach (Thread t in threads) t.Start();
            Assert.True(running.Wait(TimeSpan.FromSeconds(30)), "the threads did not start");
            Assert.True(SpinWait.SpinUntil(() => !returned.IsEmpty, TimeSpan.FromSeconds(30)), "no append returned within 30 s");
            Thread.Sleep(round % 4); // then 0-3 ms more: from a few records to a few rolls (sync mode: ~90 µs per flush)
            q.Dispose();
            foreach (Thread t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(30)), "a producer did not end after Dispose");

            Assert.True(unexpected.IsEmpty, string.Join("\n", unexpected));
            Assert.Throws<ObjectDisposedException>(() => q.Enqueue([1]));
            Assert.Throws<ObjectDisposedException>(q.Flush);
            using var reopened = new MmapQueue(dir.Path, options);
            var found = new Dictionary<long, (int, int)>();
            using (var r = reopened.OpenReader())
            {
                while (r.TryRead(out var payload))
                    found[r.NextSequence - 1] = (BinaryPrimitives.ReadInt32LittleEndian(payload), BinaryPrimitives.ReadInt32LittleEndian(payload[4..]));
            }
            foreach ((long seq, (int, int) who) in returned)
            {
                Assert.True(found.TryGetValue(seq, out var got), $"round {round}: sequence {seq}, returned to producer {who}, is missing after reopen");
                Assert.Equal(who, got);
            }
        }
    }

    private static void Produce(MmapQueue q, int producer, CountdownEvent running,
        ConcurrentDictionary<long, (int, int)> returned, ConcurrentBag<Exception> unexpected)
    {
        running.Signal();
        try
        {
            for (int i = 0; ; i++)
            {
                int length = 8 + i % 200;
                long seq = i % 3 == 0
                    ? q.Enqueue(length, (producer, i), static (span, s) => Fill(span, s.producer, s.i)) // claim-style
                    : q.Enqueue(Fill(new byte[length], producer, i));
                returned[seq] = (producer, i);
            }
        }
        catch (ObjectDisposedException)
        {
            // the expected end: an append after Dispose
        }
        catch (Exception e)
        {
            unexpected.Add(e);
        }
    }

    private static void FlushRepeatedly(MmapQueue q, CountdownEvent running, ConcurrentBag<Exception> unexpected)
    {
        running.Signal();
        try
        {
            while (true)
            {
                q.Flush();
                Thread.Yield();
            }
        }
        catch (ObjectDisposedException)
        {
            // the expected end: a flush after Dispose
        }
        catch (Exception e)
        {
            unexpected.Add(e);
        }
    }

    private static byte[] Fill(byte[] bytes, int producer, int index)
    {
        Fill(bytes.AsSpan(), producer, index);
        return bytes;
    }

    private static void Fill(Span<byte> bytes, int producer, int index)
    {
        BinaryPrimitives.WriteInt32LittleEndian(bytes, producer);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[4..], index);
    }

    [Fact]
    public async Task DisposeOverACorruptFrameBeforeAnOpenClaimThrowsInsteadOfWaitingForeverAndKeepsTheMappingForTheProducer()
    {
        using var dir = new TempDir();
        var q = new MmapQueue(dir.Path, TestOptions.Small());
        q.Enqueue(new byte[40]);
        using var reserved = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        Task<long> claim = Task.Run(() => q.Enqueue(16, 0, (span, _) => { reserved.Set(); release.Wait(); span.Fill(7); }));
        Assert.True(reserved.Wait(TimeSpan.FromSeconds(10)), "the claim never started");

        CorruptTheFirstUnpublishedFrame(q.Segments[^1]);

        Task dispose = Task.Run(q.Dispose);
        await Assert.ThrowsAsync<QueueCorruptedException>(() => dispose.WaitAsync(TimeSpan.FromSeconds(20))); // a TimeoutException if it hangs
        release.Set(); // the producer finishes its copy into the segment, which is still mapped (no SIGSEGV)
        await claim.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Bytes written into the mapping from outside: a commit word no writer makes, where the open claim's frame is.</summary>
    private static void CorruptTheFirstUnpublishedFrame(Storage.Segment seg)
    {
        var cursor = new Format.FrameCursor(seg.Bytes, Format.SegmentLayout.FirstRecordOffset, seg.BaseSequence);
        while (cursor.Read(verifyCrc: false) is Format.FrameKind.Payload) cursor.Advance();
        BinaryPrimitives.WriteUInt32LittleEndian(seg.Bytes[cursor.Offset..], 0xFFFF_FFFF);
    }
}
