"""EventBatch: the events an engine judges in one call, and their fields as columns.

A detector used to walk every event of a batch in Python and skip those it had no use for
(brute_force: ~97% of auth records are successes). Here the batch is read a field at a time,
with C-level passes (``map``, ``compress``, set lookups), and a detector picks its candidates
before any Python of its own runs per record::

    events ─────────────┬─► column("success") ─► falsy ─► [failures] ─► brute_force.process
      (one list,        ├─► column("success") ─► truthy ─► [successes] ─► unusual_login.process
       shared by all    └─► column("ip_address"), times ─► group by key ─► rate_abuse
       detectors)

A column is built once per batch, on first use, and shared by every detector of the engine
(``rows``, ``times`` likewise). A value absent from a record reads as None, as ``dict.get``
does. Detectors only read the batch: nothing here copies an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import compress, repeat
from operator import attrgetter, eq, ne, not_, truth
from typing import Any

from ..events import Event

_DATA = attrgetter("data")
_TS = attrgetter("ts")
_get = dict.get


class EventBatch:
    """The accepted events of one engine call, in order; see the module docstring."""

    __slots__ = ("_columns", "_rows", "_times", "events")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self._rows: list[dict[str, Any]] | None = None
        self._times: list[float] | None = None
        self._columns: dict[str, list[Any]] = {}

    def __len__(self) -> int:
        return len(self.events)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Each event's ``data``."""
        if self._rows is None:
            self._rows = list(map(_DATA, self.events))
        return self._rows

    @property
    def times(self) -> list[float]:
        """Each event's time (``ts``)."""
        if self._times is None:
            self._times = list(map(_TS, self.events))
        return self._times

    def column(self, name: str) -> list[Any]:
        """The values of field ``name``, one per event (None where a record has none)."""
        col = self._columns.get(name)
        if col is None:
            col = self._columns[name] = list(map(_get, self.rows, repeat(name)))
        return col

    def value(self, name: str, i: int) -> Any:
        """Field ``name`` of the ``i``-th event (None where it has none), without building
        the column for a few rows (a detector's samples)."""
        col = self._columns.get(name)
        return col[i] if col is not None else self.events[i].data.get(name)

    def event(self, i: int) -> Event:
        """The ``i``-th event."""
        return self.events[i]

    def events_at(self, indices: list[int]) -> list[Event]:
        """The events at ``indices``, in that order."""
        events = self.events
        return [events[i] for i in indices]

    def origin(self, i: int) -> tuple[str, int, int]:
        """(topic, partition, offset) of the ``i``-th event's record."""
        ev = self.events[i]
        return ev.topic, ev.partition, ev.offset

    # -- picking events -----------------------------------------------------------------------

    def where(self, mask: Iterable[Any]) -> list[Event]:
        """The events whose ``mask`` entry is true, in order."""
        return list(compress(self.events, mask))

    def truthy(self, name: str) -> list[Event]:
        return self.where(map(truth, self.column(name)))

    def falsy(self, name: str) -> list[Event]:
        return self.where(map(not_, self.column(name)))

    def equal(self, name: str, value: Any) -> list[Event]:
        return self.where(map(eq, self.column(name), repeat(value)))

    def not_equal(self, name: str, value: Any) -> list[Event]:
        return self.where(map(ne, self.column(name), repeat(value)))

    def among(self, name: str, values: frozenset[Any] | set[Any]) -> list[Event]:
        """The events whose ``name`` is one of ``values`` (hashable values only: a column
        of scalars, as decoded records hold; an unhashable one is simply not among them)."""
        col = self.column(name)
        try:
            return self.where(map(values.__contains__, col))
        except TypeError:
            return self.where(_hashable_in(v, values) for v in col)


def _hashable_in(value: Any, values: frozenset[Any] | set[Any]) -> bool:
    try:
        return value in values
    except TypeError:
        return False


class FrameBatch(EventBatch):
    """An EventBatch over records read into columns (decode/frames.py): the same interface,
    with the columns read from the frame (each value the decoder's) and an Event made only
    for a record a detector asks for (``event``, ``events_at``) or when one reads
    ``events``/``rows`` of them all."""

    __slots__ = (
        "_events",
        "_frame",
        "_made",
        "_offsets",
        "_partition",
        "_positions",
        "_topic",
    )

    def __init__(
        self,
        frame: Any,
        positions: list[int],
        materialize: Callable[[list[int]], list[Event]],
        topic: str,
        partition: int,
        offsets: Callable[[], list[int]],
    ) -> None:
        self._frame = frame  # a RecordFrame
        self._positions = positions  # the rows judged, as positions in the frame
        self._made = materialize  # frame positions -> their Events
        self._topic, self._partition = topic, partition
        self._offsets: Any = offsets  # () -> every record's offset, made once if asked
        self._rows = None
        self._times = None
        self._columns = {}
        self._events: list[Event] | None = None

    def __len__(self) -> int:
        return len(self._positions)

    @property
    def events(self) -> list[Event]:  # type: ignore[override]
        if self._events is None:
            self._events = self._made(self._positions)
        return self._events

    @property
    def times(self) -> list[float]:
        if self._times is None:
            self._times = self._take(self._frame.ts.tolist())
        return self._times

    def column(self, name: str) -> list[Any]:
        col = self._columns.get(name)
        if col is None:
            col = self._columns[name] = self._take(self._frame.column(name))
        return col

    def value(self, name: str, i: int) -> Any:
        col = self._columns.get(name)
        return col[i] if col is not None else self._frame.value(name, self._positions[i])

    def event(self, i: int) -> Event:
        return self._made([self._positions[i]])[0]

    def events_at(self, indices: list[int]) -> list[Event]:
        positions = self._positions
        return self._made([positions[i] for i in indices])

    def origin(self, i: int) -> tuple[str, int, int]:
        if callable(self._offsets):
            self._offsets = self._offsets()
        return self._topic, self._partition, self._offsets[self._positions[i]]

    def _take(self, column: list[Any]) -> list[Any]:
        if len(self._positions) == len(column):
            return column
        return list(map(column.__getitem__, self._positions))
