"""KafkaRecords handed out a list at a time: exactly what aiokafka's own iteration hands out.

Each example builds a fetched partition (record batches as a broker sends them, hostile ones
included: offsets out of order or below the fetch offset, control and aborted transactional
batches, bad CRCs, records that do not parse, compressed batches) and reads it through
aiokafka's ``FetchResult`` twice, with a series of ``getall(max_records)`` and ``getone``
calls: once as an unmarked consumer (aiokafka's code untouched, ConsumerRecords) and once as
a marked one. Both must hand out the same records, leave the same position after each call,
raise the same errors at the same call and log the same lines there.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamproc.sources.kafka_records import (
    KafkaRecord,
    batch_at_a_time,
    install,
    light_records,
)

TP = TopicPartition("auth-logs", 3)
ATTRIBUTES = 21  # where a v2 batch's CRC-covered part starts; the CRC is the 4 bytes before
TRANSACTIONAL, CONTROL = 0x10, 0x20
GZIP = 1


@dataclass
class Batch:
    """One v2 record batch, as a broker could send it (whether or not a sane one would)."""

    base_offset: int
    records: list[tuple[int, bytes | None, bytes | None]]  # (offset delta, key, value)
    producer_id: int = -1
    transactional: bool = False
    control: bool = False  # the records are then one abort or commit marker
    abort: bool = True
    compressed: bool = False
    corrupt: str = ""  # "", "crc" (a byte flipped), "record" (garbage, CRC made to match)
    # past the last record's: compaction removed the last records (next_offset keeps them)
    last_delta: int | None = None

    def build(self) -> bytes:
        builder = DefaultRecordBatchBuilder(
            2, GZIP if self.compressed else 0, 0, self.producer_id, 0, 0, 1 << 20
        )
        if self.control:
            marker = struct.pack(">hh", 0, 0 if self.abort else 1)
            builder.append(0, 1_700_000_000_000, marker, b"", [])
        for i, (delta, key, value) in enumerate(self.records):
            builder.append(delta, 1_700_000_000_000 + i, key, value, [("h", b"v")])
        raw = builder.build()
        struct.pack_into(">q", raw, 0, self.base_offset)
        attrs = struct.unpack_from(">h", raw, ATTRIBUTES)[0]
        if self.last_delta is not None:
            struct.pack_into(">i", raw, ATTRIBUTES + 2, self.last_delta)
        attrs |= (TRANSACTIONAL if self.transactional else 0) | (CONTROL if self.control else 0)
        struct.pack_into(">h", raw, ATTRIBUTES, attrs)
        if self.corrupt == "record":
            raw += b"\x07\x00"  # bytes after the last record, or a record cut short
            struct.pack_into(">i", raw, 8, len(raw) - 12)
        struct.pack_into(">I", raw, ATTRIBUTES - 4, calc_crc32c(bytes(raw[ATTRIBUTES:])))
        if self.corrupt == "crc":
            raw[-1] ^= 0xFF
        return bytes(raw)


@dataclass
class Fetch:
    batches: list[Batch]
    fetch_offset: int = 0
    read_committed: bool = False
    check_crcs: bool = True
    aborted: list[tuple[int, int]] = field(default_factory=list)  # (producer id, first offset)
    tail: bytes = b""  # a batch cut short by the fetch size, as brokers send them

    def data(self) -> bytes:
        return b"".join(b.build() for b in self.batches) + self.tail


class _Position:
    paused = False

    def __init__(self, position: int) -> None:
        self.position = position

    def consumed_to(self, position: int) -> None:
        self.position = position


class _Assignment:
    active = True

    def __init__(self, position: int) -> None:
        self.state = _Position(position)

    def state_value(self, tp: TopicPartition) -> _Position:
        return self.state


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def read(fetch: Fetch, calls: list[int | None], *, marked: bool) -> list[Any]:
    """What each call hands out, raises and logs, and the position it leaves."""
    install()
    records = PartitionRecords(
        TP,
        MemoryRecords(fetch.data()),
        list(fetch.aborted),
        fetch.fetch_offset,
        None,
        light_records if marked else None,
        fetch.check_crcs,
        1 if fetch.read_committed else 0,
    )
    assert (type(records) is not PartitionRecords) == marked
    assignment = _Assignment(fetch.fetch_offset)
    result = FetchResult(TP, assignment=assignment, partition_records=records, backoff=0)
    lines = _Lines()
    fetcher_log = logging.getLogger("aiokafka.consumer.fetcher")
    fetcher_log.addHandler(lines)
    level = fetcher_log.level
    fetcher_log.setLevel(logging.DEBUG)
    seen: list[Any] = []
    try:
        for n in calls:
            if not result.has_more():
                break
            lines.lines.clear()
            try:
                # 0 stands for getone, as the consumer's getone() reads
                got = result.getall(n) if n != 0 else [result.getone()]
                out: Any = [
                    (type(r) is KafkaRecord, r.topic, r.partition, r.offset, r.key, r.value)
                    for r in got
                    if r is not None
                ]
            except Exception as exc:  # noqa: BLE001 - compared, whatever it is
                out = (type(exc).__name__, str(exc))
            seen.append((out, assignment.state.position, result.has_more(), list(lines.lines)))
    finally:
        fetcher_log.removeHandler(lines)
        fetcher_log.setLevel(level)
    return seen


def same_reads(fetch: Fetch, calls: list[int | None]) -> None:
    # fails when an aiokafka release changes the iteration the fast path restates
    assert install() and batch_at_a_time()
    plain = read(fetch, calls, marked=False)
    light = read(fetch, calls, marked=True)
    # the record types differ (ConsumerRecord, KafkaRecord); everything else must not
    assert [_typeless(c) for c in light] == [_typeless(c) for c in plain]
    assert all(kind for c in light if isinstance(c[0], list) for kind, *_ in c[0])


def _typeless(call: Any) -> Any:
    out, *rest = call
    if isinstance(out, list):
        out = [r[1:] for r in out]
    return (out, *rest)


def _records(
    draw: st.DrawFn, n: int, ordered: bool
) -> list[tuple[int, bytes | None, bytes | None]]:
    payload = st.one_of(st.none(), st.binary(max_size=12))
    if ordered:
        deltas = sorted(draw(st.sets(st.integers(0, 3 * n + 2), min_size=n, max_size=n)))
    else:
        deltas = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    return [(d, draw(payload), draw(payload)) for d in deltas]


@st.composite
def fetches(draw: st.DrawFn) -> Fetch:
    batches = []
    base = draw(st.integers(0, 5))
    for _ in range(draw(st.integers(0, 7))):
        control = draw(st.integers(0, 5)) == 0
        n = 0 if control else draw(st.integers(0, 9))
        batch = Batch(
            base,
            _records(draw, n, ordered=draw(st.integers(0, 5)) > 0),
            producer_id=draw(st.sampled_from([-1, -1, 1, 2])),
            transactional=draw(st.booleans()),
            control=control,
            abort=draw(st.booleans()),
            compressed=draw(st.integers(0, 4)) == 0,
            corrupt=draw(st.sampled_from([""] * 12 + ["crc", "record"])),
            last_delta=draw(st.one_of(st.none(), st.integers(0, 12))),
        )
        batches.append(batch)
        # gaps (compaction) and overlaps (a broker's bug) between batches
        base += max(d for d, _, _ in batch.records or [(0, None, None)]) + draw(st.integers(-2, 3))
        base = max(base, batch.base_offset + (batch.last_delta or 0))
        base = max(base, 0)
    return Fetch(
        batches,
        fetch_offset=draw(st.integers(0, base + 2)),
        read_committed=draw(st.booleans()),
        check_crcs=draw(st.integers(0, 3)) > 0,
        aborted=draw(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.integers(0, base + 2)))),
        tail=draw(st.sampled_from([b"", b"\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x01\x00"])),
    )


calls = st.lists(st.one_of(st.none(), st.integers(0, 7)), min_size=1, max_size=12)


@settings(max_examples=1500, deadline=None)
@given(fetches(), calls)
@example(
    # getall stops at the last record of a batch; the next batch starts past a gap
    Fetch([Batch(0, [(0, b"k", b"a"), (1, None, b"b")]), Batch(5, [(0, b"k", b"c")])]),
    [2, 1, 1],
)
@example(
    # the records before a record that does not parse are handed out first
    Fetch([Batch(0, [(0, b"k", b"a"), (1, b"k", b"b")], corrupt="record")]),
    [1, 1, None, None],
)
@example(
    # a bad CRC in the third batch, read one record at a time
    Fetch([Batch(0, [(0, None, b"a")]), Batch(1, [(0, None, b"b")]), Batch(2, [], corrupt="crc")]),
    [0, 0, 0, 0],
)
@example(
    # offsets that go back inside a batch, and start below the fetch offset
    Fetch([Batch(0, [(3, None, b"a"), (1, None, b"b"), (4, None, b"c"), (4, None, b"d")])], 2),
    [None],
)
@example(
    # an aborted transaction between two batches: logged when aiokafka reaches it
    Fetch(
        [
            Batch(0, [(0, None, b"a")], producer_id=1),
            Batch(1, [(0, None, b"b")], producer_id=2, transactional=True),
            Batch(2, [], producer_id=2, transactional=True, control=True),
            Batch(3, [(0, None, b"c")], producer_id=1, transactional=True),
        ],
        read_committed=True,
        aborted=[(2, 1)],
    ),
    [1, 1, 1, 1],
)
def test_marked_consumers_read_exactly_what_aiokafka_hands_out(
    fetch: Fetch, calls: list[int | None]
) -> None:
    same_reads(fetch, calls)


@pytest.mark.parametrize("per_batch", [1, 3, 300, 1000])
@pytest.mark.parametrize("max_records", [1, 7, 256, 257, 5000, None])
def test_positions_are_exact_across_many_batches_and_gathered_lists(
    per_batch: int, max_records: int | None
) -> None:
    batches = []
    base = 0
    while base < 2000:
        batch = Batch(base, [(i, b"user", b"%d" % (base + i)) for i in range(per_batch)])
        if len(batches) % 3 == 2:
            # compacted: its last record is gone, its next offset is still past it
            batch.records = batch.records[:-1] or [(0, None, b"kept")]
            batch.last_delta = per_batch
        batches.append(batch)
        base += per_batch + 2
    n = 1 + 2000 // (max_records or 2000)
    same_reads(Fetch(batches, fetch_offset=1), [max_records] * (n + 2))
