"""How a family generator collects its records: background events are emitted in time order,
incidents push their future events on a heap that is drained as time passes."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from .result import Incident
from .timeline import Formatter


class FamilyStream:
    """Collects (ts, record) for one family; incidents push future events on a heap."""

    def __init__(self, family: str, fmt: Formatter, end: float) -> None:
        self.family = family
        self.fmt = fmt
        self.end = end
        self.heap: list[tuple[float, int, Any]] = []
        self._seq = 0
        self.out: list[tuple[float, dict[str, Any]]] = []

    def push(self, ts: float, item: Any) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (ts, self._seq, item))

    def emit(self, ts: float, rec: dict[str, Any]) -> None:
        rec["timestamp"] = self.fmt(ts)
        self.out.append((ts, rec))


@dataclass
class FamilyTraffic:
    """What one family generator made: its stream, the firing (and, where certain, resolved)
    alerts per kind it expects, and the incidents it injected."""

    stream: FamilyStream
    expected: dict[str, int]
    incidents: list[Incident]
    resolved: dict[str, int] = field(default_factory=dict)
