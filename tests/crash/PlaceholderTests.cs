namespace MmapQueues.Tests.Crash;
