"""metric_threshold: per host and metric, a value above its warning (or critical) threshold.

Defaults: cpu_percent > 80 (>= 95 critical), memory_percent > 85 (>= 95), disk_percent > 90
(>= 95), load_average > 4.0 (no critical level unless ``load_critical`` is set). More metrics
(any numeric field of the record) can be added with ``extra_metrics``.

One state machine per (host, metric)::

              value > warning                 breach held for ``for``
        OK ----------------------> PENDING ---------------------------> FIRING (warning
        ^  <----------------------    |                                   |     or critical)
        |     value <= warning        | (``for`` = 0: straight to FIRING) |
        +-------------------------------------------------------------------+
              value < threshold - hysteresis (5 points; 0.5 for load):  RESOLVED

    cpu_percent of web-1:  70  82  85  79  76  74  ...
                               ^ FIRE (warning)   ^ 74 < 80 - 5: RESOLVED; 79 and 76 stay firing

- Levels: the firing level follows the value up at once (warning -> critical is a new alert with
  its own fingerprint) and comes down only through hysteresis (critical -> warning resolves the
  critical alert; the warning one stays open until the value clears the warning band).
- Re-notify: while firing, a repeat of the open alert (same fingerprint, ``evidence.repeat``
  counts them) every ``renotify`` seconds of event time (default 4 h).
- Flapping: a key that changes between OK and FIRING >= ``flap_changes`` times within
  ``flap_window`` (4 in 30 min) is reported once as flapping; state changes are then tracked
  silently until the key has been stable for ``flap_window``; then the flapping alert resolves,
  and so does the open incident if the value is fine by then.
- Evaluation is per sample in arrival order. A sample that arrives out of order (older than
  the key's newest sample) updates nothing: a stale reading must not flip a state judged on a
  newer one.
"""

from __future__ import annotations

from itertools import compress
from operator import or_
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import clip, iso
from ._windows import KeyedState
from .base import Detector, Prefilter, register

_METRICS = (
    ("cpu_percent", "cpu"),
    ("memory_percent", "memory"),
    ("disk_percent", "disk"),
    ("load_average", "load"),
)


class _Key:
    __slots__ = (
        "last_ts",
        "level",
        "pending_since",
        "incident",
        "open_levels",
        "notified_at",
        "repeats",
        "changes",
        "flapping",
        "flap_incident",
        "value",
        "peak",
    )

    def __init__(self) -> None:
        self.last_ts = float("-inf")
        self.level = 0  # 0 ok, 1 warning, 2 critical
        self.pending_since: float | None = None
        self.incident: float | None = None  # start of the open incident
        self.open_levels: list[int] = []  # levels whose firing alert is open
        self.notified_at = 0.0
        self.repeats = 0
        self.changes: list[float] = []  # OK<->FIRING change times within flap_window
        self.flapping: float | None = None  # flapping since (None: not flapping)
        self.flap_incident: float | None = None
        self.value = 0.0
        self.peak = 0.0


@register
class MetricThreshold(Detector):
    kind = "metric_threshold"
    family = "host-metrics"
    severity = "medium"
    defaults = {
        "cpu_warning": 80.0,
        "cpu_critical": 95.0,
        "memory_warning": 85.0,
        "memory_critical": 95.0,
        "disk_warning": 90.0,
        "disk_critical": 95.0,
        "load_warning": 4.0,
        "load_critical": 0.0,  # 0 = no critical level
        "hysteresis": 5.0,
        "load_hysteresis": 0.5,
        "for": 0.0,
        "renotify": 4 * 3600.0,
        "flap_changes": 4,
        "flap_window": 1800.0,
        # {"gpu_percent": {"warning": 90, "critical": 98, "hysteresis": 5}, ...}
        "extra_metrics": {},
    }
    colocate = ("host",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        p = self.params
        h = float(p["hysteresis"])
        # field -> (warning, critical or None, hysteresis)
        self.rules: dict[str, tuple[float, float | None, float]] = {}
        for field, short in _METRICS:
            crit = float(p[f"{short}_critical"]) or None
            hyst = float(p["load_hysteresis"]) if short == "load" else h
            self.rules[field] = (float(p[f"{short}_warning"]), crit, hyst)
        extra = p["extra_metrics"] or {}
        if not isinstance(extra, dict):
            from ..errors import ConfigError

            raise ConfigError(
                "metric_threshold extra_metrics must map field names to "
                "{warning, critical, hysteresis}"
            )
        for field, spec in extra.items():
            from ..errors import ConfigError

            if not isinstance(spec, dict) or not isinstance(spec.get("warning"), int | float):
                raise ConfigError(
                    f"metric_threshold extra_metrics.{field} needs a numeric 'warning'",
                    hint="e.g. {warning: 90, critical: 98}",
                )
            crit = spec.get("critical")
            self.rules[str(field)] = (
                float(spec["warning"]),
                float(crit) if crit is not None else None,
                float(spec.get("hysteresis", h)),
            )
        self.for_s = float(p["for"])
        self.renotify = float(p["renotify"])
        self.flap_changes = int(p["flap_changes"])
        self.flap_window = float(p["flap_window"])
        self.state: KeyedState[tuple[str, str], _Key] = KeyedState(self.ctx.key_cap)
        self._fields = tuple(self.rules.items())

    # -- judging ---------------------------------------------------------------------------

    @staticmethod
    def _raw_level(v: float, warn: float, crit: float | None) -> int:
        if crit is not None and v >= crit:
            return 2
        return 1 if v > warn else 0

    @staticmethod
    def _held_level(v: float, current: int, warn: float, crit: float | None, h: float) -> int:
        """The level a firing key keeps while the value sits inside the hysteresis band."""
        if current == 2 and crit is not None and v > crit - h:
            return 2
        if current >= 1 and v > warn - h:
            return 1
        return 0

    def prefilter(self) -> Prefilter:
        """A sample over a metric's warning level, or of a (host, metric) not in state normal
        (it may resolve, or keep a pending or flapping count going), counting a (host,
        metric) that went over earlier in the same batch as not normal."""
        fields = self._fields
        state = self.state
        hot: set[tuple[str, str]] = set()  # over a warning level earlier in this batch

        def can_matter(data: dict[str, Any]) -> bool:
            host = data["host"]
            matters = False
            for field, rule in fields:
                v = data.get(field)
                if v is None or type(v) is bool:
                    continue
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    continue
                key = (host, field)
                if v > rule[0]:
                    hot.add(key)
                    matters = True
                elif key in state or key in hot:
                    matters = True
            return matters

        return can_matter

    def column_prefilter(self) -> Any:
        """``prefilter`` over columns, per metric: a sample over its warning level, or of a
        host over it anywhere in the batch (more than ``prefilter``'s "earlier": harmless,
        the detector passes a healthy sample of a host without state), or of a (host,
        metric) with state. None when a metric is not a contract number field (its column
        may hold what the decoder would coerce)."""
        from ..contracts import get_contract

        fields = get_contract(self.family).fields
        rules = self._fields
        if any(field not in fields or fields[field].type != "number" for field, _ in rules):
            return None
        with_state: dict[str, set[str]] = {}
        for host, field in self.state.keys():  # noqa: SIM118 (KeyedState is no iterable)
            with_state.setdefault(field, set()).add(host)

        def select(frame: Any) -> Any:
            hosts = frame.column("host")
            picked: list[bool] | None = None
            for field, rule in rules:
                values = frame.column(field)
                # every sample of a host over the level somewhere in the batch, or with state
                watched = with_state.get(field, set())
                if not _calm(values, rule[0]):
                    watched = set(compress(hosts, _over(values, rule[0]))) | watched
                if not watched:
                    continue  # (nearly every batch: a host over a level is an incident)
                part = list(map(watched.__contains__, hosts))
                picked = part if picked is None else list(map(or_, picked, part))
            return [False] * len(hosts) if picked is None else picked

        return select

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        state = self.state
        get, touch = state.get, state.touch
        fields = self._fields
        evaluations = 0
        for ev in events:
            data = ev.data
            host = data["host"]
            for field, rule in fields:
                v = data.get(field)
                if v is None or type(v) is bool:
                    continue
                if type(v) is not float:
                    try:
                        v = float(v)
                    except (TypeError, ValueError):
                        continue
                evaluations += 1
                key = (host, field)
                st = get(key)
                if st is None:
                    if v <= rule[0]:
                        continue  # healthy and never seen unhealthy: keep no state
                    st = _Key()
                touch(key, st)
                self._judge(key, st, v, rule, ev, alerts)
        self.evaluations += evaluations
        return alerts

    def _judge(
        self,
        key: tuple[str, str],
        st: _Key,
        v: float,
        rule: tuple[float, float | None, float],
        ev: Event,
        out: list[Alert],
    ) -> None:
        # ``open_levels`` lists the levels whose firing alert was sent and not yet resolved;
        # while flapping nothing is sent, and the end of flapping reconciles the two.
        ts = ev.ts
        if ts < st.last_ts:
            return
        st.last_ts = ts
        st.value = v
        warn, crit, h = rule
        raw = self._raw_level(v, warn, crit)
        cur = st.level
        if cur == 0:
            if raw == 0:
                st.pending_since = None
                self._maybe_end_flapping(key, st, ev, out)
                return
            if st.pending_since is None:
                st.pending_since = ts
            if ts - st.pending_since < self.for_s:
                return
            # OK -> FIRING
            st.level = raw
            if not st.open_levels:
                st.incident = st.pending_since
                st.peak = v
                st.repeats = 0
            st.pending_since = None
            if self._change(key, st, ev, out):
                return
            self._open(key, st, raw, ev, out)
            return
        # firing
        if v > st.peak:
            st.peak = v
        new = max(raw, self._held_level(v, cur, warn, crit, h))
        if new == cur:
            if st.flapping is None and ts - st.notified_at >= self.renotify:
                st.notified_at = ts
                st.repeats += 1
                out.append(self._alert(key, st, cur, "firing", ev, repeat=st.repeats))
            self._maybe_end_flapping(key, st, ev, out)
            return
        st.level = new
        if new == 0:  # FIRING -> OK
            if self._change(key, st, ev, out):
                return
            self._close_above(key, st, 0, ev, out)
            return
        if st.flapping is not None:
            return
        if new > cur:  # escalate: critical opens beside warning
            self._open(key, st, new, ev, out)
        else:  # critical -> warning: the critical alert resolves, warning (re)opens
            self._close_above(key, st, new, ev, out)
            self._open(key, st, new, ev, out)

    def _open(
        self, key: tuple[str, str], st: _Key, level: int, ev: Event, out: list[Alert]
    ) -> None:
        if level not in st.open_levels:
            st.open_levels.append(level)
            st.notified_at = ev.ts
            out.append(self._alert(key, st, level, "firing", ev))

    def _close_above(
        self, key: tuple[str, str], st: _Key, level: int, ev: Event, out: list[Alert]
    ) -> None:
        for lvl in sorted(st.open_levels, reverse=True):
            if lvl > level:
                out.append(self._alert(key, st, lvl, "resolved", ev))
        st.open_levels = [lvl for lvl in st.open_levels if lvl <= level]

    def _change(self, key: tuple[str, str], st: _Key, ev: Event, out: list[Alert]) -> bool:
        """Record an OK<->FIRING change; True when the key is (now) flapping."""
        ts = ev.ts
        changes = st.changes
        changes.append(ts)
        horizon = ts - self.flap_window
        while changes and changes[0] < horizon:
            del changes[0]
        if st.flapping is not None:
            return True
        if self.flap_changes > 0 and len(changes) >= self.flap_changes:
            st.flapping = ts
            st.flap_incident = changes[0]
            out.append(self._flap_alert(key, st, "firing", ev))
            return True
        return False

    def _maybe_end_flapping(
        self, key: tuple[str, str], st: _Key, ev: Event, out: list[Alert]
    ) -> None:
        if st.flapping is None:
            return
        if st.changes and ev.ts - st.changes[-1] < self.flap_window:
            return
        st.flapping = None
        st.changes = []
        out.append(self._flap_alert(key, st, "resolved", ev))
        # reconcile: resolve what is open above the current level, open the current level
        self._close_above(key, st, st.level, ev, out)
        if st.level > 0:
            self._open(key, st, st.level, ev, out)
        else:
            st.incident = None

    # -- alerts ----------------------------------------------------------------------------

    def _threshold(self, field: str, level: int) -> float:
        warn, crit, _ = self.rules[field]
        return crit if level == 2 and crit is not None else warn

    def _alert(
        self, key: tuple[str, str], st: _Key, level: int, status: str, ev: Event, repeat: int = 0
    ) -> Alert:
        host, field = key
        thr = self._threshold(field, level)
        name = "critical" if level == 2 else "warning"
        op = ">=" if level == 2 else ">"
        if status == "firing":
            title = f"{field} on {clip(host)} is {st.value:g} ({name}: {op} {thr:g})"
            body = (
                f"{field} of {clip(host)} is {st.value:g}, above the {name} threshold "
                f"{thr:g}" + (f" (still firing; repeat {repeat})" if repeat else "") + "."
            )
        else:
            title = f"{field} on {clip(host)} is back to {st.value:g} ({name} resolved)"
            body = (
                f"{field} of {clip(host)} is {st.value:g}, clear of the {name} "
                f"threshold {thr:g} by the hysteresis margin; peak {st.peak:g}."
            )
        return self.make_alert(
            key={"host": host, "metric": field},
            incident=[st.incident, name],
            event_time=ev.ts,
            title=title,
            body=body,
            status=status,
            severity="critical" if level == 2 else "medium",
            evidence={
                "value": st.value,
                "threshold": thr,
                "level": name,
                "peak": st.peak,
                "since": st.incident,
                "repeat": repeat,
                "samples": [{"timestamp": iso(ev.ts), "host": clip(host), field: st.value}],
            },
            source=ev.source(),
            labels={"host": clip(host), "metric": field, "level": name},
        )

    def _flap_alert(self, key: tuple[str, str], st: _Key, status: str, ev: Event) -> Alert:
        host, field = key
        warn = self.rules[field][0]
        if status == "firing":
            title = f"{field} on {clip(host)} is flapping around {warn:g}"
            body = (
                f"{field} of {clip(host)} changed between OK and firing "
                f"{len(st.changes)} times within {self.flap_window / 60:g} minutes; "
                f"further changes are not notified until it is stable for "
                f"{self.flap_window / 60:g} minutes."
            )
        else:
            title = f"{field} on {clip(host)} stopped flapping (now {st.value:g})"
            body = f"{field} of {clip(host)} has been stable for {self.flap_window / 60:g} minutes."
        return self.make_alert(
            key={"host": host, "metric": field},
            incident=["flapping", st.flap_incident],
            event_time=ev.ts,
            title=title,
            body=body,
            status=status,
            severity="medium",
            evidence={
                "changes": len(st.changes),
                "change_times": list(st.changes),
                "window_seconds": self.flap_window,
                "value": st.value,
            },
            source=ev.source(),
            labels={"host": clip(host), "metric": field, "flapping": "true"},
        )

    # -- housekeeping ----------------------------------------------------------------------

    def on_watermark(self, watermark: float) -> list[Alert]:
        # Forget healthy keys that have not flapped recently; firing keys stay until they
        # resolve (host_silent reports hosts that stop sending).
        if watermark < getattr(self, "_next_sweep", float("-inf")):
            return []
        self._next_sweep = watermark + self.flap_window
        for key, st in self.state.items():
            if (
                st.level == 0
                and st.flapping is None
                and st.pending_since is None
                and (not st.changes or st.changes[-1] < watermark - self.flap_window)
            ):
                self.state.pop(key)
        return []

    def snapshot(self) -> Any:
        return {
            "keys": [
                [k[0], k[1], {s: getattr(st, s) for s in _Key.__slots__}]
                for k, st in self.state.items()
            ],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        for host, field, fields in state.get("keys", []):
            st = _Key()
            for name, value in fields.items():
                if name == "last_ts" and value is None:
                    value = float("-inf")
                if name in _Key.__slots__:
                    setattr(st, name, list(value) if isinstance(value, list) else value)
            self.state.touch((host, field), st)
        self.state.evictions = int(state.get("evictions", 0))


def _calm(values: list[float | None], level: float) -> bool:
    """Whether no value (a number column, as ``_over`` takes it) is over ``level``: one
    pass in C where none is absent (no value of a frame's number column is NaN)."""
    try:
        return bool(max(values) <= level)  # type: ignore[type-var, operator]
    except (TypeError, ValueError):  # a None (absent) among them, or none at all
        return False


def _over(values: list[float | None], level: float) -> list[bool]:
    """Whether each value (a number column: floats, None where absent) is over ``level``."""
    if None in values:
        return [v is not None and v > level for v in values]
    import numpy as np

    return (np.fromiter(values, np.float64, len(values)) > level).tolist()  # type: ignore[no-any-return]
