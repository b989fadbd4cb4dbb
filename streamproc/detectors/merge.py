"""SourceMerge: put a repartitioned task's input back in event-time order.

A repartition topic partition receives the re-keyed records of *every* source partition,
interleaved in the order the source tasks happened to judge them. Each source partition is in
order on its own; their interleaving is not. Live, the sources move together and the skew is a
batch or two. While a backlog is consumed it is not: a source partition with fewer records
runs hours of event time ahead of a busy one, and a window detector fed that interleaving
(password_spray counts an address's failures across usernames, i.e. across source partitions)
sees the fast partition's 10:40 before the slow partition's 10:05, trims its 10-minute
window, and misses the incident. Per-partition lateness keeps those records from being
dropped; it cannot make the window whole again.

So a repartitioned task merges its sources by event time, as Kafka Streams picks the
partition with the smallest head timestamp: a record is released to the detectors only once
every *active* source has delivered something at least as new (the frontier)::

    source 0  ..09:58 10:01 10:07 |          newest 10:07
    source 1  ..10:00 10:03|                 newest 10:03  <- frontier: everything <= 10:03
    source 2  ..10:02 10:05|                 newest 10:05     goes out, in time order

Which sources to wait for: every partition of a source topic, from the moment the first
record of that topic arrives (``partitions_of``, from the consumer's metadata). A source
merely not heard from yet is the dangerous one: a backlog whose first batches all come from
one partition would otherwise let that partition's hours through before the others start.

A source that has delivered nothing for ``wait`` seconds of wall time (caught up, empty,
stopped) is not waited for, so live alerts are held back by at most ``wait`` -- unless the
consumer knows that records of that source may still be on their way (``behind``), for up to
``BEHIND_WAIT_LIMIT``: its partition is assigned here and not fetched from yet, or has
records below the high watermark not judged yet, however few; or the repartition partition
this task reads has records below its high watermark not judged yet. In a backlog a consumer
can serve other topics for seconds at a time; wall time alone then declared busy partitions
quiet and let the others' hours through. The second half matters as much: a source judged to
its end is not behind, yet its last copies can wait in the repartition partition's backlog
for seconds, behind the other sources' copies (a source that has truly ended is then waited
for while that backlog lasts, up to the limit). A source judged in this worker is heard from
when it ships its copies (``heard_of``), not only when they arrive: the high watermark a
consumer knows of its own input can lag what was just produced to it, so that input reads
caught up while the copies are on their way.

Where the sources ship only what the task's detectors can use (pipeline/repartition.py), a
source with nothing to ship says how far it has got with a progress mark after each batch,
on every partition of the topic: the mark moves the source's newest time as a copy of that
time would, and is heard from as a copy is. It carries the source task's stream time, not
the newest time a record claimed, so a forged time (held or dead-lettered at the source)
opens no merge.

``max_pending`` bounds memory: past it the oldest records are released anyway (counted in
``forced``); the detectors then see a little disorder, which is the behaviour without the
merge.

Held records are part of the task's checkpoint (``snapshot``): their repartition-topic offsets
are committed with it, so they must survive a crash with it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any

from ..events import Event

DEFAULT_WAIT = 2.0
DEFAULT_MAX_PENDING = 200_000
# a source still behind but silent for this long (paused, stuck, revoked) is not waited for
BEHIND_WAIT_LIMIT = 60.0

Source = tuple[str, int]  # the original record's (topic, partition)
_TS = attrgetter("ts")
_SOURCE = attrgetter("topic", "partition")


class SourceMerge:
    def __init__(
        self,
        family: str,
        wait: float = DEFAULT_WAIT,
        max_pending: int = DEFAULT_MAX_PENDING,
        partitions_of: Callable[[str], int | None] | None = None,
        behind: Callable[[str, int], bool] | None = None,
    ) -> None:
        self.family = family
        self.behind = behind
        self.partitions_of = partitions_of
        self._topics: set[str] = set()
        self.wait = wait
        self.max_pending = max_pending
        # the held records in release order: by event time, ties in arrival order (which
        # is source order within a source)
        self._pending: list[Event] = []
        self._newest: dict[Source, float] = {}
        self._heard: dict[Source, float | None] = {}  # wall time a source last delivered
        self.forced = 0

    def __len__(self) -> int:
        return len(self._pending)

    def holds(self, src: Source) -> bool:
        """Whether records of ``src`` wait here."""
        return any(map(src.__eq__, map(_SOURCE, self._pending)))

    def push(
        self, events: list[Event], now: float | None, progress: Sequence[Event] = ()
    ) -> list[Event]:
        """Take a batch; return what may go to the detectors now, in event-time order.
        ``progress``: the batch's progress marks (pipeline/repartition.py): each says its
        source has shipped everything up to its time, as a copy of that time would."""
        self._marked(progress, now)
        if events:
            newest = self._newest
            heard = self._heard
            # A source's records arrive in runs (a source task ships a batch's at once): its
            # newest time and when it was heard from are set a run at a time
            for src, run in groupby(events, _SOURCE):
                ts = max(map(_TS, run))
                last = newest.get(src)
                if last is None:
                    if src[0] not in self._topics:
                        self._expect(src[0], now)
                    last = newest.get(src, float("-inf"))
                if ts > last:
                    newest[src] = ts
                heard[src] = now
            self._hold(events)
        return self.release(now)

    def _marked(self, progress: Sequence[Event], now: float | None) -> None:
        """Each mark moves its source's newest time as a copy of that time would."""
        for mark in progress:
            src = (mark.topic, mark.partition)
            if src not in self._newest and mark.topic not in self._topics:
                self._expect(mark.topic, now)
            if mark.ts > self._newest.get(src, float("-inf")):
                self._newest[src] = mark.ts
            self._heard[src] = now

    def heard_of(self, src: Source, now: float) -> None:
        """``src`` is shipping records this way (judged at its source here): not quiet, even
        before they arrive. Only a source already expected (its topic heard from)."""
        if src in self._heard:
            at = self._heard[src]
            if at is None or at < now:
                self._heard[src] = now

    def release(self, now: float | None) -> list[Event]:
        """What the frontier lets out (all of it when no source is active, or ``now`` is
        None: a replay or a final flush)."""
        pending = self._pending
        if not pending:
            return []
        frontier = self._frontier(now)
        cut = bisect_right(pending, frontier, key=_TS)
        over = len(pending) - cut - self.max_pending
        if over > 0:
            self.forced += over
            cut += over
        out = pending[:cut]
        del pending[:cut]
        return out

    def _hold(self, events: list[Event]) -> None:
        """Add ``events`` (arrived after every held record) in release order. A sort with a
        key is stable and runs in C: it merges the runs of the sources (each in order) in
        one pass, where a heap cost a push and a pop a record in Python."""
        pending = self._pending
        new = sorted(events, key=_TS)
        if not pending or new[0].ts >= pending[-1].ts:
            pending.extend(new)  # (live: the usual case)
            return
        # only the held records newer than the oldest new one are merged with them: the
        # held stay ahead of new ones of the same time (they arrived first)
        at = bisect_right(pending, new[0].ts, key=_TS)
        tail = pending[at:]
        tail += new
        tail.sort(key=_TS)
        pending[at:] = tail

    def _expect(self, topic: str, now: float | None) -> None:
        """Wait for every partition of a source topic, not just those heard from yet."""
        self._topics.add(topic)
        try:
            n = self.partitions_of(topic) if self.partitions_of is not None else None
        except Exception:  # noqa: BLE001 - no metadata: merge what arrives
            n = None
        for partition in range(n or 0):
            src = (topic, partition)
            if src not in self._newest:
                self._newest[src] = float("-inf")
                self._heard[src] = now

    def _frontier(self, now: float | None) -> float:
        if now is None:
            return float("inf")
        heard = self._heard
        active = []
        for src, ts in self._newest.items():
            at = heard.get(src)
            if at is None:  # restored from a checkpoint: give it ``wait`` from now
                heard[src] = at = now
            quiet = now - at
            if quiet <= self.wait or (
                quiet <= BEHIND_WAIT_LIMIT and self.behind is not None and self.behind(*src)
            ):
                active.append(ts)
        return min(active) if active else float("inf")

    # -- state ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        # a source expected but not heard from yet is kept (as null): still waited for
        return {
            "newest": [
                [t, p, None if ts == float("-inf") else ts] for (t, p), ts in self._newest.items()
            ],
            "pending": [
                [ev.ts, ev.data, ev.topic, ev.partition, ev.offset] for ev in self._pending
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        for topic, partition, ts in state.get("newest", []):
            src = (topic, partition)
            ts = float("-inf") if ts is None else ts
            if ts >= self._newest.get(src, float("-inf")):
                self._newest[src] = ts
            self._heard[src] = None
            self._topics.add(topic)
        held = [
            Event(self.family, ts, data, topic, partition, offset)
            for ts, data, topic, partition, offset in state.get("pending", [])
        ]
        if held:
            self._hold(held)
