"""The Ray-free core every task and command builds on: the `Task` seam, search spaces, configs, the training
loop and its reporters, the checkpoint format, errors, the uncertainty rule and command-line helpers."""
