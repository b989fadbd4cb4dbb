"""brute_force: >= N failed logins for one (username, ip_address) within a window.

    failures of (alice, 203.0.113.9):
    ---x-----x---x------x--x------------> event time
       |<------------ window ---------->|
                            ^ 5th failure within the window: FIRE (once)

After firing, the key is quiet for ``realert`` seconds (default: the window) however many more
failures arrive; the incident is identified by the time of the first failure in the window at
the moment it fired, so a replay of the same data yields the same fingerprint.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from ..alerts import Alert
from ..events import Event
from ..windows import KeyedState, window_add, window_count, window_expire
from .base import Detector, register

_SAMPLE_FIELDS = ("timestamp", "username", "ip_address", "user_agent", "country")


class _KeyState:
    __slots__ = ("times", "quiet_until", "samples")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.quiet_until = float("-inf")
        self.samples: list[dict[str, Any]] = []


@register
class BruteForce(Detector):
    kind = "brute_force"
    family = "auth-logs"
    severity = "high"
    defaults = {"threshold": 5, "window": 3600.0, "realert": 0.0, "samples": 5}

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.threshold = int(self.params["threshold"])
        self.window = float(self.params["window"])
        self.realert = float(self.params["realert"]) or self.window
        self.max_samples = int(self.params["samples"])
        self.state: KeyedState[_KeyState] = KeyedState(self.ctx.key_cap)
        # Only fired keys can be asked about by compromise_suspected; it reads this.
        self.recent_fires: dict[tuple[str, str], float] = {}

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        window = self.window
        state = self.state
        for ev in events:
            data = ev.data
            if data["success"]:
                continue
            self.evaluations += 1
            key = (data["username"], data["ip_address"])
            st = state.get(key)
            if st is None:
                st = _KeyState()
            state.touch(key, st)
            ts = ev.ts
            window_add(st.times, ts)
            if len(st.samples) >= self.max_samples:
                del st.samples[0]
            st.samples.append({k: data[k] for k in _SAMPLE_FIELDS if k in data})
            newest = st.times[-1]
            # Prune what no window ending at or after the newest event can include; the
            # allowed lateness is handled by the engine (late events never get here).
            window_expire(st.times, newest - window)
            if ts < st.quiet_until:
                continue
            count = window_count(st.times, ts - window, ts)
            if count < self.threshold:
                # an out-of-order event can complete a window that ends after it
                if ts == newest:
                    continue
                count = window_count(st.times, newest - window, newest)
                if count < self.threshold:
                    continue
                ts = newest
            first = st.times[bisect_left(st.times, ts - window)]
            st.quiet_until = ts + self.realert
            self.recent_fires[key] = ts
            alerts.append(self._alert(key, st, ts, first, count, ev))
        return alerts

    def _alert(self, key: tuple[str, str], st: _KeyState, ts: float, first: float, count: int,
               ev: Event) -> Alert:
        username, ip = key
        minutes = self.window / 60
        return self.make_alert(
            key={"username": username, "ip_address": ip}, incident=first, event_time=ts,
            title=f"Brute-force login attempt on {username} from {ip}",
            body=(f"{count} failed logins for user {username} from {ip} within "
                  f"{minutes:g} minutes (threshold {self.threshold})."),
            evidence={"failures": count, "first_seen": first, "last_seen": ts,
                      "window_seconds": self.window, "threshold": self.threshold,
                      "samples": list(st.samples)},
            source=ev.source(),
            labels={"username": username, "ip_address": ip},
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        # Drop keys whose newest failure is older than window + quiet period: they can no
        # longer fire or suppress. Done at most once per 1/8 window of event time.
        horizon = watermark - self.window
        if horizon < getattr(self, "_next_sweep", float("-inf")):
            return []
        self._next_sweep = horizon + self.window / 8
        for key, st in self.state.items():
            if st.times and st.times[-1] < horizon and st.quiet_until < watermark:
                self.state.pop(key)
        for key, ts in list(self.recent_fires.items()):
            if ts < horizon:
                del self.recent_fires[key]
        return []

    def state_size(self) -> int:
        return len(self.state)

    @property
    def evictions(self) -> int:
        return self.state.evictions

    def snapshot(self) -> Any:
        return {
            "keys": [[k[0], k[1], st.times, st.quiet_until if st.quiet_until > 0 else None,
                      st.samples] for k, st in self.state.items()],
            "recent_fires": [[k[0], k[1], ts] for k, ts in self.recent_fires.items()],
        }

    def restore(self, state: Any) -> None:
        for user, ip, times, quiet, samples in state.get("keys", []):
            st = _KeyState()
            st.times = list(times)
            st.quiet_until = quiet if quiet is not None else float("-inf")
            st.samples = list(samples)
            self.state.touch((user, ip), st)
        for user, ip, ts in state.get("recent_fires", []):
            self.recent_fires[(user, ip)] = ts

