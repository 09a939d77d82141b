using BenchmarkDotNet.Running;
using MmapQueues.Benchmarks.Compare;

// dotnet run -c Release --project benchmarks -- bdn [BenchmarkDotNet arguments, e.g. --filter '*Append*']
// dotnet run -c Release --project benchmarks -- compare [--quick] [--no-write] [--cases 1,4] [--dir PATH]
if (args.Length > 0 && args[0] == "compare") return Harness.Run(args[1..]);
// dotnet run -c Release --project benchmarks -- wake [--samples N]   (cross-process wake latency, issue 13)
if (args.Length > 0 && args[0] == "wake") return MmapQueues.Benchmarks.Processes.WakeLatency.Run(args[1..]);
if (args.Length > 0 && args[0] == "wake-child") return MmapQueues.Benchmarks.Processes.WakeLatency.Child(args[1..]);
if (args.Length > 0 && args[0] == "wake-queue-child") return MmapQueues.Benchmarks.Processes.QueueAcrossProcesses.LatencyChild(args[1..]);
if (args.Length > 0 && args[0] == "rate-child") return MmapQueues.Benchmarks.Processes.QueueAcrossProcesses.ReadRateChild(args[1..]);
if (args.Length > 0 && args[0] == "bdn")
{
    BenchmarkSwitcher.FromAssembly(typeof(Harness).Assembly).Run(args[1..], MmapQueues.Benchmarks.Bdn.BdnConfig.Create());
    return 0;
}
Console.Error.WriteLine("usage: benchmarks bdn [--filter PATTERN ...] | compare [--quick] [--no-write] [--cases 1,2,...] [--dir PATH] [--out FILE] | wake [--samples N]");
return 2;
