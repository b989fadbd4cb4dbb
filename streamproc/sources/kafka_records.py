"""The records a Kafka source hands out: five fields, built in C, never tracked by the GC.

aiokafka turns each fetched record into a ``ConsumerRecord``: a Python dataclass of eleven
fields (headers copied into a tuple, sizes measured, deserializers consulted), built by a
Python ``__init__`` and tracked by the cyclic garbage collector. That is about 40% of what a
plain ``getmany`` loop costs a record (1M auth events of ~220 B on loopback Tansu, alternating
runs in one process: 166-201k records/s with ConsumerRecords, 336-367k with these), and the
source reads five of the eleven fields.

A consumer asks for these records by passing :func:`light_records` as its value deserializer.
:func:`install` makes each of its fetched record sets (aiokafka's private ``PartitionRecords``)
build them with their own factory in place of ``_consumer_record(tp, record)``; every other
consumer in the process keeps aiokafka's code untouched (a raw baseline measured beside the
source is not slowed). Where an aiokafka release changed that shape, nothing is swapped and
the marker deserializer passes values through unchanged, so the source gets ConsumerRecords,
which carry the same five fields (slower, never wrong). ``installed()`` says which it is; the
test suite checks that the aiokafka it runs against takes the fast path.
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


def _kafka_record(tp: Any, record: Any) -> KafkaRecord:
    return KafkaRecord(record.value, tp.topic, tp.partition, record.offset, record.key)


def install() -> bool:
    """Teach aiokafka's ``PartitionRecords`` to build KafkaRecords for the consumers that
    ask (see the module doc), once; True when in place. A marked consumer's record sets get
    :func:`_kafka_record` as their own factory when made (a fetch's partition), so every other
    consumer keeps aiokafka's code as it is, not a record slower."""
    global _installed
    if _installed:
        return True
    try:
        from aiokafka.consumer.fetcher import PartitionRecords
    except ImportError:  # pragma: no cover - aiokafka moved its fetcher
        log.debug("aiokafka's PartitionRecords not found: ConsumerRecords are kept")
        return False
    factory = getattr(PartitionRecords, "_consumer_record", None)
    made = PartitionRecords.__init__
    if (
        factory is None
        or list(inspect.signature(factory).parameters) != ["self", "tp", "record"]
        or "value_deserializer" not in inspect.signature(made).parameters
        or hasattr(PartitionRecords, "__slots__")
    ):
        log.debug("aiokafka's record factory changed shape: ConsumerRecords are kept")
        return False

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        if getattr(self, "_value_deserializer", None) is light_records:
            self._consumer_record = _kafka_record

    __init__.__wrapped__ = made  # type: ignore[attr-defined]
    PartitionRecords.__init__ = __init__
    _installed = True
    return True
