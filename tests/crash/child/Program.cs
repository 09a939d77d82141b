// The crash child: appends self-describing records (see Shared/TestRecord.cs) to a queue and reports on
// stdout what the library promised, so the test can kill it (SIGKILL) at any moment and check the queue.
//
//   S <next>        the queue is open; the next record gets sequence <next>
//   E <seq> <tag>   Enqueue returned <seq> for the record with <tag> (appended, visible)
//   A <seq>         every record up to and including <seq> is acknowledged durable: sync mode when
//                   Enqueue returned; async after a Flush that started after it returned; interval when
//                   DurableSequence (moved by the background flush) passed it
//   c <seq>         (consumer mode) the named consumer "c" starts a Commit of position <seq>
//   C <seq>         (consumer mode) that Commit returned: <seq> is its durable committed position (also
//                   printed once after it opened, with the position it resumed at)
//   Y <rolls>       (consumer mode) rolls so far that reused a segment retention freed (RecycleSegments)
//   F <message>     (disk-full run) Enqueue failed with an IOException
//   R <count>       (disk-full run) a reader read <count> intact records from the start
//   D               (disk-full run) the filler file was deleted: space is free again
//   OK              finished without being killed
//   X <error>       an unexpected exception (exit code 3)
using MmapQueues;
using MmapQueues.Crash;
using MmapQueues.CrashChild;

try
{
    var o = ChildOptions.Parse(args);
    return o.Filler is null ? Appender.Run(o) : DiskFiller.Run(o);
}
catch (Exception e)
{
    Output.Line($"X {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
    return 3;
}
