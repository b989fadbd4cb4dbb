"""DetectorEngine: event-time bookkeeping around the detectors of one topic binding.

Watermarks. Each source partition (topic, partition) has its own stream time: the largest
event time it has delivered. An event is *late* when its time is below its partition's stream
time minus the allowed lateness; late events are not given to detectors (they would be
mis-counted against windows already judged) but returned to the caller, which dead-letters
them with reason ``late`` and counts them::

    partition 0:  ..e(10:00)..e(10:05)..e(09:58)..e(09:03)...
                                 stream time 10:05, lateness 60 s -> watermark 10:04
                                           09:58 is late? no, 10:04 > 09:58 -> yes, LATE
    (an event is accepted iff ts >= stream_time - lateness)

Timers (silent hosts, SLA deadlines) fire when the *engine watermark* passes them: the minimum
of the partitions' watermarks, so a partition that lags behind in a backlog cannot make another
partition's hosts look silent. A partition that has delivered nothing for ``idle_after``
seconds of wall time stops holding the watermark back (as Flink's idleness does); wall time is
passed in by the caller so that replays stay deterministic.

Per-partition lateness is what makes a backlog safe: when a consumer catches up on hours of
data, its partitions advance at different speeds, and a single global watermark would throw
away the slower partitions' events as late.

Size. Every alert a detector returns is cut here to the ``alerts:`` limits (``cap_alert``),
whether the detector built it with ``make_alert`` (already within them: a quick walk proves
it) or with ``Alert(...)``: live and replay, nothing downstream sees an alert over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..alerts import Alert, AlertLimits, cap_alert
from ..events import Event
from .base import Detector
from .merge import SourceMerge

DEFAULT_ALLOWED_LATENESS = 60.0
DEFAULT_IDLE_AFTER = 30.0


class DetectorEngine:
    def __init__(self, detectors: Sequence[Detector], *,
                 allowed_lateness: float = DEFAULT_ALLOWED_LATENESS,
                 idle_after: float = DEFAULT_IDLE_AFTER,
                 limits: AlertLimits | None = None) -> None:
        self.detectors = list(detectors)
        self.limits = limits if limits is not None else AlertLimits()
        self.allowed_lateness = float(allowed_lateness)
        self.idle_after = idle_after
        self._stream_time: dict[tuple[str, int], float] = {}
        self._last_active: dict[tuple[str, int], float] = {}
        self.watermark = float("-inf")
        self.late_events = 0
        self.events_in = 0
        # repartitioned tasks only: their sources' interleaving, back in event-time order
        self.merge: SourceMerge | None = None
        self.merge_late: list[Event] = []

    def process(self, events: list[Event], now: float | None = None) \
            -> tuple[list[Alert], list[Event]]:
        """Feed a batch; returns (alerts, late events). ``now`` is wall time, for idleness."""
        if self.merge is not None:
            events = self.merge.push(events, now)
            late = self.merge_late
            self.merge_late = []
        else:
            late = []
        if not events:
            return self.advance(now), late
        alerts, late_now = self._judge(events, now)
        alerts.extend(self.advance(now))
        return alerts, late + late_now if late else late_now

    def _judge(self, events: list[Event], now: float | None) -> tuple[list[Alert], list[Event]]:
        accepted, late = self._split_late(events, now)
        alerts: list[Alert] = []
        if accepted:
            self.events_in += len(accepted)
            for detector in self.detectors:
                out = detector.process(accepted)
                if out:
                    alerts.extend(self._capped(out))
        return alerts, late

    def _capped(self, alerts: list[Alert]) -> list[Alert]:
        limits = self.limits
        for alert in alerts:
            cap_alert(alert, limits)
        return alerts

    def advance(self, now: float | None = None, floor: float | None = None) -> list[Alert]:
        """Recompute the watermark and fire due timers.

        ``floor`` lets the caller lift an idle task's watermark to what its sibling
        partitions have reached: a partition whose hosts all went silent receives nothing,
        yet their silence must still be noticed.
        """
        if self.merge is not None and len(self.merge):
            # a source may have gone quiet: what it held back is due now
            released = self.merge.release(now)
            if released:
                alerts, late = self._judge(released, now)
                # advance() returns alerts only: the next process() returns these
                self.merge_late.extend(late)
                return alerts + self.advance(now, floor)
        wm = self._compute_watermark(now)
        if floor is not None and floor > wm:
            wm = floor
        if wm <= self.watermark:
            return []
        self.watermark = wm
        alerts: list[Alert] = []
        for detector in self.detectors:
            out = detector.on_watermark(wm)
            if out:
                alerts.extend(self._capped(out))
        return alerts

    def finish(self) -> list[Alert]:
        """End of input (replay): the watermark becomes the largest event time seen."""
        held: list[Alert] = []
        if self.merge is not None and len(self.merge):
            held, late = self._judge(self.merge.release(None), None)
            self.merge_late.extend(late)
        if not self._stream_time:
            return held
        wm = max(self._stream_time.values())
        if wm <= self.watermark:
            return held
        self.watermark = wm
        alerts: list[Alert] = held
        for detector in self.detectors:
            alerts.extend(self._capped(detector.on_watermark(wm) or []))
        return alerts

    # -- state ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "stream_time": [[t, p, ts] for (t, p), ts in self._stream_time.items()],
            "watermark": self.watermark if self.watermark != float("-inf") else None,
            "detectors": {d.kind: d.snapshot() for d in self.detectors},
            **({"merge": self.merge.snapshot()} if self.merge is not None else {}),
        }

    def restore(self, state: dict[str, Any]) -> None:
        for topic, partition, ts in state.get("stream_time", []):
            key = (topic, partition)
            self._stream_time[key] = max(ts, self._stream_time.get(key, float("-inf")))
        if state.get("watermark") is not None:
            self.watermark = max(self.watermark, state["watermark"])
        if self.merge is not None and state.get("merge"):
            self.merge.restore(state["merge"])
        by_kind = state.get("detectors", {})
        for detector in self.detectors:
            if by_kind.get(detector.kind) is not None:
                detector.restore(by_kind[detector.kind])

    def take_late(self) -> list[Event]:
        """Late events that held-back records turned out to be when a quiet source let them
        go (outside ``process``); the caller dead-letters them."""
        late, self.merge_late = self.merge_late, []
        return late

    def stream_time(self) -> float:
        """The largest event time seen on any of this engine's partitions (-inf if none)."""
        return max(self._stream_time.values(), default=float("-inf"))

    def active_since(self) -> float:
        """Wall time this engine last received events (0 if never, or if not told)."""
        return max(self._last_active.values(), default=0.0)

    def state_sizes(self) -> dict[str, int]:
        return {d.kind: d.state_size() for d in self.detectors}

    # -- internals --------------------------------------------------------------------------

    def _split_late(self, events: list[Event], now: float | None) \
            -> tuple[list[Event], list[Event]]:
        lateness = self.allowed_lateness
        stream_time = self._stream_time
        late_at: list[int] = []
        # Runs of one source partition: its stream time stays in a local until the run ends.
        # Compared field by field (no (topic, partition) tuple per event); strings from one
        # source are usually the same object, which makes != a pointer comparison.
        topic: str | None = None
        partition = 0
        current = float("-inf")
        for i, ev in enumerate(events):
            if ev.partition != partition or ev.topic != topic:
                if topic is not None:
                    stream_time[(topic, partition)] = current
                topic, partition = ev.topic, ev.partition
                current = stream_time.get((topic, partition), float("-inf"))
            ts = ev.ts
            if ts > current:
                current = ts
            elif not ts >= current - lateness:  # "not >=": a NaN time is late, as before
                late_at.append(i)
        if topic is not None:
            stream_time[(topic, partition)] = current
        if now is not None:
            seen = {(ev.topic, ev.partition) for ev in events}
            for key in seen:
                self._last_active[key] = now
        if not late_at:
            # The common case: nothing late, and the batch itself is what detectors judge
            # (they only read it).
            return events, []
        late_set = set(late_at)
        accepted = [ev for i, ev in enumerate(events) if i not in late_set]
        late = [events[i] for i in late_at]
        self.late_events += len(late)
        return accepted, late

    def _compute_watermark(self, now: float | None) -> float:
        if not self._stream_time:
            return float("-inf")
        if now is None or not self._last_active:
            times = list(self._stream_time.values())
        else:
            times = [ts for key, ts in self._stream_time.items()
                     if now - self._last_active.get(key, now) <= self.idle_after]
            if not times:
                times = list(self._stream_time.values())
        return min(times) - self.allowed_lateness
