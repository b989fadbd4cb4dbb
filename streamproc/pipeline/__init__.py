"""The running pipeline: sources -> decode -> detect -> alert log -> notify wired together, the
commit protocol, repartitioning, config reload and start-up timing."""
