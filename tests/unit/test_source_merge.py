"""SourceMerge holds its records in one list kept in release order (a stable sort a batch);
it releases exactly what a heap of (event time, arrival) pushed and popped a record at a
time released: the reference below, which is how the merge held them before."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.detectors.merge import SourceMerge
from streamproc.events import Event


class HeapMerge(SourceMerge):
    """The reference: a heap of (ts, arrival number, event), a push and a pop a record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def holds(self, src: tuple[str, int]) -> bool:
        return any((ev.topic, ev.partition) == src for _, _, ev in self._heap)

    def push(
        self, events: list[Event], now: float | None, progress: Sequence[Event] = ()
    ) -> list[Event]:
        self._marked(progress, now)  # (the marks' part is the merge's own)
        for ev in events:
            src = (ev.topic, ev.partition)
            last = self._newest.get(src)
            if last is None:
                if ev.topic not in self._topics:
                    self._expect(ev.topic, now)
                last = self._newest.get(src, float("-inf"))
            if ev.ts > last:
                self._newest[src] = ev.ts
            self._heard[src] = now
            heapq.heappush(self._heap, (ev.ts, self._seq, ev))
            self._seq += 1
        return self.release(now)

    def release(self, now: float | None) -> list[Event]:
        heap = self._heap
        if not heap:
            return []
        frontier = self._frontier(now)
        out: list[Event] = []
        while heap and heap[0][0] <= frontier:
            out.append(heapq.heappop(heap)[2])
        over = len(heap) - self.max_pending
        if over > 0:
            self.forced += over
            out.extend(heapq.heappop(heap)[2] for _ in range(over))
        return out

    def snapshot(self) -> dict[str, Any]:
        # (what the sources said is kept as the merge keeps it; the held records from the heap)
        return super().snapshot() | {
            "pending": [
                [ev.ts, ev.data, ev.topic, ev.partition, ev.offset]
                for _, _, ev in sorted(self._heap, key=lambda item: item[:2])
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        super().restore({"newest": state.get("newest", [])})
        for ts, data, topic, partition, offset in state.get("pending", []):
            heapq.heappush(
                self._heap, (ts, self._seq, Event(self.family, ts, data, topic, partition, offset))
            )
            self._seq += 1


SOURCES = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]


def _partitions_of(topic: str) -> int | None:
    return 3 if topic == "a" else None  # "b": no metadata, merge what arrives


# a batch: runs of one source each (as source tasks ship them), times from a small set so
# that ties across sources and within one are common, in order or not within a run
_run = st.tuples(
    st.sampled_from(SOURCES),
    st.lists(st.integers(0, 40), min_size=1, max_size=12),
    st.booleans(),  # sorted (a source in order) or as drawn (late copies)
)
_op = st.one_of(
    st.tuples(
        st.just("push"),
        st.lists(_run, max_size=5),
        st.lists(st.tuples(st.sampled_from(SOURCES), st.integers(0, 40)), max_size=2),
        st.integers(0, 3),  # seconds since the last operation
    ),
    st.tuples(st.just("release"), st.integers(0, 3)),
    st.tuples(st.just("final"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0)),
)


@settings(max_examples=400, deadline=None)
@given(
    ops=st.lists(_op, max_size=25),
    max_pending=st.integers(1, 30),
    behind=st.frozensets(st.sampled_from(SOURCES)),
)
def test_the_merge_releases_what_the_heap_released(
    ops: list[Any], max_pending: int, behind: frozenset[tuple[str, int]]
) -> None:
    def make(cls: type[SourceMerge]) -> SourceMerge:
        return cls(
            "auth-logs",
            wait=2.0,
            max_pending=max_pending,
            partitions_of=_partitions_of,
            behind=lambda topic, partition: (topic, partition) in behind,
        )

    merge, ref = make(SourceMerge), make(HeapMerge)
    now, offset = 1000.0, 0
    for op in ops:
        if op[0] == "push":
            _, runs, marks, dt = op
            now += dt
            events = []
            for (topic, partition), times, in_order in runs:
                for t in sorted(times) if in_order else times:
                    events.append(
                        Event("auth-logs", float(t), {"o": offset}, topic, partition, offset)
                    )
                    offset += 1
            progress = [Event("auth-logs", float(t), {}, tp[0], tp[1], 0) for tp, t in marks]
            got = merge.push(list(events), now, progress)
            assert got == ref.push(list(events), now, progress)
            # in event-time order, ties in arrival order
            assert [(e.ts, e.offset) for e in got] == sorted((e.ts, e.offset) for e in got)
        elif op[0] == "release":
            now += op[1]
            assert merge.release(now) == ref.release(now)
        elif op[0] == "final":
            assert merge.release(None) == ref.release(None)
        else:  # a checkpoint and a restart: a fresh merge restored from the snapshot
            snap = merge.snapshot()
            assert snap == ref.snapshot()
            merge, ref = make(SourceMerge), make(HeapMerge)
            merge.restore(snap)
            ref.restore(snap)
        assert len(merge) == len(ref)
        assert merge.forced == ref.forced
        for src in SOURCES:
            assert merge.holds(src) == ref.holds(src)
    assert merge.release(None) == ref.release(None)
    assert len(merge) == 0


def test_held_records_merge_with_newer_and_older_arrivals() -> None:
    """A batch older than some held records goes in among them, after held ones of its time."""
    merge = SourceMerge("auth-logs", wait=2.0, partitions_of=lambda topic: 2)

    def ev(ts: float, partition: int, offset: int) -> Event:
        return Event("auth-logs", ts, {}, "a", partition, offset)

    # source 1 not heard from yet: everything is held
    assert merge.push([ev(5, 0, 0), ev(9, 0, 1)], 100.0) == []
    assert merge.push([ev(5, 0, 2), ev(12, 0, 3)], 100.5) == []
    assert merge.push([ev(3, 1, 0), ev(5, 1, 1), ev(10, 1, 2)], 101.0) == [
        ev(3, 1, 0),
        ev(5, 0, 0),
        ev(5, 0, 2),
        ev(5, 1, 1),
        ev(9, 0, 1),
        ev(10, 1, 2),
    ]
    assert merge.holds(("a", 0)) and not merge.holds(("a", 1))
    assert merge.snapshot()["pending"] == [[12, {}, "a", 0, 3]]
