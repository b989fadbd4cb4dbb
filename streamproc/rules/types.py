"""The rule types: what a rule does with the events its condition matches, per key.

Every rule is a Detector (``RuleDetector``) of one family, built from a ``RuleSpec``: its
condition (predicates.py) picks the events, its ``key`` fields group them (and are its
``colocate``, so repartitioning treats it as a built-in), and its type judges them in event
time. State lives in KeyedState (the key cap, LRU) and travels in checkpoints
(``snapshot``/``restore``). Both window edges are inclusive, as in windows.py.

    any                every matching event fires (``realert`` quiets a key after a fire)
    frequency          >= threshold events of a key within ``window`` (sliding)
    cardinality        >= threshold distinct values of ``field`` of a key within ``window``
    new_term           a value of ``field`` not seen for the key within ``lookback``
    change             ``field`` of a key differs from its previous value
    flatline           fewer than ``threshold`` events of a key within ``window``: a timer,
                       fired by the watermark; RESOLVED once the key has them again
    spike              a key's count in a window against the window before it, up or down
    metric_aggregation avg/min/max/sum of ``field`` in a window against min/max thresholds

spike and metric_aggregation judge tumbling windows (aligned to the epoch), each once the
watermark has passed its end::

    counts of key k:   |--- 3 ---|--- 2 ---|--- 9 ---|-> event time
                     w-2        w-1        w        ^ watermark passes the end of w:
                                                      9 >= ratio 3 x 2: spike up, FIRE
"""

from __future__ import annotations

import builtins
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from ..alerts import Alert
from ..detectors._windows import KeyedState, TimerQueue, window_add
from ..detectors.base import Detector, DetectorContext, Prefilter
from ..detectors.columns import EventBatch
from ..events import Event
from .predicates import (
    BatchMatcher,
    Node,
    Predicate,
    frame_select,
    number,
    record_predicate,
    text,
)

# -- what a rule is -------------------------------------------------------------------------

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.@-]*)\}")


@dataclass(frozen=True, slots=True)
class Template:
    """``"{count} errors for {ip_address}"``: names in braces replaced by values (no format
    spec, no attribute access: a rule file cannot reach into objects)."""

    source: str

    def names(self) -> set[str]:
        return set(_VAR.findall(self.source))

    def render(self, values: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            v = values.get(match.group(1))
            if v is None:
                return ""
            if type(v) is float:
                return f"{v:g}"
            s = text(v)
            return s if len(s) <= 256 else s[:256] + "..."

        return _VAR.sub(one, self.source)


@dataclass(slots=True)
class RuleSpec:
    """A loaded rule, ready to build detectors from (files.py and sigma.py make these)."""

    rule_id: str  # the rule's name (rule files) or Sigma id
    kind: str  # the detector kind: rule:<name> or sigma:<name>
    family: str
    type: str
    condition: Node
    key: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = "medium"
    title: Template | None = None
    body: Template | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # the file it came from
    source: str = "rules"  # rules | sigma
    display: str = ""  # a human name (a Sigma title)
    generate: bool = True  # False: only a correlation reads it, it raises no alerts itself
    sigma_fields: dict[str, str] = field(default_factory=dict)  # Sigma field -> record field
    _cls: builtins.type[RuleDetector] | None = None

    def digest(self) -> str:
        """A short hash of what the rule does: a reload replaces the detector of a rule
        whose digest changed (it is in the detector's ``params``) and keeps the others."""
        import hashlib

        def canon(x: Any) -> Any:
            if isinstance(x, frozenset | set):
                return sorted(map(repr, x))
            if isinstance(x, tuple | list):
                return [canon(i) for i in x]
            if isinstance(x, dict):
                return sorted((str(k), canon(v)) for k, v in x.items())
            if isinstance(x, RuleSpec):
                return x.rule_id + ":" + x.digest()
            if isinstance(x, re.Pattern):
                return ["re", x.pattern, x.flags]
            if hasattr(x, "__slots__") and not isinstance(x, str | int | float | bool):
                return [type(x).__name__, *(canon(getattr(x, a)) for a in x.__slots__)]
            return repr(x)

        what = [
            self.type,
            canon(self.condition),
            list(self.key),
            canon(self.params),
            self.severity,
            self.title and self.title.source,
            self.body and self.body.source,
            canon(self.labels),
            canon(self.annotations),
            self.generate,
            self.family,
        ]
        return hashlib.blake2b(repr(what).encode(), digest_size=6).hexdigest()

    def summary(self) -> str:
        """``frequency key=ip_address threshold=20 window=300 #0c000ac2d53c``"""
        shown = [self.type]
        if self.key:
            shown.append(f"key={','.join(self.key)}")
        for name, value in sorted(self.params.items()):
            if name == "refs":
                value = ",".join(r.rule_id for r in value)
            if value is not None:
                shown.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
        return " ".join(shown) + f" #{self.digest()}"

    def detector_class(self) -> builtins.type[RuleDetector]:
        """The Detector class of this rule (made once): kind, family, colocate its own."""
        if self._cls is None:
            base = RULE_TYPES[self.type]
            colocate = base.colocation(self)
            self._cls = type(
                f"Rule[{self.kind}]",
                (base,),
                {
                    "kind": self.kind,
                    "family": self.family,
                    "severity": self.severity,
                    "colocate": colocate,
                    "spec": self,
                    "defaults": {},
                },
            )
        return self._cls


# -- keys -----------------------------------------------------------------------------------


def pack_key(values: list[Any]) -> str:
    """One string for a key's values: the value's text for one field, else each value
    length-prefixed (so any text, separators included, unpacks to what it was)."""
    if len(values) == 1:
        v = values[0]
        return "" if v is None else text(v)
    return "".join(f"{len(t)}:{t}" for t in ("" if v is None else text(v) for v in values))


def unpack_key(packed: str, n: int) -> list[str]:
    if n == 1:
        return [packed]
    out = []
    rest = packed
    for _ in range(n):
        size, _, rest = rest.partition(":")
        out.append(rest[: int(size)])
        rest = rest[int(size) :]
    return out


# -- the base -------------------------------------------------------------------------------


class RuleDetector(Detector):
    """A rule as a detector. Subclasses judge the events the condition matched (``judge``)."""

    spec: ClassVar[RuleSpec]
    needs_field: ClassVar[bool] = False
    timer_driven: ClassVar[bool] = False

    def __init__(
        self, params: dict[str, Any] | None = None, ctx: DetectorContext | None = None
    ) -> None:
        super().__init__(params, ctx)
        spec = self.spec
        # what the rule is and which version (check-config shows it; reload compares it)
        self.params = {**self.params, "rule": spec.summary()}
        self.match: Predicate = record_predicate(spec.condition)
        self.matcher: BatchMatcher | None = None
        self.slot = 0
        self.key_fields = spec.key
        p = spec.params
        self.window = float(p.get("window", 0.0))
        self.threshold = p.get("threshold", 1)
        self.field_name: str | None = p.get("field")
        self.realert = float(p.get("realert", self.window))
        self.quiet: dict[str, float] = {}
        self.firings = 0

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        # "rule" is the digest this class puts in its params (a reload passes them back)
        return super().resolve_params({k: v for k, v in params.items() if k != "rule"})

    @classmethod
    def colocation(cls, spec: RuleSpec) -> tuple[str, ...] | None:
        return spec.key or None

    def share(self, matcher: BatchMatcher) -> None:
        """Judge batches through ``matcher``, shared with the engine's other rules."""
        self.slot = matcher.add(self.spec.condition)
        self.matcher = matcher

    def prefilter(self) -> Prefilter:
        return self.match

    #: the shared matcher reads the batch's columns, and makes Events of the records a
    #: condition's fields may match alone: a binding with rules is judged from its columns
    reads_columns = True

    #: A rule judges only the records its condition matches, and each alert comes from those
    #: (a window, a count, the values seen, a quiet time, all in their event times): re-keyed,
    #: it is shipped only those. Not so for a type whose state a watermark clears in a way an
    #: alert can tell (new_term forgets a key, and a key's first value is learnt, not
    #: reported) or that fires on a watermark (flatline, spike, metric_aggregation): the
    #: watermark of a repartition topic's task moves with the records it receives.
    prefilter_reads_record_only = True

    def ship_column_prefilter(self) -> Any:
        # (its ``column_prefilter`` stays None: a batch's rules share one matcher instead)
        return frame_select(self.spec.condition)

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        if self.matcher is None:
            return self.process(batch.events)
        picked = self.matcher.matches(batch)[self.slot]
        if not picked:
            return []
        return self._judged(batch.events_at(picked))

    def process(self, events: list[Event]) -> list[Alert]:
        match = self.match
        return self._judged([ev for ev in events if match(ev.data)])

    def _judged(self, events: list[Event]) -> list[Alert]:
        if not events:
            return []
        self.evaluations += len(events)
        return self.judge(events)

    def judge(self, events: list[Event]) -> list[Alert]:
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------

    def valued(self, events: list[Event]) -> Iterator[tuple[Event, str, str]]:
        """(event, key, value as text) of the events with a value in the rule's field."""
        name = self.field_name
        key_of = self.key_of
        for ev in events:
            value = ev.data.get(name)  # type: ignore[arg-type]
            if value is not None:
                yield ev, key_of(ev.data), text(value)

    def key_of(self, data: dict[str, Any]) -> str:
        fields = self.key_fields
        if not fields:
            return ""
        if len(fields) == 1:
            v = data.get(fields[0])
            return "" if v is None else text(v)
        return pack_key([data.get(f) for f in fields])

    def key_dict(self, packed: str) -> dict[str, Any]:
        fields = self.key_fields
        return dict(zip(fields, unpack_key(packed, len(fields)), strict=True)) if fields else {}

    def quieted(self, key: str, ts: float) -> bool:
        """Whether ``key`` is in its quiet time after a fire; if not, start one at ``ts``."""
        until = self.quiet.get(key)
        if until is not None and ts < until:
            return True
        if self.realert > 0:
            self.quiet[key] = ts + self.realert
        return False

    def drop_quiet(self, watermark: float) -> None:
        quiet = self.quiet
        for key in [k for k, until in quiet.items() if until < watermark]:
            del quiet[key]

    def alert(
        self,
        *,
        key: str,
        incident: Any,
        event_time: float,
        default_title: str,
        values: dict[str, Any],
        evidence: dict[str, Any],
        ev: Event | None = None,
        status: str = "firing",
    ) -> Alert:
        spec = self.spec
        keyed = self.key_dict(key)
        names: dict[str, Any] = {}
        if ev is not None:
            names.update(ev.data)
        names.update(keyed)
        names.update(values)
        names["rule"] = spec.display or spec.rule_id
        names["window"] = self.window
        title = spec.title.render(names) if spec.title else default_title
        body = spec.body.render(names) if spec.body else ""
        evidence = {"rule": spec.rule_id, "type": spec.type, **evidence}
        if spec.annotations:
            evidence["annotations"] = {
                k: Template(v).render(names) for k, v in spec.annotations.items()
            }
        self.firings += 1
        return self.make_alert(
            key=keyed,
            incident=incident,
            event_time=event_time,
            title=title,
            body=body,
            status=status,
            evidence=evidence,
            source=ev.source() if ev is not None else {},
            labels={"rule": spec.rule_id, "rule_source": spec.source, **spec.labels},
        )

    def snapshot(self) -> Any:
        # the type travels with the state: a reload that changes a rule's type starts it
        # afresh instead of reading another type's state
        return {"type": self.spec.type, "state": self.state_snapshot()}

    def restore(self, state: Any) -> None:
        if isinstance(state, dict) and state.get("type") == self.spec.type:
            self.state_restore(state.get("state") or {})

    def state_snapshot(self) -> Any:
        return None

    def state_restore(self, state: Any) -> None:
        pass

    def base_snapshot(self) -> dict[str, Any]:
        return {"quiet": [[k, t] for k, t in self.quiet.items()]}

    def base_restore(self, state: dict[str, Any]) -> None:
        for k, t in state.get("quiet", []):
            self.quiet[k] = float(t)


def _digest(data: dict[str, Any]) -> str:
    """An event's identity that replay and Kafka agree on (its fields, not its offset)."""
    import hashlib

    return hashlib.blake2b(
        orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str), digest_size=8
    ).hexdigest()


# -- any --------------------------------------------------------------------------------------


class AnyRule(RuleDetector):
    """Every matching event fires; with ``realert`` a key fires at most once per that long."""

    @classmethod
    def colocation(cls, spec: RuleSpec) -> tuple[str, ...] | None:
        # without a quiet time it keeps no state: any partitioning suits it
        return (spec.key or None) if spec.params.get("realert", 0) else None

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.realert = float(self.spec.params.get("realert", 0.0))

    def judge(self, events: list[Event]) -> list[Alert]:
        if not self.spec.generate:
            return []
        out = []
        realert = self.realert
        for ev in events:
            key = self.key_of(ev.data)
            if realert and self.quieted(key, ev.ts):
                continue
            title = self.spec.display or self.spec.rule_id
            out.append(
                self.alert(
                    key=key,
                    incident=(ev.ts, _digest(ev.data)),
                    event_time=ev.ts,
                    default_title=title,
                    values={},
                    evidence={"event": ev.data},
                    ev=ev,
                )
            )
        return out

    def on_watermark(self, watermark: float) -> list[Alert]:
        if self.quiet:
            self.drop_quiet(watermark)
        return []

    def state_snapshot(self) -> Any:
        return self.base_snapshot()

    def state_restore(self, state: Any) -> None:
        self.base_restore(state or {})


# -- frequency --------------------------------------------------------------------------------


class FrequencyRule(RuleDetector):
    """>= threshold events of a key within the window ending at one of them::

        key k:  --x----x--x---x----x--------> event time
                  |<------ window ------>|
                                     ^ 5th within the window: FIRE, then quiet for realert

    A key keeps its newest 2 x threshold times, enough to decide a late event exactly (as
    brute_force does)."""

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.threshold = max(1, int(self.threshold))
        self.cap = 2 * self.threshold
        self.state: KeyedState[str, list[float]] = KeyedState(self.ctx.key_cap)

    def judge(self, events: list[Event]) -> list[Alert]:
        out = []
        window, threshold, cap = self.window, self.threshold, self.cap
        state = self.state
        for ev in events:
            key = self.key_of(ev.data)
            ts = ev.ts
            times = state.get(key)
            if times is None:
                times = []
            state.touch(key, times)
            window_add(times, ts)
            if len(times) > cap:
                del times[: len(times) - cap]
            newest = times[-1]
            if times[0] < newest - window:
                del times[: bisect_left(times, newest - window)]
            # the window ending at this event, and (late events) the one ending at the newest
            lo, hi = bisect_left(times, ts - window), bisect_right(times, ts)
            decided = ts
            if hi - lo < threshold:
                lo, hi, decided = bisect_left(times, newest - window), len(times), newest
                if hi - lo < threshold:
                    continue
            if self.quieted(key, decided):
                continue
            first = times[lo]
            out.append(
                self.alert(
                    key=key,
                    incident=first,
                    event_time=decided,
                    default_title=f"{self.spec.display or self.spec.rule_id}: {hi - lo} events "
                    f"within {self.window:g} s",
                    values={"count": hi - lo, "threshold": threshold},
                    evidence={
                        "count": hi - lo,
                        "threshold": threshold,
                        "first_seen": first,
                        "window_seconds": window,
                    },
                    ev=ev,
                )
            )
        return out

    def on_watermark(self, watermark: float) -> list[Alert]:
        horizon = watermark - self.window
        for key, times in self.state.items():
            if times[-1] < horizon:
                self.state.pop(key)
        self.drop_quiet(watermark)
        return []

    def state_snapshot(self) -> Any:
        return {**self.base_snapshot(), "keys": [[k, v] for k, v in self.state.items()]}

    def state_restore(self, state: Any) -> None:
        self.base_restore(state)
        for key, times in state.get("keys", []):
            self.state.touch(key, [float(t) for t in times])


# -- cardinality ------------------------------------------------------------------------------


class CardinalityRule(RuleDetector):
    """>= threshold distinct values of ``field`` for a key within the window ending at an
    event. A key keeps each value's latest time, at most 2 x threshold values (the newest)."""

    needs_field = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.threshold = max(1, int(self.threshold))
        self.cap = max(2 * self.threshold, 2)
        self.state: KeyedState[str, dict[str, float]] = KeyedState(self.ctx.key_cap)

    def judge(self, events: list[Event]) -> list[Alert]:
        out = []
        name, window, threshold = self.field_name, self.window, self.threshold
        state = self.state
        for ev, key, value in self.valued(events):
            ts = ev.ts
            seen = state.get(key)
            if seen is None:
                seen = {}
            state.touch(key, seen)
            if seen.get(value, -math.inf) < ts:
                seen[value] = ts
            newest = max(seen.values())
            for v in [v for v, t in seen.items() if t < newest - window]:
                del seen[v]
            if len(seen) > self.cap:
                for v, _ in sorted(seen.items(), key=lambda item: item[1])[: len(seen) - self.cap]:
                    del seen[v]
            within = sorted((t, v) for v, t in seen.items() if ts - window <= t <= ts)
            decided = ts
            if len(within) < threshold:
                within = sorted((t, v) for v, t in seen.items() if t >= newest - window)
                decided = newest
                if len(within) < threshold:
                    continue
            if self.quieted(key, decided):
                continue
            values = [v for _, v in within]
            out.append(
                self.alert(
                    key=key,
                    incident=within[0][0],
                    event_time=decided,
                    default_title=f"{self.spec.display or self.spec.rule_id}: {len(values)} "
                    f"distinct {name} within {window:g} s",
                    values={
                        "count": len(values),
                        "threshold": threshold,
                        "values": ", ".join(values[:10]),
                    },
                    evidence={
                        "distinct": len(values),
                        "threshold": threshold,
                        "values": values[:20],
                        "window_seconds": window,
                    },
                    ev=ev,
                )
            )
        return out

    def on_watermark(self, watermark: float) -> list[Alert]:
        horizon = watermark - self.window
        for key, seen in self.state.items():
            if max(seen.values(), default=-math.inf) < horizon:
                self.state.pop(key)
        self.drop_quiet(watermark)
        return []

    def state_snapshot(self) -> Any:
        return {
            **self.base_snapshot(),
            "keys": [[k, [[v, t] for v, t in seen.items()]] for k, seen in self.state.items()],
        }

    def state_restore(self, state: Any) -> None:
        self.base_restore(state)
        for key, seen in state.get("keys", []):
            self.state.touch(key, {v: float(t) for v, t in seen})


# -- new_term ---------------------------------------------------------------------------------


class NewTermRule(RuleDetector):
    """A value of ``field`` that the key has not had within ``lookback`` (default 30 days).
    A key's first value is learnt, not reported (nothing is known of it before), unless
    ``first_value_alerts``; the (key, value) pairs held are bounded by the key cap."""

    needs_field = True
    # its watermark forgets a key, whose next value is then learnt, not reported: shipped
    # only matches, a re-keyed task's watermark (moved by those alone) would forget later
    prefilter_reads_record_only = False

    @classmethod
    def colocation(cls, spec: RuleSpec) -> tuple[str, ...] | None:
        return spec.key or (spec.params["field"],)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.lookback = float(self.spec.params.get("lookback", 30 * 86400.0))
        self.first_value_alerts = bool(self.spec.params.get("first_value_alerts", False))
        self.realert = 0.0
        self.state: KeyedState[str, float] = KeyedState(self.ctx.key_cap)  # (key, value) -> last
        self.keys: KeyedState[str, float] = KeyedState(self.ctx.key_cap)  # key -> last seen

    def judge(self, events: list[Event]) -> list[Alert]:
        out = []
        name = self.field_name
        state, keys = self.state, self.keys
        for ev, key, value in self.valued(events):
            pair = pack_key([key, value])
            ts = ev.ts
            last = state.get(pair)
            known = keys.get(key)
            state.touch(pair, ts if last is None else max(last, ts))
            keys.touch(key, ts if known is None else max(known, ts))
            if last is not None and ts - last <= self.lookback:
                continue
            if known is None and not self.first_value_alerts:
                continue
            out.append(
                self.alert(
                    key=key,
                    incident=(value, ts),
                    event_time=ts,
                    default_title=f"{self.spec.display or self.spec.rule_id}: new {name} {value!r}",
                    values={"value": value, "field": name},
                    evidence={
                        "field": name,
                        "value": value,
                        "previously_seen": last,
                        "lookback_seconds": self.lookback,
                    },
                    ev=ev,
                )
            )
        return out

    def on_watermark(self, watermark: float) -> list[Alert]:
        horizon = watermark - self.lookback
        for store in (self.state, self.keys):
            for k, t in store.items():
                if t < horizon:
                    store.pop(k)
        return []

    def state_size(self) -> int:
        return len(self.state)

    def state_snapshot(self) -> Any:
        return {
            "pairs": [[k, t] for k, t in self.state.items()],
            "keys": [[k, t] for k, t in self.keys.items()],
        }

    def state_restore(self, state: Any) -> None:
        for k, t in state.get("pairs", []):
            self.state.touch(k, float(t))
        for k, t in state.get("keys", []):
            self.keys.touch(k, float(t))


# -- change -----------------------------------------------------------------------------------


class ChangeRule(RuleDetector):
    """``field`` of a key differs from the key's previous value (by event time; a value
    that is missing is not a change). With ``window`` > 0, only a change within that long of
    the previous value counts. A late event older than the key's latest is not compared."""

    needs_field = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.realert = 0.0
        self.state: KeyedState[str, tuple[str, float]] = KeyedState(self.ctx.key_cap)

    def judge(self, events: list[Event]) -> list[Alert]:
        out = []
        name, window = self.field_name, self.window
        state = self.state
        for ev, key, value in self.valued(events):
            ts = ev.ts
            prev = state.get(key)
            if prev is not None and ts < prev[1]:
                continue
            state.touch(key, (value, ts))
            if prev is None or prev[0] == value or (window > 0 and ts - prev[1] > window):
                continue
            out.append(
                self.alert(
                    key=key,
                    incident=(prev[0], value, ts),
                    event_time=ts,
                    default_title=f"{self.spec.display or self.spec.rule_id}: {name} changed "
                    f"from {prev[0]!r} to {value!r}",
                    values={"old": prev[0], "new": value, "field": name},
                    evidence={"field": name, "old": prev[0], "new": value, "old_seen": prev[1]},
                    ev=ev,
                )
            )
        return out

    def on_watermark(self, watermark: float) -> list[Alert]:
        if self.window > 0:
            for key, (_, t) in self.state.items():
                if t < watermark - self.window:
                    self.state.pop(key)
        return []

    def state_snapshot(self) -> Any:
        return {"keys": [[k, v, t] for k, (v, t) in self.state.items()]}

    def state_restore(self, state: Any) -> None:
        for k, v, t in state.get("keys", []):
            self.state.touch(k, (v, float(t)))


# -- flatline ---------------------------------------------------------------------------------


class _Flat:
    __slots__ = ("first", "times", "deadline", "flat_since")

    def __init__(self, first: float) -> None:
        self.first = first
        self.times: list[float] = []
        self.deadline = 0.0
        self.flat_since: float | None = None


class FlatlineRule(RuleDetector):
    """Fewer than ``threshold`` events of a key within the window, decided by the watermark::

        key k:  --x--x--x-------------------------------x-----> event time
                       |<--------- window --------->|   ^ has them again: RESOLVED
                 N-th newest event                  deadline: FIRE once the watermark is there

    A key is watched from its first event (a key never seen cannot go quiet). Its deadline is
    the threshold-th newest time plus the window (its first time plus the window while it has
    fewer): at the deadline the window holds fewer than threshold events. The alert's time is
    the deadline, and an event past the deadline that arrives before the watermark passed it
    reports the silence first: batching does not change the alerts."""

    timer_driven = True
    prefilter_reads_record_only = False  # (it fires on the watermark)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.threshold = max(1, int(self.threshold))
        self.state: KeyedState[str, _Flat] = KeyedState(self.ctx.key_cap)
        self.timers: TimerQueue[str] = TimerQueue()

    def _deadline(self, st: _Flat) -> float:
        n = self.threshold
        base = st.times[-n] if len(st.times) >= n else st.first
        return base + self.window

    def judge(self, events: list[Event]) -> list[Alert]:
        out = []
        state = self.state
        for ev in events:
            key = self.key_of(ev.data)
            ts = ev.ts
            st = state.get(key)
            if st is None:
                st = _Flat(ts)
            state.touch(key, st)
            if st.flat_since is None and st.deadline and ts > st.deadline:
                # its deadline passed before this event, and no watermark has said so yet
                # (both in one batch): the silence is reported all the same, at its time
                st.flat_since = st.deadline
                out.append(self._alert(key, st.deadline, st.deadline, "firing"))
            st.first = min(st.first, ts)
            window_add(st.times, ts)
            if len(st.times) > self.threshold:
                del st.times[: len(st.times) - self.threshold]
            deadline = self._deadline(st)
            if (
                st.flat_since is not None
                and len(st.times) >= self.threshold
                and st.times[-1] - st.times[-self.threshold] <= self.window
            ):
                since, st.flat_since = st.flat_since, None
                out.append(self._alert(key, since, ts, "resolved", ev))
            if deadline != st.deadline:
                st.deadline = deadline
                if st.flat_since is None:
                    self.timers.arm(deadline, key)
        return out

    def _alert(
        self, key: str, since: float, at: float, status: str, ev: Event | None = None
    ) -> Alert:
        word = "quiet" if status == "firing" else "back"
        return self.alert(
            key=key,
            incident=since,
            event_time=at,
            default_title=f"{self.spec.display or self.spec.rule_id}: {word} (fewer than "
            f"{self.threshold} events within {self.window:g} s)"
            if status == "firing"
            else f"{self.spec.display or self.spec.rule_id}: events again",
            values={"threshold": self.threshold},
            evidence={
                "threshold": self.threshold,
                "window_seconds": self.window,
                "quiet_since": since,
            },
            ev=ev,
            status=status,
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        out = []
        for when, key in self.timers.due(watermark):
            st = self.state.get(key)
            if st is None or st.deadline != when or st.flat_since is not None:
                continue
            st.flat_since = when
            out.append(self._alert(key, when, when, "firing"))
        return out

    def state_snapshot(self) -> Any:
        return {
            "keys": [
                [k, st.first, st.times, st.deadline, st.flat_since] for k, st in self.state.items()
            ]
        }

    def state_restore(self, state: Any) -> None:
        for k, first, times, deadline, flat_since in state.get("keys", []):
            st = _Flat(float(first))
            st.times = [float(t) for t in times]
            st.deadline = float(deadline)
            st.flat_since = flat_since
            self.state.touch(k, st)
            if flat_since is None:
                self.timers.arm(st.deadline, k)


# -- tumbling windows: spike, metric_aggregation --------------------------------------------


class _Tumbling(RuleDetector):
    """Per key, per tumbling window (index = floor(ts / window)): an accumulator; each window
    is judged once the watermark reaches its end (``judge_window``)."""

    timer_driven = True
    prefilter_reads_record_only = False  # (it fires on the watermark)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.state: KeyedState[str, dict[int, list[float]]] = KeyedState(self.ctx.key_cap)
        self.judged_upto: int | None = None  # windows below this index are judged

    def add(self, acc: list[float] | None, ev: Event) -> list[float] | None:
        raise NotImplementedError

    def judge(self, events: list[Event]) -> list[Alert]:
        window = self.window
        state = self.state
        for ev in events:
            index = int(ev.ts // window)
            if self.judged_upto is not None and index < self.judged_upto:
                continue  # behind the watermark: cannot happen through an engine
            key = self.key_of(ev.data)
            buckets = state.get(key)
            if buckets is None:
                buckets = {}
            state.touch(key, buckets)
            acc = self.add(buckets.get(index), ev)
            if acc is not None:
                buckets[index] = acc
        return []

    def on_watermark(self, watermark: float) -> list[Alert]:
        if not math.isfinite(watermark):
            return []
        closed = int(watermark // self.window)  # windows below this have ended
        start = self.judged_upto
        if start is None:
            start = min((min(b) for _, b in self.state.items() if b), default=closed)
        if closed <= start:
            return []
        out: list[Alert] = []
        for key, buckets in self.state.items():
            # every window from ``start`` that this key has data in or right after
            indices = {i for i in buckets if start <= i < closed}
            indices |= {i + 1 for i in buckets if start <= i + 1 < closed}
            for index in sorted(indices):
                alert = self.judge_window(key, index, buckets)
                if alert is not None:
                    out.append(alert)
            for i in [i for i in buckets if i < closed - 1]:
                del buckets[i]
            if not buckets:
                self.state.pop(key)
        self.judged_upto = closed
        return out

    def judge_window(self, key: str, index: int, buckets: dict[int, list[float]]) -> Alert | None:
        raise NotImplementedError

    def state_snapshot(self) -> Any:
        return {
            "upto": self.judged_upto,
            "keys": [[k, [[i, acc] for i, acc in b.items()]] for k, b in self.state.items()],
        }

    def state_restore(self, state: Any) -> None:
        self.judged_upto = state.get("upto")
        for k, buckets in state.get("keys", []):
            self.state.touch(k, {int(i): list(acc) for i, acc in buckets})


class SpikeRule(_Tumbling):
    """A key's count in a window against the window before: up when current >= ratio x
    reference, down when current <= reference / ratio (``direction``: up, down, both), with
    at least ``min_reference`` events before (and ``min_current`` now, for up)."""

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        p = self.spec.params
        self.ratio = float(p.get("ratio", 3.0))
        self.direction = p.get("direction", "both")
        self.min_reference = int(p.get("min_reference", 1))
        self.min_current = int(p.get("min_current", 1))

    def add(self, acc: list[float] | None, ev: Event) -> list[float]:
        if acc is None:
            return [1.0]
        acc[0] += 1
        return acc

    def judge_window(self, key: str, index: int, buckets: dict[int, list[float]]) -> Alert | None:
        cur = int(buckets.get(index, [0])[0])
        ref = int(buckets.get(index - 1, [0])[0])
        if ref < self.min_reference:
            return None
        up = cur >= self.min_current and cur >= self.ratio * ref
        down = cur <= ref / self.ratio
        way = (
            "up"
            if up and self.direction in ("up", "both")
            else "down"
            if down and self.direction in ("down", "both")
            else None
        )
        if way is None:
            return None
        end = (index + 1) * self.window
        return self.alert(
            key=key,
            incident=(way, index),
            event_time=end,
            default_title=f"{self.spec.display or self.spec.rule_id}: spike {way} ({ref} -> "
            f"{cur} events per {self.window:g} s)",
            values={"count": cur, "reference": ref, "direction": way},
            evidence={
                "direction": way,
                "current": cur,
                "reference": ref,
                "ratio": self.ratio,
                "window_start": index * self.window,
                "window_seconds": self.window,
            },
        )


class MetricAggregationRule(_Tumbling):
    """``metric`` (avg, min, max, sum, count) of ``field`` over a key's window, against
    ``max_threshold`` (above fires) and ``min_threshold`` (below fires). A value that is not a
    number is not counted."""

    needs_field = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        p = self.spec.params
        self.metric: str = p.get("metric", "avg")
        self.max_threshold = p.get("max_threshold")
        self.min_threshold = p.get("min_threshold")
        self.skipped = 0

    def add(self, acc: list[float] | None, ev: Event) -> list[float] | None:
        value = number(ev.data.get(self.field_name))  # type: ignore[arg-type]
        if value is None or not math.isfinite(value):
            self.skipped += 1
            return acc
        if acc is None:
            return [1.0, value, value, value]
        acc[0] += 1
        acc[1] += value
        acc[2] = min(acc[2], value)
        acc[3] = max(acc[3], value)
        return acc

    def judge_window(self, key: str, index: int, buckets: dict[int, list[float]]) -> Alert | None:
        acc = buckets.get(index)
        if acc is None:
            return None
        count, total, low, high = acc
        value = {"avg": total / count, "sum": total, "min": low, "max": high, "count": count}[
            self.metric
        ]
        above = self.max_threshold is not None and value > self.max_threshold
        below = self.min_threshold is not None and value < self.min_threshold
        if not (above or below):
            return None
        way = "above" if above else "below"
        limit = self.max_threshold if above else self.min_threshold
        return self.alert(
            key=key,
            incident=(way, index),
            event_time=(index + 1) * self.window,
            default_title=f"{self.spec.display or self.spec.rule_id}: {self.metric}("
            f"{self.field_name}) {value:g} {way} {limit:g}",
            values={"value": value, "metric": self.metric, "threshold": limit},
            evidence={
                "metric": self.metric,
                "field": self.field_name,
                "value": value,
                "threshold": limit,
                "count": int(count),
                "window_start": index * self.window,
                "window_seconds": self.window,
            },
        )


RULE_TYPES: dict[str, type[RuleDetector]] = {
    "any": AnyRule,
    "frequency": FrequencyRule,
    "cardinality": CardinalityRule,
    "new_term": NewTermRule,
    "change": ChangeRule,
    "flatline": FlatlineRule,
    "spike": SpikeRule,
    "metric_aggregation": MetricAggregationRule,
}
