"""``streamproc`` subcommands: each module is one command's entry point."""
