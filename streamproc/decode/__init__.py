"""Decoding: raw record bytes -> validated Events, or DeadLetters that say why not.

``BatchDecoder`` is built once per topic binding and decodes each fetched batch of it,
column-wise where it can; ``RecordDecoder`` decodes one record, and says why one is rejected.
"""

from .batch import BatchDecoder
from .deadletter import DeadLetter
from .records import RawRecord, RecordDecoder

__all__ = ["BatchDecoder", "DeadLetter", "RawRecord", "RecordDecoder"]
