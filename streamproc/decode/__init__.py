"""Decoding: raw record bytes -> validated Events, or DeadLetters that say why not.

``RecordDecoder`` is built once per topic binding and called on every batch.
"""

from .deadletter import DeadLetter
from .records import RawRecord, RecordDecoder

__all__ = ["DeadLetter", "RawRecord", "RecordDecoder"]
