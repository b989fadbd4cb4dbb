"""EventBatch: a batch's fields as columns, shared by the detectors of an engine."""

from __future__ import annotations

from typing import Any

from streamproc.alerts import Alert
from streamproc.config import parse_config_text
from streamproc.detectors import Detector, build_engine
from streamproc.detectors.columns import EventBatch
from streamproc.events import Event


def _batch() -> EventBatch:
    rows: list[dict[str, Any]] = [
        {"username": "al", "success": False, "tags": ["x"]},
        {"username": "bo", "success": True},
        {"username": "al", "success": False, "country": "NL"},
    ]
    return EventBatch([Event("auth-logs", 100.0 + i, r, "t", 0, i) for i, r in enumerate(rows)])


def test_a_column_reads_absent_fields_as_none_and_is_built_once() -> None:
    batch = _batch()
    assert batch.column("country") == [None, None, "NL"]
    assert batch.column("country") is batch.column("country")
    assert batch.times == [100.0, 101.0, 102.0]


def test_events_are_picked_in_order_by_a_column() -> None:
    batch = _batch()
    assert [e.offset for e in batch.falsy("success")] == [0, 2]
    assert [e.offset for e in batch.truthy("success")] == [1]
    assert [e.offset for e in batch.equal("username", "al")] == [0, 2]
    assert [e.offset for e in batch.not_equal("username", "al")] == [1]
    assert [e.offset for e in batch.among("username", {"bo", "cy"})] == [1]
    # an unhashable value is among nothing, and does not stop the others being read
    assert [e.offset for e in batch.among("tags", frozenset({"x"}))] == []


class _LastSeen(Detector):
    """Keeps one value per key, updated once per batch from a group-by."""

    kind = "last_seen_test"
    family = "auth-logs"
    colocate = ("username",)

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.last: dict[str, float] = {}
        self.batches = 0

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        self.batches += 1
        self.last.update(zip(batch.column("username"), batch.times, strict=True))
        return []


def test_the_engine_hands_each_detector_the_whole_batch_once() -> None:
    config = parse_config_text("")
    binding = next(b for b in config.bindings if b.family == "auth-logs")
    engine = build_engine(config, binding)
    seen = _LastSeen()
    engine.set_detectors([*engine.detectors, seen])
    events = _batch().events
    for ev in events:
        ev.data.setdefault("ip_address", "192.0.2.1")
    engine.process(events)
    assert seen.batches == 1 and seen.last == {"al": 102.0, "bo": 101.0}
