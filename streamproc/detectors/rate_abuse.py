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
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import Sweeper, clip, iso
from ._windows import KeyedState
from .base import Detector, register
from .columns import EventBatch


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

    reads_columns = True

    def process(self, events: list[Event]) -> list[Alert]:
        return self.judge_batch(EventBatch(events))

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        alerts: list[Alert] = []
        state = self.state
        get, touch = state.get, state.touch
        window, need, cap = self.window, self.need, self.cap
        sample_from = need - self.max_samples
        incidents = self.incidents
        for i, (ip, ts) in enumerate(zip(batch.column("ip_address"), batch.times, strict=True)):
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
            self._add_sample(inc, batch, i)
            inc[0], inc[1], inc[2], inc[3] = first, decided, True, count
            topic, partition, offset = batch.origin(i)
            alerts.append(
                self._alert(
                    ip,
                    inc,
                    decided,
                    count,
                    {"topic": topic, "partition": partition, "offset": offset},
                    "firing",
                )
            )
        self.evaluations += len(batch)
        return alerts

    def _add_sample(self, inc: list[Any], batch: EventBatch, i: int) -> None:
        if not self.max_samples:
            return
        samples = inc[4]
        if len(samples) >= self.max_samples:
            del samples[0]
        samples.append(
            {
                "timestamp": iso(batch.times[i]),
                "method": clip(batch.column("method")[i]),
                "endpoint": clip(batch.column("endpoint")[i]),
                "status_code": batch.column("status_code")[i],
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
