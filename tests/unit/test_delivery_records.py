"""The delivery side's records, written and read the cheap way, are the ones the plain way
gives: the active-alerts table's records (key, partition, value, order) as
``producer.send`` of ``ActiveAlert(compact(a), ...).to_json()`` put them, batch partitions
as aiokafka's murmur2 partitioner, and alerts read from the alert log as
``Alert.from_json``."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.alerts import Alert
from streamproc.config import parse_config_text
from streamproc.notify.active import ActiveAlert, KafkaActiveAlerts, compact, record_value
from streamproc.ops.backoff import Backoff
from streamproc.ops.metrics import Metrics
from streamproc.pipeline.batches import BatchWriter, murmur2_many

NOW = 1_780_000_000.5

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
json_scalars |= st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
dicts = st.dictionaries(st.text(max_size=6), json_values, max_size=4)


@st.composite
def alerts(draw: st.DrawFn) -> Alert:
    return Alert(
        kind=draw(st.sampled_from(["brute_force", "ticket_created", "x" * 40])),
        severity=draw(st.sampled_from(["low", "high"])),
        status=draw(st.sampled_from(["firing", "resolved"])),
        key=draw(dicts),
        fingerprint=draw(st.text("0123456789abcdef", min_size=1, max_size=64)),
        event_time=draw(st.floats(0, 2e9) | st.integers(0, 2_000_000_000)),
        title=draw(st.text(max_size=20)),
        body=draw(st.text(max_size=20)),
        labels=draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)),
        evidence=draw(dicts),
        source=draw(dicts),
        family=draw(st.sampled_from(["", "auth-logs"])),
        audience=draw(st.sampled_from(["internal", "customer"])),
        truncated=draw(st.lists(st.text(max_size=6), max_size=2)),
    )


@settings(max_examples=150, deadline=None)
@given(alerts(), st.floats(0, 2e9), st.floats(0, 2e9) | st.integers(0, 2**40))
def test_a_record_value_is_the_compact_entry_encoded(a: Alert, updated: float, ends: float) -> None:
    assert record_value(a, updated, ends) == ActiveAlert(compact(a), updated, ends).to_json()


def test_a_record_value_encodes_what_json_cannot_hold_as_the_entry_does() -> None:
    a = Alert("k", "low", "firing", {"when": dt.date(2026, 1, 2)}, "fp", 1.0, "t")
    a.labels = {"at": dt.datetime(2026, 1, 2, 3, 4)}  # type: ignore[dict-item]
    assert record_value(a, 1.0, 2.0) == ActiveAlert(compact(a), 1.0, 2.0).to_json()


def test_murmur2_many_is_murmur2() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randrange(0, 40)) for _ in range(3000)]
    keys += [rng.randbytes(8).hex().encode() for _ in range(500)]  # fingerprints: one length
    keys += [b"\xff" * n for n in range(12)] * 20  # every bit set, each tail length
    keys += [b"\x00" * n for n in range(12)] * 20
    keys += [b"lonely"]  # a length of few keys: the scalar path
    assert murmur2_many(keys) == [murmur2(k) for k in keys]
    assert murmur2_many([]) == []


class Batch:
    def __init__(self, room: int) -> None:
        self.records: list[tuple[bytes | None, bytes, Any]] = []
        self.room = room
        self.closed = False

    def append(self, *, key: bytes | None, value: bytes, timestamp: Any) -> object | None:
        if self.closed or len(self.records) >= self.room:
            return None
        self.records.append((key, value, timestamp))
        return object()

    def close(self) -> None:
        self.closed = True


class Producer:
    """Takes pre-built batches as AIOKafkaProducer does; refuses the first ``refuse``."""

    def __init__(self, partitions: int = 3, room: int = 7, refuse: int = 0) -> None:
        self.partitions = partitions
        self.room = room
        self.refuse = refuse
        self.sent: list[tuple[str, int, bytes | None, bytes, Any]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> Batch:
        return Batch(self.room)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert batch.closed
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.refuse:
            self.refuse -= 1
            fut.set_exception(ConnectionError("refused"))
        else:
            self.sent.extend((topic, partition, k, v, ts) for k, v, ts in batch.records)
            fut.set_result(None)
        return fut


def _config() -> Any:
    return parse_config_text(
        "kafka:\n  bootstrap_servers: 127.0.0.1:1\n  group_id: g\n"
        "topics:\n  - topic: auth\n    family: auth-logs\n",
        file=None,
    ).kafka


async def test_an_alert_no_record_can_hold_is_skipped_and_the_rest_published() -> None:
    """A foreign alert-log record decodes to what orjson cannot write (nested past its
    limit) or to a fingerprint that is no string: neither may stop delivery nor hold back
    the entries after it."""
    deep: dict[str, object] = {}
    for _ in range(300):
        deep = {"d": deep}
    producer = Producer()
    table = KafkaActiveAlerts(_config(), producer, 600.0, follow=False, clock=lambda: NOW)
    ok = Alert("k", "low", "firing", {}, "fp-ok", NOW, "t")
    bad = [
        Alert("k", "low", "firing", deep, "fp-deep", NOW, "t"),
        Alert("k", "low", "firing", {}, 12, NOW, "t"),  # type: ignore[arg-type]
    ]
    await table.record([*bad, ok])
    await asyncio.wait_for(table._drained.wait(), 10)
    await table.stop()
    assert [key for _, _, key, _, _ in producer.sent] == [b"fp-ok"]
    assert table.unencodable == 2 and table.published == 1
    metrics = Metrics(process_metrics=False)
    metrics.watch_active_publishing(table)
    metrics.exposition()
    entries = "streamproc_active_alerts_entries_total"
    assert metrics.value(entries, {"outcome": "unencodable"}) == 2
    assert metrics.value(entries, {"outcome": "published"}) == 1
    assert metrics.value(entries, {"outcome": "dropped"}) == 0
    assert metrics.value("streamproc_active_alerts_pending") == 0


@pytest.mark.parametrize("refuse", [0, 1])
async def test_the_table_is_written_as_producer_send_wrote_it(refuse: int) -> None:
    """Each record where ``send`` put it (the default partitioner), keyed by fingerprint,
    valued as the entry's ``to_json``, in the order recorded within a partition; a refused
    batch is sent again, then what came after."""
    rng = random.Random(3)
    cfg = _config()
    producer = Producer(refuse=refuse)
    table = KafkaActiveAlerts(
        cfg, producer, 600.0, follow=False, clock=lambda: NOW, backoff=Backoff(initial=0.01)
    )
    recorded: list[Alert] = []
    for size in (1, 40, 2500, 3):  # one publish is at most 1000 entries
        batch = [
            Alert(
                "brute_force",
                "high",
                rng.choice(["firing", "resolved"]),
                {"n": len(recorded) + i},
                rng.randbytes(8).hex() if rng.random() < 0.8 else "repeated",
                NOW - rng.random() * 100,
                f"alert {i}",
                evidence={"dropped": True},
                truncated=["evidence.x"],
            )
            for i in range(size)
        ]
        recorded += batch
        await table.record(batch)
    await asyncio.wait_for(table._drained.wait(), 10)
    await table.stop()
    partitioner = DefaultPartitioner()
    expected: dict[int, list[tuple[bytes, bytes]]] = {}
    for a in recorded:
        key = a.fingerprint.encode()
        ends = a.event_time if a.status == "resolved" else NOW + 600.0
        p = partitioner(key, [0, 1, 2], [0, 1, 2])
        expected.setdefault(p, []).append((key, ActiveAlert(compact(a), NOW, ends).to_json()))
    got: dict[int, list[tuple[bytes, bytes]]] = {}
    for topic, p, key, value, timestamp in producer.sent:
        assert topic == cfg.topics.active_alerts and timestamp is None  # the send time
        assert key is not None
        got.setdefault(p, []).append((key, value))
    if refuse:  # at least once: the refused publish is sent again whole, in order
        assert got.keys() == expected.keys()
        for p, records in expected.items():
            assert got[p][-len(records) :] == records
            assert set(got[p]) == set(records)
    else:
        assert got == expected
    assert table.published == len(recorded) and table.pending == 0
    assert table.failed_sends == refuse
    metrics = Metrics(process_metrics=False)
    metrics.watch_active_publishing(table)
    assert metrics.value("streamproc_active_alerts_send_failures_total") == refuse
    assert metrics.value("streamproc_active_alerts_entries_total", {"outcome": "published"}) == (
        len(recorded)
    )
    assert table.by_fp == {}  # publish only: nothing kept


async def test_a_following_table_keeps_what_it_publishes() -> None:
    table = KafkaActiveAlerts(_config(), Producer(), 600.0, follow=True, clock=lambda: NOW)
    a = Alert("k", "low", "firing", {"a": 1}, "fp1", NOW, "t", evidence={"e": 1})
    await table.record([a])
    assert table.current(NOW) == [ActiveAlert(compact(a), NOW, NOW + 600.0)]
    await asyncio.wait_for(table._drained.wait(), 10)
    table._sender.cancel()  # type: ignore[union-attr]
    await asyncio.gather(table._sender, return_exceptions=True)  # type: ignore[arg-type]


async def test_learned_partitions_are_the_ones_write_computes() -> None:
    rng = random.Random(5)
    keys = [rng.randbytes(rng.randrange(1, 30)) for _ in range(400)] + [b"k" * 2000]
    learned, plain = BatchWriter(Producer(partitions=5)), BatchWriter(Producer(partitions=5))
    many = [n.to_bytes(4, "big") for n in range(30_000)]
    await learned.learn("t", many[:15_000])
    await learned.learn("t", many[15_000:])  # bounded: what came before is let go
    assert len(learned._partition_of) == 15_000
    await learned.learn("t", keys)
    assert (b"k" * 2000, 5) not in learned._partition_of  # over MAX_KEY_BYTES: write fits it
    assert [learned.partition(k, 5) for k in keys[:-1]] == [
        plain.partition(k, 5) for k in keys[:-1]
    ]


def _by_name(raw: bytes) -> Alert:
    """The alert log's reading, plainly stated (each field by name), that Alert.from_json
    (each by position) must equal, value and exception."""
    d = orjson.loads(raw)
    return Alert(
        kind=d["kind"],
        severity=d["severity"],
        status=d["status"],
        key=d.get("key") or {},
        fingerprint=d["fingerprint"],
        event_time=float(d["event_time"]),
        title=d.get("title", ""),
        body=d.get("body", ""),
        labels=d.get("labels") or {},
        evidence=d.get("evidence") or {},
        source=d.get("source") or {},
        family=d.get("family", ""),
        audience=d.get("audience", "internal"),
        truncated=list(d.get("truncated") or ()),
    )


@settings(max_examples=150, deadline=None)
@given(alerts())
def test_an_alert_read_from_the_log_is_from_json(a: Alert) -> None:
    raw = a.to_json()
    assert Alert.from_json(raw) == _by_name(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"kind":"k","severity":"low","status":"firing","fingerprint":"f","event_time":1}',
        b'{"kind":"k","severity":"low","status":"firing","fingerprint":"f","event_time":"2.5",'
        b'"key":null,"labels":[],"evidence":0,"source":"","title":null,"truncated":"ab",'
        b'"extra":1}',
        b'{"kind":1,"severity":[],"status":{},"fingerprint":2,"event_time":1.5,"family":null}',
    ],
)
def test_a_foreign_alert_is_read_as_from_json_reads_it(raw: bytes) -> None:
    assert Alert.from_json(raw) == _by_name(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b"null",
        b'{"severity":"low"}',
        b'{"kind":"k","severity":"low","status":"firing","fingerprint":"f"}',
        b'{"kind":"k","severity":"low","status":"firing","fingerprint":"f","event_time":null}',
        b'{"kind":"k","severity":"low","status":"firing","fingerprint":"f","event_time":"x"}',
        b'{"kind":"k","severity":"low","status":"firing","fingerprint":"f","event_time":1,'
        b'"truncated":5}',
    ],
)
def test_an_unreadable_alert_fails_as_from_json_fails(raw: bytes) -> None:
    with pytest.raises(Exception) as plain:
        _by_name(raw)
    with pytest.raises(Exception) as fast:
        Alert.from_json(raw)
    assert (type(fast.value), str(fast.value)) == (type(plain.value), str(plain.value))


def test_the_bench_alerts_round_trip() -> None:
    """Alerts as detectors build them, evidence and all."""
    rng = random.Random(11)
    for n in range(200):
        a = Alert(
            "pipeline_failed",
            "high",
            "firing",
            {"pipeline": f"p{n}"},
            rng.randbytes(8).hex(),
            NOW + n,
            "title",
            "body",
            {"kind": "pipeline_failed"},
            {"samples": [{"ts": "2026-01-01T00:00:00Z", "v": n / 7}], "count": n},
            {"topic": "t", "partition": n % 3, "offset": n},
        )
        raw = a.to_json()
        assert Alert.from_json(raw) == _by_name(raw) == a
        assert orjson.loads(record_value(a, NOW, NOW + 1))["alert"]["evidence"] == {}
