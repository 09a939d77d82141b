// Placeholder: the crash-suite issue fills this in.
return 0;
