"""Keyed-state and sliding-window primitives shared by the detectors.

All times are event times (epoch seconds). Nothing here reads a clock.

Sliding count window of length W, evaluated at each event (t = the new event's time)::

    ---|=========== W ===========|----> event time
      t-W                        t
    count = events with t - W <= ts <= t

Both edges are inclusive, so "5 failures within 1 h" fires for failures at 00:00 and 59:59 (and
at 60:00), and not for 00:00 and 60:01. Events may arrive out of order (within the allowed
lateness); the window keeps its timestamps sorted, so an event that lands in the middle counts
exactly as if it had arrived in order.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_KEY_CAP = 1_000_000
_ABSENT: Any = object()


class KeyedState(Generic[K, V]):
    """A dict of per-key state with an LRU cap: ``KeyedState[str, list[float]]`` maps a
    detector's key (a string, or a tuple of strings) to its state.

    Python dicts keep insertion order; ``touch`` re-inserts a key at the end, so the first key
    is always the least recently used, and eviction is O(1). Evictions are counted: a detector
    that evicts is one whose key cap is too small for its traffic.
    """

    __slots__ = ("_data", "cap", "evictions", "get")

    def __init__(self, cap: int = DEFAULT_KEY_CAP) -> None:
        self._data: dict[K, V] = {}
        self.cap = cap
        self.evictions = 0
        # ``get(key)`` is the dict's own method: detectors call it for nearly every event,
        # and a Python-level wrapper would double the cost of the lookup.
        self.get: Callable[[K], V | None] = self._data.get

    def touch(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` as the most recently used entry, evicting if full."""
        data = self._data
        if data.pop(key, _ABSENT) is _ABSENT and len(data) >= self.cap:
            del data[next(iter(data))]
            self.evictions += 1
        data[key] = value

    def add_unordered(self, key: K, value: V) -> None:
        """Store ``value`` under a key not present, without making room: for a caller that
        checked that the batch it judges cannot fill the state and that ``refresh``es every
        key it used afterwards."""
        self._data[key] = value

    def refresh(self, keys: Iterable[K]) -> None:
        """Make ``keys`` (all present) the most recently used, the last of them the most:
        the order ``touch`` of each where it was last used leaves, without evicting."""
        data = self._data
        keys = list(keys)
        # one C-level pass: each key is popped and stored again at the end, in order
        data.update(zip(keys, map(data.pop, keys), strict=True))

    def pop(self, key: K, default: V | None = None) -> V | None:
        return self._data.pop(key, default)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[K, V]]:
        return iter(list(self._data.items()))

    def keys(self) -> list[K]:
        return list(self._data)

    def clear(self) -> None:
        self._data.clear()


def window_add(times: list[float], ts: float) -> None:
    """Insert ``ts`` keeping ``times`` sorted (append when in order, the common case)."""
    if not times or ts >= times[-1]:
        times.append(ts)
    else:
        insort(times, ts)


class TimerQueue(Generic[K]):
    """Event-time timers: ``due(watermark)`` pops every timer whose time is <= the watermark.

    A timer is (time, key). Re-arming a key leaves the old entry in the heap; callers check the
    key's current deadline when a timer pops (lazy deletion), which keeps arming O(log n).
    """

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._seq = 0

    def arm(self, when: float, key: K) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, key))

    def due(self, watermark: float) -> list[tuple[float, K]]:
        out = []
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            when, _, key = heapq.heappop(heap)
            out.append((when, key))
        return out

    def __len__(self) -> int:
        return len(self._heap)

    def snapshot(self) -> list[tuple[float, K]]:
        return [(w, k) for w, _, k in sorted(self._heap)]

    def restore(self, items: list[tuple[float, K]]) -> None:
        self._heap = []
        for when, key in items:
            self.arm(when, key)
