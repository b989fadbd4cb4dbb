"""compromise_suspected: a successful login for a (username, ip_address) within 10 minutes after
brute_force fired for that same pair.

    (alice, 203.0.113.9):  x x x x x(brute_force fires) ....... OK(success)
    -------------------------------|<------- 10 min ------->|----> event time
                                   fire                     fire + window
                                                   success here: FIRE (critical), once per
                                                   brute-force incident

Where the fires come from. This detector runs ``after`` brute_force, so within a batch
brute_force has judged every failure before this detector sees the successes, and asks the
engine's brute_force (handed over by ``connect``, again after a reload rebuilds either) when
a pair last fired. If brute_force is disabled in this binding, this detector runs a private
brute_force with its own ``threshold`` and ``failure_window`` (that private one sends no
alerts), so it still works on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import compress, repeat
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import Sweeper, clip, iso, pack2, sample_of, succeeded, unpack2
from .base import Detector, DetectorContext, Prefilter, register
from .brute_force import BruteForce

_SAMPLE_FIELDS = ("username", "ip_address", "user_agent", "country")


@register
class CompromiseSuspected(Detector):
    kind = "compromise_suspected"
    family = "auth-logs"
    severity = "critical"
    defaults = {"window": 600.0, "threshold": 5, "failure_window": 3600.0}
    colocate = ("username", "ip_address")
    after = ("brute_force",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.window = float(self.params["window"])
        self._private: BruteForce | None = None
        # (username, ip) packed -> fire time already reported (one alert per incident)
        self.reported: dict[tuple[str, str], float] = {}
        self._sweeper = Sweeper(self.window)
        self._engine_bf: BruteForce | None = None  # the engine's brute_force, by connect()
        self._private_state: Any = None  # a restored private brute_force, until one is built

    def prefilter(self) -> Prefilter | None:
        if self._engine_bf is None:
            return None  # the private brute_force counts the failures
        return succeeded

    def column_prefilter(self) -> Any:
        """Successes of a (username, ip_address) that the engine's brute_force fired for (it
        judged the batch first). Narrower than ``prefilter``: a success of any other pair
        passes without an alert or a change. None (every record) with a private
        brute_force: it counts the failures, and may fire within the batch."""
        bf = self._brute_force()
        if bf is self._private:
            return None
        fired = bf.fires
        fired_users = {unpack2(pair)[0] for pair in fired.keys()}  # noqa: SIM118 (KeyedState is no iterable)

        def select(frame: Any) -> Any:
            n = len(frame)
            if not fired_users:
                return repeat(False, n)
            users = frame.column("username")
            ips, success = frame.column("ip_address"), frame.column("success")
            picked = [False] * n
            # a user brute_force fired for (few, if any), then the exact pair
            for i in compress(range(n), map(fired_users.__contains__, users)):
                user, ip = users[i], ips[i]
                picked[i] = bool(success[i]) and type(ip) is str and pack2(user, ip) in fired
            return picked

        return select

    def connect(self, peers: Mapping[str, Detector]) -> None:
        bf = peers.get("brute_force")
        self._engine_bf = bf if isinstance(bf, BruteForce) else None
        if self._engine_bf is not None:
            self._engine_bf.retain_fires(self.window)
            self._private = None

    def _brute_force(self) -> BruteForce:
        if self._engine_bf is not None:
            return self._engine_bf
        if self._private is None:
            self._private = BruteForce(
                {"threshold": self.params["threshold"], "window": self.params["failure_window"]},
                DetectorContext(binding=self.ctx.binding, key_cap=self.ctx.key_cap),
            )
            self._private.retain_fires(self.window)
            if self._private_state is not None:
                self._private.restore(self._private_state)
                self._private_state = None
        return self._private

    def process(self, events: list[Event]) -> list[Alert]:
        bf = self._brute_force()
        if bf is self._private:
            bf.process(events)  # its alerts are not ours to send
        alerts: list[Alert] = []
        window = self.window
        fires = bf.fires
        if not len(fires):
            return alerts
        reported = self.reported
        for ev in events:
            data = ev.data
            if not data["success"]:
                continue
            self.evaluations += 1
            username, ip = data["username"], data["ip_address"]
            fired = bf.fired_at(username, ip)
            if fired is None:
                continue
            ts = ev.ts
            if not (fired <= ts <= fired + window):
                continue
            pair = (username, ip)
            if reported.get(pair) == fired:
                continue
            reported[pair] = fired
            alerts.append(
                self.make_alert(
                    key={"username": username, "ip_address": ip},
                    incident=fired,
                    event_time=ts,
                    title=f"Possible account compromise: {clip(username)} logged in from "
                    f"{clip(ip)} after a brute-force attack",
                    body=(
                        f"User {clip(username)} logged in successfully from {clip(ip)} "
                        f"{ts - fired:.0f} s after brute_force fired for the same user and "
                        f"address. Treat the account as compromised until proven otherwise: "
                        f"reset its credentials and review the session."
                    ),
                    evidence={
                        "brute_force_fired_at": fired,
                        "success_at": ts,
                        "seconds_after": ts - fired,
                        "window_seconds": window,
                        "samples": [{"timestamp": iso(ts), **sample_of(data, _SAMPLE_FIELDS)}],
                    },
                    source=ev.source(),
                    labels={"username": clip(username), "ip_address": clip(ip)},
                )
            )
        return alerts

    def on_watermark(self, watermark: float) -> list[Alert]:
        if self._private is not None:
            self._private.on_watermark(watermark)
        if self._sweeper.due(watermark):
            horizon = watermark - self.window
            for pair in [p for p, fired in self.reported.items() if fired < horizon]:
                del self.reported[pair]
        return []

    def state_size(self) -> int:
        return len(self.reported) + (self._private.state_size() if self._private else 0)

    @property
    def evictions(self) -> int:
        return self._private.evictions if self._private else 0

    def snapshot(self) -> Any:
        return {
            "reported": [[u, ip, t] for (u, ip), t in self.reported.items()],
            "private": self._private.snapshot() if self._private else self._private_state,
        }

    def restore(self, state: Any) -> None:
        for u, ip, t in state.get("reported", []):
            self.reported[(u, ip)] = t
        if state.get("private") is not None:
            # restored when a private brute_force is built: not if the engine runs one
            self._private = None
            self._private_state = state["private"]
