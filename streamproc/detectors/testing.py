"""Helpers for testing detectors (ours and yours): feed events at chosen event times through
a real ``DetectorEngine`` and look at the alerts.

    from streamproc.detectors.testing import Harness, T0

    h = Harness("brute_force", params={"brute_force": {"threshold": 3}})
    for i in range(3):
        h.send(T0 + i, username="alice", ip_address="203.0.113.9", success=False)
    assert [a.kind for a in h.alerts] == ["brute_force"]

Each ``send`` is one batch (one engine call), like a consumer poll that returned one record;
``feed`` sends several records as one batch. Late records land in ``h.late``; ``advance``
moves the watermark without data (as an idle partition would), ``finish`` ends the input the
way ``streamproc replay`` does.
"""

from __future__ import annotations

from typing import Any

from ..alerts import Alert
from ..contracts import builtin_contracts
from ..events import Event
from ._windows import DEFAULT_KEY_CAP
from .base import Detector, DetectorContext, load_detector_class
from .engine import DetectorEngine, Rejected

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a round start for tests


class Harness:
    def __init__(
        self,
        *kinds: str | type[Detector],
        params: dict[str, dict[str, Any]] | None = None,
        allowed_lateness: float = 60.0,
        key_cap: int = DEFAULT_KEY_CAP,
        max_time_jump: float = float("inf"),
    ) -> None:
        # Detector tests feed sparse hand-made streams (one record a day apart): the
        # engine's jump rule (its own tests are test_hostile_time.py) is off unless asked.
        params = params or {}
        self.detectors: list[Detector] = []
        for kind in kinds:
            cls = load_detector_class(kind) if isinstance(kind, str) else kind
            self.detectors.append(
                cls(dict(params.get(cls.kind, {})), DetectorContext(key_cap=key_cap))
            )
        self.family = self.detectors[0].family
        # a family of your own (families_dir) has no built-in topic: its name stands in
        builtin = builtin_contracts().get(self.family)
        self.topic = builtin.kafka_topic if builtin is not None else self.family
        self.engine = DetectorEngine(
            self.detectors, allowed_lateness=allowed_lateness, max_time_jump=max_time_jump
        )
        self.alerts: list[Alert] = []
        self.late: list[Event] = []
        self.rejected: list[Rejected] = []
        self._offset = 0

    def event(self, ts: float, partition: int = 0, **data: Any) -> Event:
        data.setdefault("timestamp", ts)
        self._offset += 1
        return Event(self.family, float(ts), data, self.topic, partition, self._offset)

    def send(self, ts: float, partition: int = 0, **data: Any) -> list[Alert]:
        """One record as one batch; returns the alerts it caused."""
        return self.feed([self.event(ts, partition, **data)])

    def feed(self, events: list[Event]) -> list[Alert]:
        alerts, rejected = self.engine.process(events)
        self.alerts.extend(alerts)
        self.rejected.extend(rejected)
        self.late.extend(r.event for r in rejected if r.reason == "late")
        return alerts

    def advance(self, stream_time: float, partition: int = 0) -> list[Alert]:
        """Move a partition's stream time to ``stream_time`` without a record (the watermark
        follows, minus the allowed lateness) and fire what is due."""
        key = (self.topic, partition)
        current = self.engine._stream_time.get(key, float("-inf"))
        self.engine._stream_time[key] = max(current, stream_time)
        alerts = self.engine.advance()
        self.alerts.extend(alerts)
        return alerts

    def finish(self) -> list[Alert]:
        alerts = self.engine.finish()
        self.alerts.extend(alerts)
        self.rejected.extend(self.engine.take_late())
        return alerts

    def of(self, kind: str | None = None, status: str | None = None) -> list[Alert]:
        return [
            a
            for a in self.alerts
            if (kind is None or a.kind == kind) and (status is None or a.status == status)
        ]

    @property
    def detector(self) -> Detector:
        return self.detectors[0]
