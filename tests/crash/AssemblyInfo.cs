// Crash tests start processes, mount loop filesystems and time kills: they run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
