"""The records a Kafka source hands out: five fields, built in C, never tracked by the GC.

aiokafka turns each fetched record into a ``ConsumerRecord``: a Python dataclass of eleven
fields (headers copied into a tuple, sizes measured, deserializers consulted), built by a
Python ``__init__`` and tracked by the cyclic garbage collector. That is about 40% of what a
plain ``getmany`` loop costs a record (1M auth events of ~220 B on loopback Tansu, alternating
runs in one process: 166-201k records/s with ConsumerRecords, 336-367k with these), and the
source reads five of the eleven fields.

A consumer asks for these records by passing :func:`light_records` as its value deserializer.
:func:`install` swaps aiokafka's record factory for one that builds a :class:`KafkaRecord` for
such consumers and a ConsumerRecord for every other consumer in the process. The factory is
aiokafka's private ``PartitionRecords._consumer_record(tp, record)``: where an aiokafka
release lacks it or changed its shape, nothing is swapped and the marker deserializer passes
values through unchanged, so the source gets ConsumerRecords, which carry the same five
fields (slower, never wrong). ``installed()`` says which it is; the test suite checks that the
aiokafka it runs against takes the fast path.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import msgspec

log = logging.getLogger(__name__)


class KafkaRecord(msgspec.Struct, gc=False):
    """What the pipeline reads of a Kafka record (the fields of a RawRecord)."""

    value: bytes | None  # (None: a tombstone)
    topic: str
    partition: int
    offset: int
    key: bytes | None = None


def light_records(value: bytes | None) -> bytes | None:
    """The value deserializer that asks for :class:`KafkaRecord` records (identity where
    the fast path is not installed)."""
    return value


_installed = False


def installed() -> bool:
    """True when consumers that ask for them get :class:`KafkaRecord` records."""
    return _installed


def install() -> bool:
    """Swap aiokafka's record factory once (see the module doc); True when in place."""
    global _installed
    if _installed:
        return True
    try:
        from aiokafka.consumer.fetcher import PartitionRecords
    except ImportError:  # pragma: no cover - aiokafka moved its fetcher
        log.debug("aiokafka's PartitionRecords not found: ConsumerRecords are kept")
        return False
    original = getattr(PartitionRecords, "_consumer_record", None)
    if original is None or list(inspect.signature(original).parameters) != [
        "self",
        "tp",
        "record",
    ]:
        log.debug("aiokafka's record factory changed shape: ConsumerRecords are kept")
        return False

    def consumer_record(self: Any, tp: Any, record: Any) -> Any:
        # (getattr: a consumer built by a release without this attribute gets the original)
        if getattr(self, "_value_deserializer", None) is light_records:
            return KafkaRecord(record.value, tp.topic, tp.partition, record.offset, record.key)
        return original(self, tp, record)

    consumer_record.__wrapped__ = original  # type: ignore[attr-defined]
    PartitionRecords._consumer_record = consumer_record
    _installed = True
    return True
