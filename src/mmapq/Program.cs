using MmapQueues.Cli;

// Minimal entry point; the CLI issue replaces this with System.CommandLine commands.
string command = args.Length > 0 ? args[0] : "demo";
if (command == "demo")
{
    string dir = args.Length > 1 ? args[1] : "demo-queue";
    return Demo.Run(dir, 1_000_000);
}
Console.Error.WriteLine($"unknown command '{command}'; try: demo [directory]");
return 2;
