"""What a worker keeps: the alert log, checkpoints, dead-letter destinations, tables read from
topics, and the private files they are written to."""
