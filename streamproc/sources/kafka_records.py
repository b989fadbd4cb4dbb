"""The records a Kafka source hands out: five fields, built in C, never tracked by the GC,
handed out a list at a time.

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

aiokafka then hands each record out on its own: ``FetchResult.getall`` calls
``PartitionRecords.__next__``, a Python method, per record, which resumes the
``_unpack_records`` generator (compare the offset with the position, build the record, move
the position, yield). A marked consumer's record sets (:class:`_BatchAtATime`) build a
batch's records in one loop, or several small batches' up to ``_GATHER``, and give
``getall``'s ``for`` loop a ``chain`` over those lists, which it drains in C. The position
``getall`` reads when ``max_records`` stops it inside a list is read off that list's
iterator. All else is aiokafka's step for step: the order, the records below the fetch offset
skipped, control and aborted transactional batches skipped, a bad CRC or a record that does
not parse raised at the record aiokafka raises it (the records before it handed out first),
the debug line of an aborted batch logged at the same record. A property test reads hostile
batches both ways and compares records, positions, errors and log lines call by call.
Because this restates aiokafka's code, it is taken only where that code is what it restates
(the digest of the source of ``__iter__``, ``__next__`` and ``_unpack_records``, the same in
aiokafka 0.13.0 and 0.14.0); elsewhere KafkaRecords are handed out one by one
(``batch_at_a_time()`` says which).

Measured, before (one by one) and after (a list at a time):

- A count-only ``getmany`` loop (bench/peers_clients.py's raw-light) over 1M peer auth
  events (bench/peers_workload.py, ~227 B a record in its batch, 4 partitions) from a
  loopback Tansu on 2 cores, a process per run, before and after alternating, medians, the
  first ``getmany`` not counted: with ``max_records=10000``, 706k -> 820k records/s (7 runs
  each) and 1.01 -> 0.81 us of CPU a record; with ``max_records=5000`` (the source's
  default), 744k -> 885k records/s and 0.98 -> 0.76 us (5 runs). Unmarked consumers'
  ConsumerRecords, same loop: 464k and 465k records/s, 1.74 and 1.73 us (unchanged).
- Instructions (callgrind, 3 passes less 1 pass over the same bytes, divided by the records)
  of ``FetchResult.getall(max_records=5000)`` over 20,000 of those records, CRC checked
  (about 880 instructions a record of it): 5,996 -> 4,100 a record in 512 KiB batches; 6,184
  -> 4,381 in batches of 10 records; 8,677 -> 7,177 in batches of one record (gathered, so a
  list's hand-over is not paid a record). ConsumerRecords: 10,731 and 10,748.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable, Iterator
from itertools import chain
from operator import length_hint
from typing import Any

import msgspec

log = logging.getLogger(__name__)
# aiokafka's: what it logs of the batches it skips is logged under its name here too
_fetcher_log = logging.getLogger("aiokafka.consumer.fetcher")
_READ_COMMITTED = 1
# records gathered from small batches before they are handed out: a list's hand-over (a
# generator step, a list, its iterator) is not paid a record where batches hold one record
_GATHER = 256

# sha256 of the source of PartitionRecords.__iter__, __next__ and _unpack_records (aiokafka
# 0.13.0 and 0.14.0, byte for byte): the code _BatchAtATime restates
_ITERATION_DIGEST = "9b0efe7d262185bf36725a1d7d33d41fa8aae2c222cae0f0a142a0db53ed3e45"


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
_batch_at_a_time = False


def installed() -> bool:
    """True when consumers that ask for them get :class:`KafkaRecord` records."""
    return _installed


def batch_at_a_time() -> bool:
    """True when those records are also handed out a record batch at a time."""
    return _batch_at_a_time


def _kafka_record(tp: Any, record: Any) -> KafkaRecord:
    return KafkaRecord(record.value, tp.topic, tp.partition, record.offset, record.key)


class _BatchAtATime:
    """A marked consumer's record set, handed out a list of records at a time (see the
    module doc). Mixed in before aiokafka's ``PartitionRecords``, whose ``__init__`` has run.

    ``_batches`` is aiokafka's ``_unpack_records`` step for step (the same batches skipped,
    the same records below the position skipped, the same position after each batch), except
    that where that yields each record, this gathers the records of consecutive batches into
    a list (one batch, or several small ones up to ``_GATHER`` records) and yields the list's
    iterator, which ``chain`` drains in C. Whoever reads the position between two records
    reads it off that iterator: the offset after the last record taken, which is what
    aiokafka's generator had written when paused after yielding that record.

    What aiokafka does between two records (raise a corrupt batch's error, log an aborted
    batch) is done after the records gathered before it are handed out, so each happens at
    the same record, with the same position, as there.
    """

    # set by PartitionRecords.__init__
    _tp: Any
    _records: Any
    _check_crcs: bool
    _isolation_level: int
    _aborted_producers: set[int]
    _consume_aborted_up_to: Callable[[int], None]
    _contains_abort_marker: Callable[[Any], bool]
    _records_iterator: Iterator[KafkaRecord] | None

    # the position when no list is being handed out
    _position: int
    # the list being handed out and its iterator
    _batch: list[KafkaRecord] | None
    _taking: Iterator[KafkaRecord] | None

    def _take_over(self) -> None:
        self._position = self.__dict__.pop("next_fetch_offset")
        self._batch = self._taking = None
        # aiokafka's generator has not started: dropping it runs none of its code
        self._records_iterator = chain.from_iterable(self._batches())

    def __iter__(self) -> Iterator[KafkaRecord]:
        # ``for msg in records`` (FetchResult.getall) runs in C; ``next(records)``
        # (getone) still goes through PartitionRecords.__next__, on the same iterator
        it = self._records_iterator
        return it if it is not None else iter(())

    @property
    def next_fetch_offset(self) -> int:
        batch = self._batch
        if batch is not None:
            taken = len(batch) - length_hint(self._taking)
            if taken:
                return batch[taken - 1].offset + 1
        return self._position

    def _batches(self) -> Iterator[Iterator[KafkaRecord]]:
        tp = self._tp
        topic, partition = tp.topic, tp.partition
        records = self._records
        check_crcs = self._check_crcs
        read_committed = self._isolation_level == _READ_COMMITTED
        record = KafkaRecord
        # aiokafka's next_fetch_offset as its generator moves it
        position = self._position
        batch: list[KafkaRecord] = []
        append = batch.append
        while True:
            failed: Exception | None = None
            aborted = None
            try:
                if not records.has_next():
                    break
                next_batch = records.next_batch()
                if check_crcs and not next_batch.validate_crc():
                    from aiokafka.errors import CorruptRecordException

                    raise CorruptRecordException(f"Invalid CRC - {tp}")

                if read_committed and next_batch.producer_id is not None:
                    self._consume_aborted_up_to(next_batch.base_offset)
                    if next_batch.is_control_batch and self._contains_abort_marker(next_batch):
                        self._aborted_producers.discard(next_batch.producer_id)
                    if (
                        next_batch.is_transactional
                        and next_batch.producer_id in self._aborted_producers
                    ):
                        aborted = next_batch

                if aborted is not None:
                    pass  # skipped below, once the records gathered before it are out
                elif next_batch.is_control_batch:
                    position = next_batch.next_offset
                else:
                    for r in next_batch:
                        offset = r.offset
                        if offset >= position:
                            append(record(r.value, topic, partition, offset, r.key))
                            position = offset + 1
                    position = next_batch.next_offset
            except Exception as exc:  # noqa: BLE001 - raised below, as aiokafka would
                failed = exc
            if batch and (failed is not None or aborted is not None or len(batch) >= _GATHER):
                self._batch = batch
                self._taking = taking = iter(batch)
                yield taking
                self._batch = self._taking = None
                batch = []
                append = batch.append
            if failed is not None:
                self._position = position
                raise failed
            if aborted is not None:
                _fetcher_log.debug(
                    "Skipping aborted record batch from partition %s with"
                    " producer_id %s and offsets %s to %s",
                    tp,
                    aborted.producer_id,
                    aborted.base_offset,
                    aborted.next_offset - 1,
                )
                position = aborted.next_offset
        if batch:
            self._batch = batch
            self._taking = taking = iter(batch)
            yield taking
            self._batch = self._taking = None
        self._position = position


def _source_digest(*functions: Any) -> str | None:
    try:
        text = "".join(inspect.getsource(f) for f in functions)
    except (OSError, TypeError):  # no source shipped
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def install() -> bool:
    """Teach aiokafka's ``PartitionRecords`` to build KafkaRecords for the consumers that
    ask (see the module doc), once; True when in place. A marked consumer's record sets get
    :func:`_kafka_record` as their own factory when made (a fetch's partition), so every other
    consumer keeps aiokafka's code as it is, not a record slower. Where aiokafka's iteration
    is the code :class:`_BatchAtATime` restates, they are also handed out a batch at a time."""
    global _installed, _batch_at_a_time
    if _installed:
        return True
    try:
        from aiokafka.consumer import fetcher
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

    light: type | None = None
    iteration = _source_digest(
        PartitionRecords.__iter__, PartitionRecords.__next__, PartitionRecords._unpack_records
    )
    if iteration == _ITERATION_DIGEST and getattr(fetcher, "READ_COMMITTED", None) == 1:
        light = type("LightPartitionRecords", (_BatchAtATime, PartitionRecords), {})
    else:
        log.debug("aiokafka's record iteration changed: KafkaRecords are handed out one by one")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        if getattr(self, "_value_deserializer", None) is light_records:
            self._consumer_record = _kafka_record
            if light is not None:
                self.__class__ = light
                self._take_over()

    __init__.__wrapped__ = made  # type: ignore[attr-defined]
    PartitionRecords.__init__ = __init__
    _installed = True
    _batch_at_a_time = light is not None
    return True
