"""rate_abuse: more than 600 requests from one ip_address within 5 minutes. Exact.

    requests from 198.51.100.7:
    ||||||||||||||||||||||||||||||||||||||||||||||||| ... ---------> event time
    |<------------------ 5 min ------------------>|
                        601st request in the window ^ FIRE    resolved once the window holds
                                                              600 or fewer again

Exact counting without unbounded memory: "more than N in W" holds at time T iff the
(N+1)-th newest request is at or after T - W. So a key keeps only its newest ``2 * (N+1)``
request times (an ``array('d')``: 8 bytes each), and only those inside the window: a key with
one request in the window holds a bare float. Twice N+1 keeps the decision exact for requests
that arrive out of order within the allowed lateness (same argument as brute_force). No
approximation, so no error bound to document: the count is exact.

Resolution: the window falls back to N or fewer at ``t = (N+1)-th newest + W`` (both edges
inclusive, so strictly after that instant). The resolved alert carries that time, which does
not depend on when the watermark happened to pass it, so replays are deterministic. A new
incident for the same address may fire ``realert`` seconds (default: the window) after the
previous one fired.

A batch: each record is judged in turn (``_judge_records``), except the records of a key with
``heavy_key_records`` (8) or more of them in the batch (an abuser, a crawler: 60% of the
bench's api records), judged at once where the key's last record is. Its times are appended to
its window, which is trimmed once, and numpy gives the count each record saw. That is exact:
with the key's records in order and its window sorted, each record-by-record trim only raises
the window's start, so record k saw the merged times from the later of (the first at or after
t_k - W, the ``cap``-th newest) up to itself; it is the newest of them, all lie within W of it,
and it is over iff they are N+1 or more. Only the records that could add a sample or fire are
looked at; a firing incident keeps the last ``samples`` of its records. Alerts and new
incidents are put in the order of the records that made them, and a key judged where its last
record is lands where it would in the LRU order. What is not as simple (records of a key out of
order, a key with no window yet, a batch in which a key may be evicted, a NaN time) is judged
record by record. tests/unit/test_rate_abuse_batches.py checks that both ways agree.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from itertools import count
from math import isnan
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..alerts import Alert
from ..events import Event
from ._common import Sweeper, clip, iso
from ._windows import KeyedState
from .base import Detector, register
from .columns import EventBatch

if TYPE_CHECKING:
    import numpy as np


@register
class RateAbuse(Detector):
    kind = "rate_abuse"
    family = "api-access-logs"
    severity = "medium"
    defaults = {"threshold": 600, "window": 300.0, "realert": 0.0, "samples": 5}
    colocate = ("ip_address",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.threshold = int(self.params["threshold"])
        self.need = self.threshold + 1  # "more than threshold"
        self.window = float(self.params["window"])
        self.realert = float(self.params["realert"]) or self.window
        self.max_samples = int(self.params["samples"])
        self.cap = 2 * self.need
        self.state: KeyedState[str, float | array[float]] = KeyedState(self.ctx.key_cap)
        # ip -> [incident start, fired at, firing?, peak count, samples]; abusers only
        self.incidents: dict[str, list[Any]] = {}
        self._sweeper = Sweeper(self.window)
        # No NaN time judged so far (the decoder lets none through): every stored window is
        # sorted, as a key's records judged at once need (bisect and searchsorted agree).
        self._no_nan_time = True

    reads_columns = True
    # A key with this many records in a batch or more has them judged at once (module
    # docstring); for fewer, the per-key cost (numpy calls) is more than the loop's. Measured
    # on the bench's api stream: 8 to 16 alike, 32 slower.
    heavy_key_records = 8

    def process(self, events: list[Event]) -> list[Alert]:
        return self.judge_batch(EventBatch(events))

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        fired: list[tuple[int, Alert]] = []
        created: list[tuple[int, str]] = []
        if not self._judge_heavy_keys_at_once(batch, fired, created):
            self._judge_records(batch, range(len(batch)), fired, created)
        self.evaluations += len(batch)
        return [alert for _, alert in fired]

    def _judge_heavy_keys_at_once(
        self,
        batch: EventBatch,
        fired: list[tuple[int, Alert]],
        created: list[tuple[int, str]],
    ) -> bool:
        """Judge the batch with each heavy key's records at once (module docstring); False,
        having changed nothing, where the batch is better judged record by record."""
        n_records = len(batch)
        heavy_from = self.heavy_key_records
        if self.need < 2 or self.max_samples < 0:
            return False
        if n_records < heavy_from:
            if self._no_nan_time and any(map(isnan, batch.times)):
                self._no_nan_time = False
            return False
        import numpy as np

        all_times = np.array(batch.times, dtype=np.float64)
        if self._no_nan_time and np.isnan(all_times).any():
            self._no_nan_time = False
        if not self._no_nan_time:
            return False
        ips = batch.column("ip_address")
        first_of: dict[Any, int] = {}
        # a record's key as the index of the key's first record
        key_of = np.array(list(map(first_of.setdefault, ips, count())), dtype=np.intp)
        sizes = np.bincount(key_of)
        is_heavy = sizes >= heavy_from
        if not is_heavy.any():
            return False
        state = self.state
        if len(state) + len(first_of) > state.cap and (
            len(state) + sum(ip not in state for ip in first_of) > state.cap
        ):
            return False  # a key may be evicted: when depends on the order of every record
        on_heavy = is_heavy[key_of]
        light = np.flatnonzero(~on_heavy)
        grouped = np.flatnonzero(on_heavy)
        # each heavy key's records in a run, in batch order within it (a stable sort)
        grouped = grouped[np.argsort(key_of[grouped], kind="stable")]
        heavy_keys = np.flatnonzero(is_heavy)
        ends = np.cumsum(sizes[heavy_keys])
        grouped_list = grouped.tolist()
        times = all_times[grouped]
        in_order = times[1:] >= times[:-1]
        in_order[ends[:-1] - 1] = True  # the first record of the next key's run
        unordered = set(np.searchsorted(ends, np.flatnonzero(~in_order), side="right").tolist())
        lasts = grouped[ends - 1]
        # a key's records are judged where its last one is, between the light records before
        # and after it: every touch of the LRU order then lands where it lands record by record
        cuts = np.searchsorted(light, lasts).tolist()
        light_indices = light.tolist()
        heavy_ips = [ips[k] for k in heavy_keys.tolist()]
        ends_list = ends.tolist()
        done = 0
        for g in np.argsort(lasts).tolist():
            cut = cuts[g]
            if cut > done:
                self._judge_records(batch, light_indices[done:cut], fired, created)
                done = cut
            start, end = (ends_list[g - 1] if g else 0), ends_list[g]
            self._judge_key_at_once(
                batch,
                heavy_ips[g],
                grouped_list[start:end],
                times[start:end],
                g not in unordered,
                fired,
                created,
            )
        self._judge_records(batch, light_indices[done:], fired, created)
        # alerts and new incidents in the order of the records that made them
        fired.sort(key=itemgetter(0))
        if len(created) > 1:
            created.sort(key=itemgetter(0))
            incidents = self.incidents
            for _, ip in created:  # the new ones are the last: none is removed in a batch
                incidents[ip] = incidents.pop(ip)
        return True

    def _judge_key_at_once(
        self,
        batch: EventBatch,
        ip: str,
        positions: list[int],
        times: np.ndarray,
        in_order: bool,
        fired: list[tuple[int, Alert]],
        created: list[tuple[int, str]],
    ) -> None:
        """Judge one key's records of the batch (at ``positions``, with their ``times`` as a
        numpy array) with one update of its state; record by record where that is not exact."""
        get = self.state.get
        cur = get(ip)
        start, stop = 0, len(positions)
        while not isinstance(cur, array):  # None or a bare float: not yet a window
            if start == stop:
                return
            self._judge_records(batch, positions[start : start + 1], fired, created)
            start += 1
            cur = get(ip)
        if start == stop:  # the last record made the window
            return
        if start:
            positions, times = positions[start:], times[start:]
        if not in_order or not cur or times[0] < cur[-1]:
            self._judge_records(batch, positions, fired, created)
            return
        window = self.window
        stored = len(cur)
        cur.frombytes(times.tobytes())
        # Every record's window starts at or after the first one's: a key with fewer times
        # from there than a sample needs judges none of its records.
        first_from = bisect_left(cur, cur[stored] - window)
        if len(cur) - first_from >= self.need - self.max_samples:
            self._judge_windows(batch, ip, positions, cur, stored, fired, created)
        keep_from = max(bisect_left(cur, cur[-1] - window, first_from), len(cur) - self.cap)
        if keep_from > 0:
            del cur[:keep_from]
        self.state.touch(ip, cur)

    def _judge_windows(
        self,
        batch: EventBatch,
        ip: str,
        positions: list[int],
        merged_times: array[float],
        stored: int,
        fired: list[tuple[int, Alert]],
        created: list[tuple[int, str]],
    ) -> None:
        """The decisions for a key's records in order, the ``stored`` times of its window
        followed by theirs in ``merged_times``."""
        import numpy as np

        need, window = self.need, self.window
        merged = np.array(merged_times)  # a copy: the caller trims ``merged_times`` next
        times = merged[stored:]
        # record k (0-based) is merged[stored + k]; the window it ends is merged[lo[k] : stored
        # + k + 1], trimmed to the window of its time and to the newest ``cap``, as the
        # record-by-record trims leave it: both bounds only grow with k
        ends = np.arange(stored + 1, len(merged) + 1)
        lo = np.maximum(np.searchsorted(merged, times - window), ends - self.cap)
        counts = ends - lo
        judged = np.flatnonzero(counts >= need - self.max_samples)
        if not judged.size:
            return
        incidents = self.incidents
        inc = incidents.get(ip)
        if inc is None:  # made by the first record judged, whether it fires or is a sample
            incidents[ip] = inc = [None, None, False, 0, []]
            created.append((positions[int(judged[0])], ip))
        if inc[2]:  # firing: each record is a sample
            self._add_samples(inc, batch, [positions[k] for k in judged.tolist()])
            return
        over = counts[judged] >= need
        may_fire = over if inc[1] is None else over & (times[judged] >= inc[1] + self.realert)
        fires = np.flatnonzero(may_fire)
        if not fires.size:  # under the threshold: a sample; over it in the cooldown: nothing
            self._add_samples(inc, batch, [positions[k] for k in judged[~over].tolist()])
            return
        f = int(fires[0])
        k = int(judged[f])
        before = judged[:f][~over[:f]].tolist()
        self._add_samples(inc, batch, [positions[j] for j in before] + [positions[k]])
        decided, count_at = float(times[k]), int(counts[k])
        inc[0], inc[1], inc[2], inc[3] = float(merged[lo[k]]), decided, True, count_at
        fired.append((positions[k], self._fire(batch, positions[k], ip, inc, decided, count_at)))
        self._add_samples(inc, batch, [positions[j] for j in judged[f + 1 :].tolist()])

    def _add_samples(self, inc: list[Any], batch: EventBatch, indices: list[int]) -> None:
        """``_add_sample`` for each of ``indices``: only the last ``samples`` of them stay."""
        if self.max_samples:
            for i in indices[-self.max_samples :]:
                self._add_sample(inc, batch, i)

    def _fire(
        self, batch: EventBatch, i: int, ip: str, inc: list[Any], decided: float, count: int
    ) -> Alert:
        topic, partition, offset = batch.origin(i)
        return self._alert(
            ip,
            inc,
            decided,
            count,
            {"topic": topic, "partition": partition, "offset": offset},
            "firing",
        )

    def _judge_records(
        self,
        batch: EventBatch,
        indices: Iterable[int],
        fired: list[tuple[int, Alert]],
        created: list[tuple[int, str]],
    ) -> None:
        """Judge the records at ``indices``, one at a time, in that order: each alert goes to
        ``fired`` and each new incident to ``created``, with the index of its record."""
        ips, tcol = batch.column("ip_address"), batch.times
        state = self.state
        get, touch = state.get, state.touch
        window, need, cap = self.window, self.need, self.cap
        sample_from = need - self.max_samples
        incidents = self.incidents
        for i in indices:
            ip, ts = ips[i], tcol[i]
            cur = get(ip)
            if cur is None:
                touch(ip, ts)
                if need > 1:
                    continue
                times = array("d", (ts,))
            elif type(cur) is float:
                if cur < ts - window:  # the old request left the window
                    touch(ip, ts)
                    if need > 1:
                        continue
                    times = array("d", (ts,))
                else:
                    times = array("d", (cur, ts) if cur <= ts else (ts, cur))
            else:
                times = cur  # type: ignore[assignment]
                if ts >= times[-1]:
                    times.append(ts)
                else:
                    insort(times, ts)
                newest = times[-1]
                if times[0] < newest - window:
                    del times[: bisect_left(times, newest - window)]
                if len(times) > cap:
                    del times[: len(times) - cap]
            touch(ip, times)
            n = len(times)
            if n < sample_from:
                continue
            newest = times[-1]
            inc = incidents.get(ip)
            if inc is not None and inc[2]:
                self._add_sample(inc, batch, i)
                continue
            decided = newest
            if (n < need or times[n - need] < newest - window) and (
                ts == newest
                or n < need
                or bisect_right(times, ts) - bisect_left(times, ts - window) < need
            ):
                # neither the window ending at the newest request nor (for an out-of-order
                # request) the one ending at this request holds more than the threshold
                if inc is None and n >= sample_from and self.max_samples:
                    incidents[ip] = inc = [None, None, False, 0, []]
                    created.append((i, ip))
                if inc is not None:
                    self._add_sample(inc, batch, i)
                continue
            if times[n - need] < newest - window:
                decided = ts  # only the window ending at this late request is over
            if inc is not None and inc[1] is not None and decided < inc[1] + self.realert:
                continue
            hi = bisect_right(times, decided)
            lo = bisect_left(times, decided - window)
            count = hi - lo
            first = times[lo]
            if inc is None:
                incidents[ip] = inc = [None, None, False, 0, []]
                created.append((i, ip))
            self._add_sample(inc, batch, i)
            inc[0], inc[1], inc[2], inc[3] = first, decided, True, count
            fired.append((i, self._fire(batch, i, ip, inc, decided, count)))

    def _add_sample(self, inc: list[Any], batch: EventBatch, i: int) -> None:
        if not self.max_samples:
            return
        samples = inc[4]
        if len(samples) >= self.max_samples:
            del samples[0]
        samples.append(
            {
                "timestamp": iso(batch.times[i]),
                "method": clip(batch.value("method", i)),
                "endpoint": clip(batch.value("endpoint", i)),
                "status_code": batch.value("status_code", i),
            }
        )

    def _alert(
        self,
        ip: str,
        inc: list[Any],
        ts: float,
        count: int,
        source: dict[str, Any] | None,
        status: str,
    ) -> Alert:
        minutes = self.window / 60
        at_least = count >= self.cap
        if status == "firing":
            title = f"Request rate abuse from {clip(ip)}: {count} requests in {minutes:g} min"
            body = (
                f"{'At least ' if at_least else ''}{count} requests from {clip(ip)} within "
                f"{minutes:g} minutes (limit {self.threshold})."
            )
        else:
            title = f"Request rate from {clip(ip)} back under the limit"
            body = (
                f"{clip(ip)} made {self.threshold} or fewer requests in the last "
                f"{minutes:g} minutes; peak {inc[3]}."
            )
        return self.make_alert(
            key={"ip_address": ip},
            incident=inc[0],
            event_time=ts,
            title=title,
            body=body,
            status=status,
            evidence={
                "requests": count,
                "at_least": at_least,
                "peak": inc[3],
                "first_seen": inc[0],
                "last_seen": ts,
                "window_seconds": self.window,
                "threshold": self.threshold,
                "samples": list(inc[4]),
            },
            source=source if source is not None else {},
            labels={"ip_address": clip(ip)},
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        alerts: list[Alert] = []
        window, need = self.window, self.need
        for ip, inc in list(self.incidents.items()):
            times = self.state.get(ip)
            if inc[2]:
                if type(times) is array and len(times) >= need:
                    n = len(times)
                    inc[3] = max(inc[3], n - bisect_left(times, times[-1] - window))
                    clears_at = times[n - need] + window
                else:
                    clears_at = inc[1]  # state was evicted: the incident cannot be judged
                if watermark > clears_at:
                    inc[2] = False
                    inc[4] = []
                    alerts.append(self._alert(ip, inc, clears_at, inc[3], None, "resolved"))
            elif (inc[1] is None or watermark > inc[1] + self.realert) and (
                times is None or isinstance(times, float) or times[-1] < watermark - window
            ):
                del self.incidents[ip]
        if self._sweeper.due(watermark):
            horizon = watermark - window
            state = self.state
            for ip, times in state.items():
                newest = times if isinstance(times, float) else times[-1]
                if newest < horizon and ip not in self.incidents:
                    state.pop(ip)
        return alerts

    def snapshot(self) -> Any:
        return {
            "ips": [[ip, [t] if isinstance(t, float) else list(t)] for ip, t in self.state.items()],
            "incidents": [[ip, inc] for ip, inc in self.incidents.items()],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        for ip, times in state.get("ips", []):
            self.state.touch(ip, float(times[0]) if len(times) == 1 else array("d", times))
        for ip, inc in state.get("incidents", []):
            self.incidents[ip] = list(inc)
        self.state.evictions = int(state.get("evictions", 0))
