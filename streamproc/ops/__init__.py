"""Operating a worker: metrics and health endpoints, logs and redaction, reconnect backoff,
child processes, the embedded broker."""
