"""brute_force: >= N failed logins for one (username, ip_address) within a window.

    failures of (alice, 203.0.113.9):
    ---x-----x---x------x--x------------> event time
       |<------------ window ---------->|
                            ^ 5th failure within the window: FIRE (once)

Both window edges are inclusive: failures at 00:00 and 59:59 (or 60:00) are within one hour,
00:00 and 60:01 are not. After firing, the key is quiet for ``realert`` seconds (default: the
window) however many more failures arrive; the incident is identified by the time of the first
failure it holds in the window at the moment it fired, so a replay of the same data yields the
same fingerprint. It holds the newest ``max(2*threshold, samples)`` failures of a key: one
that kept failing through its quiet period may have had older failures in the window, so
such an alert says "at least N" failures (``failures_exact: false`` in its evidence).

Out-of-order failures (within the allowed lateness) are inserted in time order; the detector
evaluates the window ending at the arriving failure and the window ending at the key's newest
failure, so a late failure that completes either window fires.

State per key is compact because a million keys must fit in memory: a key with one failure
holds one ``(time, user_agent, country)`` tuple (agent and country strings are interned); a
key with more holds a sorted list of such tuples, never more than ``max(2*threshold, samples)``
of them. The newest ``threshold`` times decide "N within the window" exactly; keeping twice as
many keeps the decision exact for a failure that arrives late, because if ``threshold`` or more
failures came after it, the window ending at the newest failure already holds them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from operator import itemgetter
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import Interner, Sweeper, clip, failed, failed_column, iso, pack2, unpack2
from ._windows import KeyedState
from .base import Detector, Prefilter, register

_T = itemgetter(0)
Entry = tuple[float, Any, Any]  # (event time, user_agent, country)


@register
class BruteForce(Detector):
    kind = "brute_force"
    family = "auth-logs"
    severity = "high"
    defaults = {"threshold": 5, "window": 3600.0, "realert": 0.0, "samples": 5}
    colocate = ("username", "ip_address")
    prefilter_reads_record_only = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.threshold = max(1, int(self.params["threshold"]))
        self.window = float(self.params["window"])
        self.realert = float(self.params["realert"]) or self.window
        self.max_samples = int(self.params["samples"])
        self.cap = max(2 * self.threshold, self.max_samples, 2)
        self.state: KeyedState[str, Entry | list[Entry]] = KeyedState(self.ctx.key_cap)
        self.quiet: dict[str, float] = {}  # key -> quiet until (fired keys only)
        # key -> event time of the latest fire; read by compromise_suspected
        self.fires: KeyedState[str, float] = KeyedState(self.ctx.key_cap)
        self._intern = Interner()
        self._sweeper = Sweeper(self.window / 8)
        # how long fires stay queryable by ``fired_at`` (compromise_suspected may ask longer)
        self.fire_retention = self.window

    def prefilter(self) -> Prefilter:
        return failed  # successes neither count nor reset a window

    def column_prefilter(self) -> Any:
        return failed_column

    def retain_fires(self, seconds: float) -> None:
        """Keep fires queryable for at least ``seconds`` after they happened."""
        self.fire_retention = max(self.fire_retention, seconds)

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        window = self.window
        threshold = self.threshold
        cap = self.cap
        state = self.state
        get = state.get
        touch = state.touch
        quiet = self.quiet
        intern = self._intern
        evaluations = 0
        for ev in events:
            data = ev.data
            if data["success"]:
                continue
            evaluations += 1
            key = pack2(data["username"], data["ip_address"])
            ts = ev.ts
            entry = (ts, intern(data.get("user_agent")), intern(data.get("country")))
            cur = get(key)
            if cur is None:
                touch(key, entry)
                if threshold > 1:
                    continue
                entries: list[Entry] = [entry]
                touch(key, entries)
            elif type(cur) is tuple:
                entries = [cur, entry] if cur[0] <= ts else [entry, cur]
                touch(key, entries)
            else:
                entries = cur  # type: ignore[assignment]
                touch(key, entries)
                if ts >= entries[-1][0]:
                    entries.append(entry)
                else:
                    insort(entries, entry, key=_T)
                if len(entries) > cap:
                    del entries[: len(entries) - cap]
            n = len(entries)
            if n < threshold:
                continue
            newest = entries[-1][0]
            # drop what no window ending at or after the newest failure can include
            if entries[0][0] < newest - window:
                del entries[: bisect_left(entries, newest - window, key=_T)]
                n = len(entries)
                if n < threshold:
                    continue
            quiet_until = quiet.get(key)
            if ts == newest:
                # in order (the common case): the window ending here, O(1)
                if entries[n - threshold][0] < ts - window:
                    continue
                decided, lo, hi = ts, bisect_left(entries, ts - window, key=_T), n
            else:
                lo = bisect_left(entries, ts - window, key=_T)
                hi = bisect_right(entries, ts, key=_T)
                decided = ts
                if hi - lo < threshold:
                    lo, hi, decided = bisect_left(entries, newest - window, key=_T), n, newest
                    if hi - lo < threshold:
                        continue
            if quiet_until is not None and decided < quiet_until:
                continue
            quiet[key] = decided + self.realert
            self.fires.touch(key, decided)
            # a full list that starts the window may have lost older failures to the cap
            alerts.append(
                self._alert(key, entries[lo:hi], decided, ev, lo == 0 and len(entries) >= cap)
            )
        self.evaluations += evaluations
        return alerts

    def _alert(
        self, key: str, window_entries: list[Entry], ts: float, ev: Event, maybe_more: bool = False
    ) -> Alert:
        username, ip = unpack2(key)
        first = window_entries[0][0]
        count = len(window_entries)
        at_least = "at least " if maybe_more else ""
        samples = (
            [
                {
                    "timestamp": iso(t),
                    "username": clip(username),
                    "ip_address": clip(ip),
                    **({"user_agent": ua} if ua is not None else {}),
                    **({"country": country} if country is not None else {}),
                }
                for t, ua, country in window_entries[-self.max_samples :]
            ]
            if self.max_samples
            else []
        )
        minutes = self.window / 60
        return self.make_alert(
            key={"username": username, "ip_address": ip},
            incident=first,
            event_time=ts,
            title=f"Brute-force login attempt on {username} from {ip}",
            body=(
                f"{at_least}{count} failed logins for user {username} from {ip} within "
                f"{minutes:g} minutes (threshold {self.threshold})."
            ),
            evidence={
                "failures": count,
                "failures_exact": not maybe_more,
                "first_seen": first,
                "last_seen": ts,
                "window_seconds": self.window,
                "threshold": self.threshold,
                "samples": samples,
            },
            source=ev.source(),
            labels={"username": username, "ip_address": ip},
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        # Drop keys whose newest failure is older than the window: they can no longer fire
        # (a fire needs the newest failure in the window). Amortised: once per window/8.
        if not self._sweeper.due(watermark):
            return []
        horizon = watermark - self.window
        state = self.state
        for key, value in state.items():
            newest = value[0] if type(value) is tuple else value[-1][0]
            if newest < horizon:
                state.pop(key)
        quiet = self.quiet
        for key in [k for k, until in quiet.items() if until < watermark]:
            del quiet[key]
        retention = self.fire_retention
        fires = self.fires
        for key, ts in fires.items():
            if ts < watermark - retention:
                fires.pop(key)
        return []

    def fired_at(self, username: str, ip: str) -> float | None:
        """Event time of the latest fire for (username, ip), if still retained."""
        return self.fires.get(pack2(username, ip))

    def snapshot(self) -> Any:
        keys = []
        for key, value in self.state.items():
            entries = [value] if isinstance(value, tuple) else value
            keys.append([key, [list(e) for e in entries]])
        return {
            "keys": keys,
            "quiet": [[k, until] for k, until in self.quiet.items()],
            "fires": [[k, ts] for k, ts in self.fires.items()],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        intern = self._intern
        for key, entries in state.get("keys", []):
            tuples = [(float(t), intern(ua), intern(c)) for t, ua, c in entries]
            self.state.touch(key, tuples[0] if len(tuples) == 1 else tuples)
        for key, until in state.get("quiet", []):
            self.quiet[key] = until
        for key, ts in state.get("fires", []):
            self.fires.touch(key, ts)
        self.state.evictions = int(state.get("evictions", 0))
