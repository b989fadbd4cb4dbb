"""Sources: where records enter. Each yields batches of raw records with an ack handle.

A source never decides what a record means (decode/ does) and never commits on its own:
the runtime calls ``commit(batch)`` once the batch's alerts and dead letters are durable.
"""

from .base import Batch, Source

__all__ = ["Batch", "Source"]
