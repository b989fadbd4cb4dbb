"""Distinct-count sliding windows: "failures for >= N distinct X from one Y within W".

    failures from 198.51.100.7, by username:
    --a---b--a---c----d-----e---...---t--> event time
      |<------------- W -------------->|
                                       ^ 20th distinct username within W: FIRE (once)

For every key (the Y) the detector keeps ``value -> latest failure time`` and a min-heap with
one entry per value that says when that value may leave the window. When the key's newest
failure time T moves forward, heap entries older than T - W are popped; a popped value whose
latest time is still inside the window is pushed back with that time. So ``len(values)`` is
exactly the number of distinct values with a failure in [T - W, T] (both edges inclusive), at
O(log n) per failure, however long the spray goes on.

The window is evaluated at the key's newest failure time: an out-of-order failure counts in
it when its time falls inside. A key with a single value (the vast majority of keys: one user
failing from one address) is stored as one small tuple, not as a dict and a heap.
"""

from __future__ import annotations

import heapq
from typing import Any, ClassVar

from ..alerts import Alert
from ..events import Event
from ._common import Interner, Sweeper, clip, failed, failed_column, iso
from ._windows import KeyedState
from .base import Detector, Prefilter


class _Distinct:
    __slots__ = ("values", "heap", "newest", "samples")

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.heap: list[tuple[float, str]] = []
        self.newest = float("-inf")
        self.samples: list[tuple[float, str, Any]] = []  # (time, value, user_agent)

    def add(self, value: str, ts: float, ua: Any, max_samples: int) -> None:
        values = self.values
        prev = values.get(value)
        if prev is None:
            values[value] = ts
            heapq.heappush(self.heap, (ts, value))
        elif ts > prev:
            values[value] = ts
        if ts > self.newest:
            self.newest = ts
        if max_samples:
            samples = self.samples
            if len(samples) >= max_samples:
                del samples[0]
            samples.append((ts, value, ua))

    def expire(self, cutoff: float) -> None:
        heap = self.heap
        values = self.values
        while heap and heap[0][0] < cutoff:
            _, value = heapq.heappop(heap)
            latest = values.get(value)
            if latest is None:
                continue
            if latest < cutoff:
                del values[value]
            else:
                heapq.heappush(heap, (latest, value))

    def first_time(self) -> float:
        return self.heap[0][0] if self.heap else self.newest


class DistinctDetector(Detector):
    """Base of password_spray and distributed_brute_force (auth failures only)."""

    key_field: ClassVar[str] = ""  # the Y: one window per value of this field
    value_field: ClassVar[str] = ""  # the X: counted distinct
    prefilter_reads_record_only = True  # failures, whatever the state
    defaults: ClassVar[dict[str, Any]] = {
        "threshold": 20,
        "window": 600.0,
        "realert": 0.0,
        "samples": 5,
    }

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.threshold = max(2, int(self.params["threshold"]))
        self.window = float(self.params["window"])
        self.realert = float(self.params["realert"]) or self.window
        self.max_samples = int(self.params["samples"])
        self.state: KeyedState[str, tuple[str, float, Any] | _Distinct] = KeyedState(
            self.ctx.key_cap
        )
        self.quiet: dict[str, float] = {}
        self._intern = Interner()
        self._sweeper = Sweeper(self.window / 4)

    def prefilter(self) -> Prefilter:
        return failed

    def column_prefilter(self) -> Any:
        return failed_column

    # subclasses may add a second rule (distributed_brute_force: distinct networks)
    def extra_rule(self, st: _Distinct) -> dict[str, Any] | None:
        return None

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        kf, vf = self.key_field, self.value_field
        state = self.state
        get, touch = state.get, state.touch
        intern = self._intern
        window, threshold, max_samples = self.window, self.threshold, self.max_samples
        quiet = self.quiet
        evaluations = 0
        for ev in events:
            data = ev.data
            if data["success"]:
                continue
            evaluations += 1
            key = data[kf]
            value = data[vf]
            ts = ev.ts
            cur = get(key)
            if cur is None:
                touch(key, (value, ts, intern(data.get("user_agent"))))
                continue
            if type(cur) is tuple:
                if cur[0] == value:
                    if ts > cur[1]:
                        touch(key, (value, ts, intern(data.get("user_agent"))))
                    else:
                        touch(key, cur)
                    continue
                st = _Distinct()
                st.add(cur[0], cur[1], cur[2], max_samples)
                if ts < cur[1] and max_samples:
                    st.samples.insert(0, (ts, value, intern(data.get("user_agent"))))
                    st.add(value, ts, None, 0)
                else:
                    st.add(value, ts, intern(data.get("user_agent")), max_samples)
            else:
                st = cur  # type: ignore[assignment]
                st.add(value, ts, intern(data.get("user_agent")), max_samples)
            touch(key, st)
            st.expire(st.newest - window)
            distinct = len(st.values)
            extra = None
            if distinct < threshold:
                extra = self.extra_rule(st)
                if extra is None:
                    continue
            decided = st.newest
            until = quiet.get(key)
            if until is not None and decided < until:
                continue
            quiet[key] = decided + self.realert
            alerts.append(self._alert(key, st, decided, ev, extra))
        self.evaluations += evaluations
        return alerts

    def describe(
        self, key: str, st: _Distinct, extra: dict[str, Any] | None
    ) -> tuple[str, str, dict[str, Any]]:
        """(title, body, key dict) of an alert."""
        raise NotImplementedError

    def _alert(
        self, key: str, st: _Distinct, ts: float, ev: Event, extra: dict[str, Any] | None
    ) -> Alert:
        first = st.first_time()
        extra = dict(extra or {})
        title, body, key_dict = self.describe(key, st, extra)
        values = sorted(st.values, key=lambda v: (st.values[v], v))
        kf, vf = self.key_field, self.value_field
        evidence: dict[str, Any] = {
            f"distinct_{vf}s": len(values),
            f"{vf}s": [clip(v) for v in values[:50]],
            "first_seen": first,
            "last_seen": ts,
            "window_seconds": self.window,
            "threshold": self.threshold,
            "samples": [
                {
                    "timestamp": iso(t),
                    kf: clip(key),
                    vf: clip(v),
                    **({"user_agent": ua} if ua is not None else {}),
                }
                for t, v, ua in st.samples
            ],
        }
        if extra:
            evidence.update(extra)
        return self.make_alert(
            key=key_dict,
            incident=first,
            event_time=ts,
            title=title,
            body=body,
            evidence=evidence,
            source=ev.source(),
            labels={kf: clip(key)},
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        if not self._sweeper.due(watermark):
            return []
        horizon = watermark - self.window
        state = self.state
        for key, value in state.items():
            newest = value[1] if isinstance(value, tuple) else value.newest
            if newest < horizon:
                state.pop(key)
        for key in [k for k, until in self.quiet.items() if until < watermark]:
            del self.quiet[key]
        return []

    def snapshot(self) -> Any:
        keys = []
        for key, value in self.state.items():
            if type(value) is tuple:
                keys.append([key, [[value[0], value[1]]], [[value[1], value[0], value[2]]]])
            else:
                st: _Distinct = value  # type: ignore[assignment]
                keys.append(
                    [key, [[v, t] for v, t in st.values.items()], [list(s) for s in st.samples]]
                )
        return {
            "keys": keys,
            "quiet": [[k, u] for k, u in self.quiet.items()],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        intern = self._intern
        for key, values, samples in state.get("keys", []):
            if len(values) == 1:
                v, t = values[0]
                ua = samples[-1][2] if samples else None
                self.state.touch(key, (v, float(t), intern(ua)))
                continue
            st = _Distinct()
            for v, t in values:
                st.add(v, float(t), None, 0)
            st.samples = [(float(t), v, intern(ua)) for t, v, ua in samples]
            self.state.touch(key, st)
        for key, until in state.get("quiet", []):
            self.quiet[key] = until
        self.state.evictions = int(state.get("evictions", 0))
