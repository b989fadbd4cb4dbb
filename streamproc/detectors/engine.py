"""DetectorEngine: event-time bookkeeping around the detectors of one topic binding.

Watermarks. Each source partition (topic, partition) has its own stream time: the largest
event time it has delivered. An event is *late* when its time is below its partition's stream
time minus the allowed lateness; late events are not given to detectors (they would be
mis-counted against windows already judged) but returned to the caller, which dead-letters
them with reason ``late`` and counts them::

    partition 0:  ..e(10:00)..e(10:05)..e(10:04:30)..e(09:58)...
                                 stream time 10:05, lateness 60 s -> watermark 10:04
                                 10:04:30 >= 10:04: accepted;  09:58 < 10:04: LATE
    (an event is accepted iff ts >= stream_time - lateness)

Timers (silent hosts, SLA deadlines) fire when the *engine watermark* passes them: the minimum
of the partitions' watermarks, so a partition that lags behind in a backlog cannot make another
partition's hosts look silent. A partition that has delivered nothing for ``idle_after``
seconds of wall time stops holding the watermark back (as Flink's idleness does); wall time is
passed in by the caller so that replays stay deterministic.

Per-partition lateness is what makes a backlog safe: when a consumer catches up on hours of
data, its partitions advance at different speeds, and a single global watermark would throw
away the slower partitions' events as late.

Event time is written by whoever writes the topic, so no single record may move a partition's
stream time far. Three rules, in the order they apply to a record:

1. *Future* (live only: the runtime passes a wall clock, a replay has none). A record more
   than ``max_future_skew`` (default 300 s) ahead of wall-clock time is dead-lettered with
   reason ``future``; it moves nothing and no detector sees it.

2. *Jump*. A record more than ``max_time_jump`` (default 1 h) ahead of its partition's stream
   time is a *candidate*: held, not judged, stream time unchanged::

    partition 0: ..10:00 10:01 [23:59] 10:02 10:03 ...     max_time_jump 1 h, confirmations 2
                               held     normal normal -> 2 normal records contradict it:
                                                         23:59 dead-lettered ``time_jump``

    partition 1: ..18:00 | (quiet overnight) | [08:00] [08:01] [08:02] 08:03 ...
                                              held    held    3rd agrees: CONFIRMED
                       stream time 18:00 ------------------------> 08:00, the held records
                                                                   are judged, in order

   A candidate is *confirmed* once ``jump_confirmations`` (N, default 2) further records of
   its partition are held with it: the stream time moves to the (N+1)-th largest held time
   (so N records agree that time has come; one outlier among them cannot drag it further),
   and every held record within ``max_time_jump`` of it is judged, in arrival order. It is
   *contradicted* once N records of its partition that are not candidates arrive after it:
   every held record is dead-lettered ``time_jump``. So at most N+1 records are ever held
   per partition. Live, the wall clock confirms too: a partition that stayed quiet for
   ``idle_after`` lets its candidates through when they are within ``max_time_jump`` of
   wall-clock time, and a partition quiet for a while may jump by the wall time that passed
   (a live tail moves with the clock; a backlog, read back to back, does not). At the end
   of a replay, a candidate that no record contradicted is judged (nothing is left to
   confirm it), one that was contradicted at least once is dead-lettered.

   Live, holding a candidate protects a *backlog*: records still to be read may contradict
   it. Once its partition is *caught up* there are none, and its candidates are judged as
   at the end of a replay (uncontradicted: judged; contradicted: ``time_jump``); a partition
   whose first records are fewer than N+1 starts its stream time at the smallest of them.
   The runtime says which partitions are caught up (``caught_up``: the Kafka consumer has
   judged every offset below the high watermark of its last fetch); this is checked after
   every batch and on the idle tick. An MQTT topic has no high watermark: one quiet for
   ``idle_after`` counts as caught up (``caught_up_when_quiet``). The clock still bounds it:
   nothing beyond ``max_future_skew`` ahead of it is judged::

    sparse partition read from offset 0, records two hours apart, high watermark 8:
     offset  0      1      2      3      4      5      6      7     |
     time    00:00  02:00  04:00  06:00  08:00  10:00  12:00  14:00 | caught up:
             start: judged        held, confirmed in turn  [held] [held] -> judged, stream
                                                                           time 14:00
    backlog: ..10:00  10:01  [now]  10:02 | caught up: [now] was contradicted once (N = 2):
                                                       dead-lettered ``time_jump``

   A repartitioned task reads its sources through a second topic, where records of a
   caught-up source may still be on their way: for it a source partition is caught up once
   quiet for ``idle_after``, with nothing of it on its way (``input_caught_up``: the
   repartition partition read to its high watermark, the source not behind here) and none
   of it in the merge. When a binding's tasks are all caught up with nothing held
   (``drained``), the runtime moves them to the largest event time it judged (``latest``),
   as the end of a replay does.

3. *Start*. A partition with no stream time yet has nothing to jump from: its first N+1
   records are judged as they come, and its stream time starts at the smallest of them, so
   one forged first record cannot set it either.

What a single forged record can still do: move its partition's stream time by up to
``max_time_jump`` (records then more than ``allowed_lateness`` behind it are dead-lettered
``late``, counted), and count in the windows of its own key. N+1 agreeing records move the
time anywhere a replay lets them, and no further than ``max_future_skew`` past the clock live.
Last in a partition (at the end of a replay, or live once it is caught up) and contradicted
by no record, one forged record is judged: it moves the stream time as far (live, no further
than the clock) -- as a genuine record after a long gap must.

Device streams (MQTT: one "partition" per topic, i.e. per device). A device's clock is its
own: a device that says 1970, or lags hours behind, must not hold back its binding's timers.
With ``max_topic_lag`` set, a topic whose stream time is further than that behind the (upper)
median of the topics' stream times does not hold the watermark back, and records that far
behind, behind timers already fired, are dead-lettered ``late`` (judged, each would look like
a silence and a recovery). A device a few minutes behind is judged against its own stream
time, as a Kafka partition is, and holds the watermark back by those minutes::

    topic a/1  ........10:00|
    topic a/2  ........10:01|           median 10:00
    topic a/3  ..1970-01-01|            lags > max_topic_lag: ignored by the watermark
               watermark = min(10:00, 10:01) - lateness

Topics idle for ``key_ttl`` seconds of wall time are forgotten, and at most ``max_keys`` are
kept (least recently active forgotten first), so 100,000 topics cannot grow the engine.

Size. Every alert a detector returns is cut here to the ``alerts:`` limits (``cap_alert``),
once, whether the detector built it with ``make_alert`` or with ``Alert(...)``: live and
replay, nothing downstream sees an alert over them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..alerts import Alert, AlertLimits, cap_alert
from ..events import Event
from .base import Detector, connect_all, run_order
from .columns import EventBatch, FrameBatch
from .merge import SourceMerge

if TYPE_CHECKING:
    from ..decode.frames import RecordFrame

DEFAULT_ALLOWED_LATENESS = 60.0
DEFAULT_IDLE_AFTER = 30.0
# Live: how far ahead of the wall clock an event may be (clocks drift; producers batch).
DEFAULT_MAX_FUTURE_SKEW = 300.0
# How far one record may move its partition's stream time without confirmation. An hour is
# above the gaps of any busy stream (the sample auth, API and host streams: 42 min at most)
# and bounds what one forged record can make late to an hour of its partition; sparser
# streams (deployments, tickets, daily business metrics) jump further, and wait for N
# records (or, live, for the clock) to confirm each jump.
DEFAULT_MAX_TIME_JUMP = 3600.0
DEFAULT_JUMP_CONFIRMATIONS = 2

log = logging.getLogger(__name__)

Key = tuple[str, int]  # (topic, partition) of the source record
_INF = float("inf")
_NEG_INF = float("-inf")


@dataclass(slots=True)
class Rejected:
    """An event the engine did not give to detectors, and why (a dead-letter reason)."""

    reason: str  # late | future | time_jump
    event: Event
    detail: str


class DetectorEngine:
    # Repartitioned tasks only, set there by the runtime (absent elsewhere, which the
    # checkpoint tells by hasattr): the last source offset judged per source partition.
    src_offsets: dict[Key, int]

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        allowed_lateness: float = DEFAULT_ALLOWED_LATENESS,
        idle_after: float = DEFAULT_IDLE_AFTER,
        max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW,
        max_time_jump: float = DEFAULT_MAX_TIME_JUMP,
        jump_confirmations: int = DEFAULT_JUMP_CONFIRMATIONS,
        limits: AlertLimits | None = None,
    ) -> None:
        self.detectors: list[Detector] = []
        self.set_detectors(detectors)
        self.limits = limits if limits is not None else AlertLimits()
        self.allowed_lateness = float(allowed_lateness)
        self.idle_after = idle_after
        self.max_future_skew = float(max_future_skew)
        self.max_time_jump = float(max_time_jump)
        self.jump_confirmations = max(1, int(jump_confirmations))
        # wall clock for the ``future`` rule; None (replay, tests) = no such rule
        self.clock: Callable[[], float] | None = None
        # live: whether a source partition has nothing left to read (the runtime asks its
        # Kafka consumer); None = never known. Device streams have no such fact: with
        # ``caught_up_when_quiet`` a topic quiet for ``idle_after`` counts as caught up.
        self.caught_up: Callable[[Key], bool] | None = None
        self.caught_up_when_quiet = False
        # repartitioned tasks: whether nothing of a source partition is on its way (the
        # repartition partition read up to its high watermark, the source not behind where
        # it is read); it counts as caught up once also quiet for ``idle_after``
        self.input_caught_up: Callable[[Key], bool] | None = None
        # device streams (MQTT): see the module docstring; None = off (Kafka partitions)
        self.max_topic_lag: float | None = None
        self.key_ttl: float | None = None
        self.max_keys: int | None = None
        self._stream_time: dict[Key, float] = {}
        # repartitioned tasks: how far each source partition's own task has judged, as its
        # progress marks say (pipeline/repartition.py). A copy up to that time is no jump:
        # where a source ships only the records this task's detectors use, hours may pass
        # between two copies of one source that its task judged, every record in between.
        self._vouched: dict[Key, float] = {}
        self._last_active: dict[Key, float] = {}
        self._held: dict[Key, list[Event]] = {}  # candidates of a jump, arrival order
        self._contra: dict[Key, int] = {}  # records since, not candidates
        self._warm: dict[Key, list[float]] = {}  # times of a new partition's first records
        # the largest of a partition's first records, judged but above the stream time the
        # start rule gave it (see ``latest``)
        self._started_below: dict[Key, float] = {}
        self._next_expiry = _NEG_INF
        self._lag_floor = _NEG_INF  # device streams: median stream time - max_topic_lag
        self.watermark = _NEG_INF
        self.late_events = 0
        self.events_in = 0
        # repartitioned tasks only: their sources' interleaving, back in event-time order
        self.merge: SourceMerge | None = None
        # rejected outside process() (held records let go by advance, merge releases)
        self.rejected_later: list[Rejected] = []

    def set_detectors(self, detectors: Sequence[Detector]) -> None:
        """Run ``detectors`` from now on, each after those it names in ``after``, and tell
        every one of them who its peers are (a reload that rebuilds one detector rewires the
        others that read it)."""
        self.detectors = run_order(detectors)
        connect_all(self.detectors)

    def process(
        self, events: list[Event], now: float | None = None, progress: Sequence[Event] = ()
    ) -> tuple[list[Alert], list[Rejected]]:
        """Feed a batch; returns (alerts, events not judged and why). ``now`` is wall time,
        for idleness. ``progress``: a repartitioned task's progress marks, for its merge."""
        if progress:
            vouched = self._vouched
            for mark in progress:
                key = (mark.topic, mark.partition)
                if mark.ts > vouched.get(key, _NEG_INF):
                    vouched[key] = mark.ts
        if self.merge is not None:
            events = self.merge.push(events, now, progress)
        if not events:
            alerts = self.advance(now)
            return alerts, self.take_late()
        alerts, rejected = self._judge(events, now)
        alerts.extend(self.advance(now))
        if self.rejected_later:
            rejected = self.take_late() + rejected
        return alerts, rejected

    def takes_frames(self) -> bool:
        """Whether every detector here says which records can matter to it as a column
        expression (``Detector.column_prefilter``): then a batch can be judged from its
        columns (``process_frame``), with Events made for the candidates alone. (An engine
        with no detector, a source task whose every detector runs on re-keyed copies, judges
        only event time.)"""
        return self.merge is None and all(
            d.reads_columns or type(d).column_prefilter is not Detector.column_prefilter
            for d in self.detectors
        )

    def process_frame(
        self,
        frame: RecordFrame,
        topic: str,
        partition: int,
        materialize: Callable[[list[int]], list[Event]],
        now: float | None = None,
        *,
        offsets: Callable[[], list[int]] | None = None,
    ) -> tuple[list[Alert], list[Rejected]] | None:
        """``process`` for a batch of one source partition read into columns
        (decode/frames.py), or None, having changed nothing, when only the per-event path
        can judge it: the partition has no stream time yet, holds candidates of a jump, or a
        record of the batch is a jump, from the future, or behind the binding's topics.
        Otherwise the batch is judged exactly as ``process`` judges its Events::

            ts column ──running max (from the stream time)──► late: ts < max before - lateness
                  └────────────────────────────────────────► jump: ts > max before + allowed
                                                             (any: None, the per-event path)
            accepted rows ─► each detector's column_prefilter ─► candidates ─► Events
                                                                 (``materialize``) ─► process

        ``materialize`` turns row positions into the Events the per-record decoder makes of
        those records (late records become Events too: a dead letter carries its record)."""
        import numpy as np

        key = (topic, partition)
        current = self._stream_time.get(key)
        n = len(frame)
        if (
            current is None
            or key in self._held
            or key in self._warm
            or n == 0
            or not self.takes_frames()
        ):
            return None
        ts = frame.ts
        highest = float(ts.max())
        limit = _INF if self.clock is None else self.clock() + self.max_future_skew
        if highest > limit:
            return None
        if self._lag_floor != _NEG_INF and float(ts.min()) < self._lag_floor:
            return None
        # the partition's stream time before each record: the running max, from the last batch
        before = np.empty(n)
        before[0] = current
        before[1:] = ts[:-1]
        np.maximum.accumulate(before, out=before)
        allow = self.max_time_jump + self._quiet_for(key, now)
        if allow != _INF and bool((ts > before + allow).any()):
            return None
        # -- from here on the batch is judged: state changes --
        self._stream_time[key] = max(current, highest)
        if now is not None:
            self._active({key}, now)
        made: dict[int, Event] = {}

        def events_at(rows: list[int]) -> list[Event]:
            missing = [i for i in rows if i not in made]
            if missing:
                made.update(zip(missing, materialize(missing), strict=True))
            return list(map(made.__getitem__, rows))

        rejected: list[Rejected] = []
        late = ts < before - self.allowed_lateness
        late_set: set[int] = set()
        if late.any():
            late_rows = np.flatnonzero(late).tolist()
            for i, ev in zip(late_rows, events_at(late_rows), strict=True):
                rejected.append(self._late(ev, float(before[i])))
            late_set.update(late_rows)
        accepted = n - len(late_set)
        alerts: list[Alert] = []
        if accepted:
            self.events_in += accepted
            batch: FrameBatch | None = None
            for detector in self.detectors:
                if type(detector).column_prefilter is Detector.column_prefilter:
                    # it reads columns (reads_columns): the accepted rows, as a batch
                    if batch is None:
                        positions = (
                            [i for i in range(n) if i not in late_set]
                            if late_set
                            else list(range(n))
                        )
                        batch = FrameBatch(
                            frame,
                            positions,
                            events_at,
                            topic,
                            partition,
                            offsets or (lambda: [-1] * n),
                        )
                    out = detector.judge_batch(batch)
                    if out:
                        alerts.extend(self._capped(out))
                    continue
                select = detector.column_prefilter()
                rows = list(range(n)) if select is None else frame.where(select)
                if late_set:
                    rows = [i for i in rows if i not in late_set]
                if not rows:
                    continue
                out = detector.process(events_at(rows))
                if out:
                    alerts.extend(self._capped(out))
        alerts.extend(self.advance(now))
        if self.rejected_later:
            rejected = self.take_late() + rejected
        return alerts, rejected

    def _judge(self, events: list[Event], now: float | None) -> tuple[list[Alert], list[Rejected]]:
        accepted, rejected = self._split(events, now)
        return self._detect(accepted), rejected

    def _detect(self, accepted: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        if accepted:
            self.events_in += len(accepted)
            batch = EventBatch(accepted)
            for detector in self.detectors:
                out = detector.judge_batch(batch)
                if out:
                    alerts.extend(self._capped(out))
        return alerts

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
        alerts: list[Alert] = []
        if self.merge is not None and len(self.merge):
            # a source may have gone quiet: what it held back is due now
            released = self.merge.release(now)
            if released:
                alerts, late = self._judge(released, now)
                # advance() returns alerts only: the next process() returns these
                self.rejected_later.extend(late)
        if now is not None:
            if self._held and self.clock is not None:
                alerts.extend(self._release_quiet(now))
            if (self._held or self._warm) and self.clock is not None:
                alerts.extend(self._release_caught_up(now))
            if self.key_ttl is not None and now >= self._next_expiry:
                self._expire(now)
        wm = self._compute_watermark(now)
        if floor is not None and floor > wm:
            wm = floor
        if wm <= self.watermark:
            return alerts
        self.watermark = wm
        for detector in self.detectors:
            out = detector.on_watermark(wm)
            if out:
                alerts.extend(self._capped(out))
        return alerts

    def finish(self) -> list[Alert]:
        """End of input (replay): the watermark becomes the largest event time seen.

        Candidates still held are judged if nothing contradicted them, dead-lettered
        (``time_jump``, see ``take_late``) if something did."""
        held: list[Alert] = []
        if self.merge is not None and len(self.merge):
            held, late = self._judge(self.merge.release(None), None)
            self.rejected_later.extend(late)
        for key in list(self._held):
            held.extend(self._detect(self._judge_held(key, "the end of input")))
        times = list(self._stream_time.values())
        times.extend(max(ts) for ts in self._warm.values())
        if not times:
            return held
        wm = max(times)
        if wm <= self.watermark:
            return held
        self.watermark = wm
        alerts: list[Alert] = held
        for detector in self.detectors:
            alerts.extend(self._capped(detector.on_watermark(wm) or []))
        return alerts

    # -- state ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        # Held candidates travel with the snapshot (their offsets are behind the committed
        # ones), so a restart neither loses them nor takes their time as confirmed.
        return {
            "stream_time": [[t, p, ts] for (t, p), ts in self._stream_time.items()],
            "watermark": self.watermark if self.watermark != _NEG_INF else None,
            "detectors": {d.kind: d.snapshot() for d in self.detectors},
            **({"merge": self.merge.snapshot()} if self.merge is not None else {}),
            **(
                {
                    "held": [
                        [
                            t,
                            p,
                            self._contra.get((t, p), 0),
                            [[ev.ts, ev.data, ev.offset] for ev in events],
                        ]
                        for (t, p), events in self._held.items()
                    ]
                }
                if self._held
                else {}
            ),
            **({"warm": [[t, p, ts] for (t, p), ts in self._warm.items()]} if self._warm else {}),
            **(
                {"vouched": [[t, p, ts] for (t, p), ts in self._vouched.items()]}
                if self._vouched
                else {}
            ),
        }

    def restore(self, state: dict[str, Any]) -> None:
        # Live, a time beyond the clock cannot be genuine: a checkpoint written before these
        # rules kept whatever one forged record said (9999-12-31), and would keep every later
        # record late for good. Such a time is dropped (the partition starts afresh).
        limit = _INF if self.clock is None else self.clock() + self.max_future_skew
        dropped = []
        for topic, partition, ts in state.get("stream_time", []):
            key = (topic, partition)
            if ts > limit:
                dropped.append(f"{topic}[{partition}] at {ts:.0f}")
                continue
            self._stream_time[key] = max(ts, self._stream_time.get(key, _NEG_INF))
        watermark = state.get("watermark")
        if watermark is not None and watermark <= limit:
            self.watermark = max(self.watermark, watermark)
        if dropped:
            log.warning(
                "checkpoint holds stream times beyond the clock, dropped: %s",
                ", ".join(dropped[:5]),
            )
        if self.merge is not None and state.get("merge"):
            self.merge.restore(state["merge"])
        family = self.detectors[0].family if self.detectors else ""
        for topic, partition, contra, events in state.get("held", []):
            key = (topic, partition)
            self._held[key] = [
                Event(family, ts, data, topic, partition, offset) for ts, data, offset in events
            ]
            self._contra[key] = contra
        for topic, partition, times in state.get("warm", []):
            if (topic, partition) not in self._stream_time:
                self._warm[(topic, partition)] = list(times)
        for topic, partition, ts in state.get("vouched", []):
            if ts <= limit:  # (as a stream time: none beyond the clock)
                key = (topic, partition)
                self._vouched[key] = max(ts, self._vouched.get(key, _NEG_INF))
        by_kind = state.get("detectors", {})
        for detector in self.detectors:
            if by_kind.get(detector.kind) is not None:
                detector.restore(by_kind[detector.kind])

    def take_late(self) -> list[Rejected]:
        """Events rejected outside ``process`` (held records a quiet source or the clock let
        go, candidates contradicted at the end of input); the caller dead-letters them."""
        late, self.rejected_later = self.rejected_later, []
        return late

    def partition_time(self, key: Key) -> float:
        """The stream time of one partition (-inf if none yet)."""
        return self._stream_time.get(key, _NEG_INF)

    def stream_time(self) -> float:
        """The largest event time seen on any of this engine's partitions (-inf if none)."""
        return max(self._stream_time.values(), default=_NEG_INF)

    def latest(self) -> float:
        """The largest event time judged on any of this engine's partitions (-inf if none):
        the stream time, or above it the largest of a partition's first records."""
        return max(self.stream_time(), max(self._started_below.values(), default=_NEG_INF))

    def active_since(self) -> float:
        """Wall time this engine last received events (0 if never, or if not told)."""
        return max(self._last_active.values(), default=0.0)

    # -- internals --------------------------------------------------------------------------

    def _split(self, events: list[Event], now: float | None) -> tuple[list[Event], list[Rejected]]:
        """Which events detectors judge now, in order; the others, with their reason."""
        lateness = self.allowed_lateness
        stream_time = self._stream_time
        held_map = self._held
        limit = _INF if self.clock is None else self.clock() + self.max_future_skew
        # None while every event so far is judged in place (the common case: the batch
        # itself is what detectors judge; they only read it)
        accepted: list[Event] | None = None
        rejected: list[Rejected] = []
        # Runs of one source partition: its stream time stays in a local until the run ends.
        # Compared field by field (no (topic, partition) tuple per event); strings from one
        # source are usually the same object, which makes != a pointer comparison.
        topic: str | None = None
        partition = 0
        key: Key = ("", 0)
        current = ceiling = _NEG_INF
        allow = self.max_time_jump
        held: list[Event] | None = None
        vouched = self._vouched
        vouch = _NEG_INF  # (the run's source: a time its task judged; see ``_vouched``)
        # device streams: a topic this far behind the others is judged by nobody's clock
        behind = self._lag_floor
        for i, ev in enumerate(events):
            if ev.partition != partition or ev.topic != topic:
                if topic is not None and current != _NEG_INF:
                    stream_time[key] = current
                topic, partition = ev.topic, ev.partition
                key = (topic, partition)
                current = stream_time.get(key, _NEG_INF)
                allow = self.max_time_jump + self._quiet_for(key, now)
                # max_time_jump inf (the rule off): no jump, and no start phase either
                ceiling = current + allow if allow != _INF else _INF
                if vouched:
                    vouch = vouched.get(key, _NEG_INF)
                held = held_map.get(key)
            ts = ev.ts
            if ts < behind:
                if accepted is None:
                    accepted = events[:i]
                rejected.append(
                    Rejected(
                        "late",
                        ev,
                        f"event time {ts:.3f} lags the binding's topics (median "
                        f"stream time {behind + self.max_time_jump:.3f}) by more "
                        f"than max_time_jump ({self.max_time_jump:g} s)",
                    )
                )
                self.late_events += 1
                continue
            if ts > current:
                # (a time the source's marks vouch for is no jump: asked only beyond ceiling)
                if (ts > ceiling and ts > vouch) or ts > limit:
                    # the rare paths: a future event, a jump, a partition's first records
                    if accepted is None:
                        accepted = events[:i]
                    if current != _NEG_INF:
                        stream_time[key] = current
                    self._outlier(key, ev, limit, accepted, rejected)
                    current = stream_time.get(key, _NEG_INF)
                    ceiling = current + allow if allow != _INF else _INF
                    held = held_map.get(key)
                    continue
                current = ts
                ceiling = ts + allow
            elif not ts >= current - lateness:  # "not >=": a NaN time is late, as before
                if accepted is None:
                    accepted = events[:i]
                rejected.append(self._late(ev, current))
                if held is not None:
                    stream_time[key] = current
                    self._beside_held(key, accepted, rejected)
                    current = stream_time[key]
                    ceiling = current + allow
                    held = held_map.get(key)
                continue
            if accepted is not None:
                accepted.append(ev)
            if held is not None:
                if accepted is None:
                    accepted = events[: i + 1]
                stream_time[key] = current
                self._beside_held(key, accepted, rejected)
                current = stream_time[key]
                ceiling = current + allow
                held = held_map.get(key)
        if topic is not None and current != _NEG_INF:
            stream_time[key] = current
        if now is not None:
            self._active({(ev.topic, ev.partition) for ev in events}, now)
        return (events if accepted is None else accepted), rejected

    def _active(self, keys: set[Key], now: float) -> None:
        """``keys`` delivered at wall time ``now``; beyond ``max_keys``, the least recently
        active are forgotten."""
        last_active = self._last_active
        lru = self.max_keys is not None or self.key_ttl is not None
        for key in keys:
            if lru:
                last_active.pop(key, None)  # re-inserted last: dict order is LRU order
            last_active[key] = now
        if self.max_keys is not None and len(last_active) > self.max_keys:
            self._evict(len(last_active) - self.max_keys)

    def _late(self, ev: Event, current: float) -> Rejected:
        """``ev`` is behind its partition's stream time ``current`` minus the lateness."""
        self.late_events += 1
        return Rejected(
            "late",
            ev,
            f"event time {ev.ts:.3f} is behind the partition's stream time {current:.3f} "
            f"minus the allowed lateness ({self.allowed_lateness:g} s)",
        )

    def _quiet_for(self, key: Key, now: float | None) -> float:
        """Wall seconds since the partition last delivered (0 if not known): live, event
        time may move on by as much as the clock did."""
        if now is None:
            return 0.0
        last = self._last_active.get(key)
        return max(0.0, now - last) if last is not None else 0.0

    def _outlier(
        self, key: Key, ev: Event, limit: float, accepted: list[Event], rejected: list[Rejected]
    ) -> None:
        """A record ahead of the future limit, or beyond its partition's allowed jump."""
        ts = ev.ts
        if ts > limit:
            rejected.append(
                Rejected(
                    "future",
                    ev,
                    f"event time {ts:.3f} is more than max_future_skew="
                    f"{self.max_future_skew:g} s ahead of the clock "
                    f"({limit - self.max_future_skew:.3f})",
                )
            )
            return
        if key not in self._stream_time:
            # a partition's first records: judged as they come; its stream time starts at
            # the smallest of the first N+1
            warm = self._warm.setdefault(key, [])
            warm.append(ts)
            accepted.append(ev)
            if len(warm) > self.jump_confirmations:
                self._start(key, self._warm.pop(key))
            return
        held = self._held.setdefault(key, [])
        held.append(ev)
        if len(held) > self.jump_confirmations:
            # confirmed: N further records agree that time has moved on
            new_time = sorted((e.ts for e in held), reverse=True)[self.jump_confirmations]
            self._stream_time[key] = max(self._stream_time[key], new_time - self.max_time_jump)
            self._release_within(key, accepted, rejected)

    def _release_within(self, key: Key, accepted: list[Event], rejected: list[Rejected]) -> bool:
        """Let go the held records within ``max_time_jump`` of the stream time (which they
        move on, so possibly bringing more within reach); True if none is left."""
        held = self._held[key]
        while True:
            reach = max(
                self._stream_time.get(key, _NEG_INF) + self.max_time_jump,
                self._vouched.get(key, _NEG_INF),
            )
            go = [e for e in held if e.ts <= reach]
            if not go:
                return False
            held = [e for e in held if e.ts > reach]
            accepted.extend(self._settle(key, go, rejected))
            if not held:
                del self._held[key]
                self._contra.pop(key, None)
                return True
            self._held[key] = held

    def _settle(self, key: Key, events: list[Event], rejected: list[Rejected]) -> list[Event]:
        """Held records let go: judged in arrival order; they move the stream time, and the
        lateness rule still applies among them."""
        current = self._stream_time.get(key, _NEG_INF)
        out: list[Event] = []
        for ev in events:
            if ev.ts > current:
                current = ev.ts
                out.append(ev)
            elif ev.ts >= current - self.allowed_lateness:
                out.append(ev)
            else:
                rejected.append(self._late(ev, current))
        if current != _NEG_INF:
            self._stream_time[key] = current
            self._warm.pop(key, None)
        return out

    def _beside_held(self, key: Key, accepted: list[Event], rejected: list[Rejected]) -> None:
        """A record that is no candidate arrived while candidates wait: it contradicts them,
        or (having moved the stream time) brings some within reach."""
        if self._release_within(key, accepted, rejected):
            return
        contra = self._contra.get(key, 0) + 1
        if contra >= self.jump_confirmations:
            self._reject_held(
                key,
                rejected,
                f"{contra} later records of the partition stayed near its stream time",
            )
        else:
            self._contra[key] = contra

    def _reject_held(self, key: Key, rejected: list[Rejected], why: str) -> None:
        held = self._held.pop(key)
        self._contra.pop(key, None)
        current = self._stream_time.get(key, _NEG_INF)
        for ev in held:
            rejected.append(
                Rejected(
                    "time_jump",
                    ev,
                    f"event time {ev.ts:.3f} is more than max_time_jump="
                    f"{self.max_time_jump:g} s ahead of the partition's stream "
                    f"time {current:.3f} and was not confirmed: {why}",
                )
            )

    def _release_quiet(self, now: float) -> list[Alert]:
        """Live: candidates of a partition quiet for ``idle_after`` that agree with the
        wall clock are let go (a sparse stream's next record, hours later, is one)."""
        assert self.clock is not None
        wall = self.clock()
        low, high = wall - self.max_time_jump, wall + self.max_future_skew
        out: list[Event] = []
        rejected: list[Rejected] = []
        for key in list(self._held):
            if now - self._last_active.get(key, now) < self.idle_after:
                continue
            held = self._held[key]
            go = [e for e in held if low <= e.ts <= high]
            if not go:
                continue
            stay = [e for e in held if not low <= e.ts <= high]
            if stay:
                self._held[key] = stay
            else:
                del self._held[key]
                self._contra.pop(key, None)
            out.extend(self._settle(key, go, rejected))
        self.rejected_later.extend(rejected)
        return self._detect(out)

    def _release_caught_up(self, now: float) -> list[Alert]:
        """Live: a partition with nothing left to read has nothing left to confirm or
        contradict its candidates: they are judged as at the end of a replay. A partition
        with fewer records than the start rule waits for starts at the smallest of them."""
        out: list[Event] = []
        for key in [*self._held, *self._warm]:
            if self.caught_up is not None:
                done = self.caught_up(key)
            else:
                done = self._quiet_and_read(key, now)
            if not done:
                continue
            if key in self._held:
                out.extend(self._judge_held(key, "its partition caught up"))
            elif key in self._warm:
                self._start(key, self._warm.pop(key))
        return self._detect(out)

    def _start(self, key: Key, times: list[float]) -> None:
        """A partition's stream time starts at the smallest of its first records, so that
        one forged record among them cannot set it (the largest is kept for ``latest``)."""
        start = self._stream_time[key] = min(times)
        if max(times) > start:
            self._started_below[key] = max(times)

    def _quiet_and_read(self, key: Key, now: float) -> bool:
        """A source partition known only by what reaches this engine is caught up once it
        has been quiet for ``idle_after`` (a device topic), and, for a repartitioned task,
        once nothing of it is on its way (the merge holds none of it either)."""
        if now - self._last_active.get(key, now) < self.idle_after:
            return False
        if self.input_caught_up is not None:
            return self.input_caught_up(key) and (self.merge is None or not self.merge.holds(key))
        return self.caught_up_when_quiet

    def drained(self, now: float) -> bool:
        """Live, Kafka: every source partition of this task is caught up and quiet for
        ``idle_after``, and nothing is held: all there is has been judged. (The runtime
        then moves the binding's watermark to its largest stream time, as a replay's end
        does.)"""
        caught_up = self.caught_up or self.input_caught_up
        if (
            caught_up is None
            or not self._stream_time
            or self._held
            or self._warm
            or (self.merge is not None and len(self.merge))
        ):
            return False
        last_active = self._last_active
        return all(
            now - last_active.get(key, now) >= self.idle_after and caught_up(key)
            for key in self._stream_time
        )

    def _judge_held(self, key: Key, when: str) -> list[Event]:
        """Nothing is left to confirm or contradict the candidates of ``key``: they are
        judged if no record contradicted them, dead-lettered ``time_jump`` (collected by
        ``take_late``) if one did. Live, never beyond the clock: those are ``future``."""
        rejected = self.rejected_later
        if self._contra.get(key, 0):
            self._reject_held(key, rejected, f"a later record contradicted it, then {when}")
            return []
        events = self._held.pop(key)
        self._contra.pop(key, None)
        if self.clock is not None:
            limit = self.clock() + self.max_future_skew
            ahead = [ev for ev in events if ev.ts > limit]
            if ahead:
                events = [ev for ev in events if ev.ts <= limit]
                for ev in ahead:  # (held before the clock went back)
                    self._outlier(key, ev, limit, [], rejected)
        return self._settle(key, events, rejected)

    def _expire(self, now: float) -> None:
        """Device streams: forget topics idle for ``key_ttl`` (their held records are
        dead-lettered: nothing will confirm them now)."""
        ttl = self.key_ttl
        assert ttl is not None
        self._next_expiry = now + min(ttl / 4, 60.0)
        stale = []
        for key, at in self._last_active.items():  # least recently active first
            if now - at <= ttl:
                break
            stale.append(key)
        self._forget(stale)

    def _evict(self, n: int) -> None:
        it = iter(self._last_active)
        self._forget([next(it) for _ in range(n)])

    def _forget(self, keys: list[Key]) -> None:
        for key in keys:
            self._last_active.pop(key, None)
            self._stream_time.pop(key, None)
            self._warm.pop(key, None)
            self._started_below.pop(key, None)
            if key in self._held:
                self._reject_held(key, self.rejected_later, "its topic went idle")

    def _compute_watermark(self, now: float | None) -> float:
        if not self._stream_time:
            return _NEG_INF
        if now is None or not self._last_active:
            times = list(self._stream_time.values())
        else:
            times = [
                ts
                for key, ts in self._stream_time.items()
                if now - self._last_active.get(key, now) <= self.idle_after
            ]
            if not times:
                times = list(self._stream_time.values())
        if self.max_topic_lag is not None and len(self._stream_time) > 1:
            # Device streams: a topic far behind the others (a clock in 1970, a device
            # replaying its buffer) does not hold back the binding's timers. "The others":
            # the upper median of every topic's stream time, so a single device cannot set
            # the reference either.
            every = sorted(self._stream_time.values())
            floor = self._lag_floor = every[len(every) // 2] - self.max_topic_lag
            kept = [ts for ts in times if ts >= floor]
            times = kept or [ts for ts in every if ts >= floor]
        return min(times) - self.allowed_lateness
