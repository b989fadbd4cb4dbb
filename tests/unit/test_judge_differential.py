"""The batch path against the per-event reference.

``Judge.judge`` decodes a fetched batch column-wise (decode/batch.py), groups it by task and
hands each engine the whole batch (detectors read it as an EventBatch). The reference below is
how a record was judged before any of that: ``RecordDecoder.decode`` one record at a time and
an engine per (binding, topic, partition) given one event at a time. On generated streams of
every family, with records out of order, late, duplicated and broken, both must raise the
same alerts (kind, status, fingerprint, event time, severity, title), in the same order for
each detector and key, and write the same dead letters.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.decode import RawRecord, RecordDecoder
from streamproc.detectors import build_engine
from streamproc.events import Event
from streamproc.pipeline.runtime import Judge, rejected_dead_letter
from streamproc.traffic import generate

SCENARIOS = ["auth", "api", "hosts", "cicd", "tickets", "business", "mixed"]
PARTITIONS = 3


def _stream(scenario: str, n: int, seed: int) -> list[RawRecord]:
    """The scenario's records, keyed onto partitions as a producer would, with trouble
    mixed in: neighbours swapped (out of order within the allowed lateness), records two
    hours old (late), exact duplicates, and values no decoder accepts."""
    config = parse_config_text("")
    topic_of = {b.family: b.topic for b in config.bindings}
    rng = random.Random(seed)
    out: list[RawRecord] = []
    offsets: dict[tuple[str, int], int] = {}
    merged = generate(scenario, n, seed=seed).merged_bytes()
    for i, (family, key, value) in enumerate(merged):
        topic = topic_of[family]
        partition = zlib.crc32(key or b"") % PARTITIONS
        roll = rng.random()
        if roll < 0.01:
            data = orjson.loads(value)
            data["timestamp"] = "2020-01-01T00:00:00Z" if roll < 0.003 else data["timestamp"]
            if roll >= 0.003 and out:
                value = orjson.dumps(data)  # a duplicate of itself, judged twice
                out.append(_record(offsets, value, topic, partition, key))
            else:
                value = orjson.dumps(data)
        elif roll < 0.015:
            value = rng.choice(
                [
                    b"{not json",
                    b"[]",
                    b'{"timestamp": 5}',
                    b"",
                    value.replace(b'"', b"'", 2),
                    value[: len(value) // 2],
                ]
            )
        out.append(_record(offsets, value, topic, partition, key))
        if (
            rng.random() < 0.05
            and i % 2
            and len(out) >= 2
            and out[-1].topic == out[-2].topic
            and out[-1].partition == out[-2].partition
        ):
            a, b = out[-2], out[-1]  # swap their values: each keeps its own offset
            out[-2] = RawRecord(b.value, a.topic, a.partition, a.offset, b.key)
            out[-1] = RawRecord(a.value, b.topic, b.partition, b.offset, a.key)
    return out


def _record(
    offsets: dict[tuple[str, int], int], value: bytes, topic: str, partition: int, key: bytes | None
) -> RawRecord:
    offset = offsets.get((topic, partition), 0)
    offsets[(topic, partition)] = offset + 1
    return RawRecord(value, topic, partition, offset, key)


def _alert_row(a: Any) -> tuple[Any, ...]:
    return (a.kind, a.status, a.fingerprint, a.event_time, a.severity, a.title)


def _dead_row(d: Any) -> tuple[Any, ...]:
    return (d.reason, d.topic, d.partition, d.offset, d.detail)


def _by_key(alerts: list[Any]) -> dict[tuple[str, bytes], list[tuple[Any, ...]]]:
    """Alerts by kind and key, each list in the order raised. No order holds between keys:
    partitions are judged side by side, and a batch's timers fire after its records (one
    event at a time, a timer may fire between two records of other keys)."""
    out: dict[tuple[str, bytes], list[tuple[Any, ...]]] = {}
    for a in alerts:
        where = (a.kind, orjson.dumps(a.key, option=orjson.OPT_SORT_KEYS))
        out.setdefault(where, []).append(_alert_row(a))
    return out


def _batched(records: list[RawRecord], batch: int) -> tuple[list[Any], list[Any]]:
    judge = Judge(parse_config_text(""), partitioned=True)
    alerts: list[Any] = []
    dead: list[Any] = []
    for i in range(0, len(records), batch):
        out, dls = judge.judge(records[i : i + batch], "kafka")
        alerts.extend(out)
        dead.extend(dls)
    alerts.extend(judge.finish())
    dead.extend(judge.final_dead)
    return alerts, dead


def _one_at_a_time(records: list[RawRecord]) -> tuple[list[Any], list[Any]]:
    config = parse_config_text("")
    bindings = {b.topic: b for b in config.bindings}
    decoders = {topic: RecordDecoder(b.contract) for topic, b in bindings.items()}
    engines: dict[tuple[str, int], Any] = {}
    alerts: list[Any] = []
    dead: list[Any] = []
    for r in records:
        out = decoders[r.topic].decode(r.value, r.topic, r.partition, r.offset, r.key)
        if not isinstance(out, Event):
            dead.append(out)
            continue
        engine = engines.get((r.topic, r.partition))
        if engine is None:
            engine = engines[(r.topic, r.partition)] = build_engine(config, bindings[r.topic])
        got, rejected = engine.process([out])
        alerts.extend(got)
        dead.extend(map(rejected_dead_letter, rejected))
    for engine in engines.values():
        alerts.extend(engine.finish())
        dead.extend(map(rejected_dead_letter, engine.take_late()))
    return alerts, dead


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_batch_path_judges_as_the_per_event_reference_does(scenario: str) -> None:
    records = _stream(scenario, 6000, seed=11)
    want_alerts, want_dead = _one_at_a_time(records)
    got_alerts, got_dead = _batched(records, 700)
    assert want_alerts, f"the {scenario} stream raises alerts"
    assert {d.reason for d in want_dead} >= {"late", "not_json"}
    assert _by_key(got_alerts) == _by_key(want_alerts)
    assert sorted(map(_dead_row, got_dead)) == sorted(map(_dead_row, want_dead))
