"""The Alert type and its fingerprint.

An alert is what a detector decides; it is appended to the durable alert log before the source
offsets that produced it are committed, and notify/ delivers it from there.

Fingerprint: a stable hash of (kind, key, incident start). The same incident found by another
process or in a replay of the same data has the same fingerprint; the firing and resolved
alerts of one incident share it, so notify/ can route a resolve to where the firing went and
dedup either against its notification log.

Size. Much of an alert is copied from records (usernames, user agents, samples), and records
are written by whoever can write to a topic. So every value an alert copies is cut to
``max_value_bytes`` (lists to ``max_items``) and the encoded alert as a whole to ``max_bytes``
(``alerts:`` in the config; 1 KiB and 64 KiB by default), marked ``...[cut N bytes]`` where it
was cut, and the alert names what was cut in ``truncated`` (dotted paths, list positions
left out). The fingerprint is computed before any cut, from the whole key: two incidents whose
keys differ only past the cut stay two incidents, and a resolve still finds its firing.

Every alert passes ``cap_alert`` in the ``DetectorEngine`` that ran its detector, so an alert
a detector built with ``Alert(...)`` rather than ``make_alert`` is cut the same way before it
reaches the alert log or a replay's output. Such an alert can hold what ``make_alert`` never
builds (hundreds of long names, values of no JSON type, a fingerprint of any length): values of
another type count by their JSON text, a fingerprint over 64 characters is replaced by a hash
of it, and when cutting values is not enough, evidence and source go, then all but a few short
values of the key and labels: no alert is written above ``max_bytes``.

Cost. Most alerts are far within their limits, and the check that proves it runs on every
alert, once, in the engine (``make_alert`` does not cut: a detector may still change what it
made). ``cap_alert`` encodes the alert (orjson) and, when that encoding is no longer than one
value may be (``_short``: 94% of the cicd and support alerts of the detect stream), needs no
look at a string, only at each container's items and the depth; otherwise it walks the alert
(``_within``: each value's type and length, each list's items, the depth, and a bound on the
whole, taken from the length of the encoding rather than by counting characters).
Measured with callgrind on the ``make_alert`` calls of the detect scenario's 300,000-event
stream for the cicd-events and support-tickets detectors (12,751 alerts of ~0.7-1.5 KB,
replayed), when make_alert still cut and sealed its alert by its encoding for the engine to
compare: 92,600 CPU instructions an alert (111,400 with the walk alone), of which ``_short``
~25,000 against the walk's ~46,000, each encoding ~16,000, and building the alert (the
fingerprint's hash ~12,600, the labels) the rest. Cutting once, in the engine, saves the
second encoding and the comparison: the cicd and support records of the detect stream
through the Judge, 195,200 -> 175,500 instructions a record (~1.1 alerts each).
Scanning the encoded bytes for the items and the depth instead (``bytes.count`` of commas and
brackets, ~8,000 instructions each for 800 bytes) or testing a container's value types in C
(``isdisjoint(map(type, ...))``) costs no less than the loop over its values. Checking the
encoded bytes for every limit (orjson, then marshal for exact types and a scan per limit)
costs more than the walk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
STATUSES = ("firing", "resolved")

# Which detector families count as "security" for routing (notify/ uses this).
CATEGORY_BY_FAMILY = {
    "auth-logs": "security",
    "api-access-logs": "security",
    "host-metrics": "infrastructure",
    "cicd-events": "delivery",
    "support-tickets": "support",
    "business-metrics": "business",
}


DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_MAX_VALUE_BYTES = 1024
DEFAULT_MAX_ITEMS = 100
_MAX_DEPTH = 16  # evidence is a few levels deep; anything deeper is cut whole
_MAX_TRUNCATED = 32  # paths named in ``truncated``
_MAX_PATH = 96  # characters of one of them
_MAX_FINGERPRINT = 64  # characters: the alert log's Kafka key
_IDENTITY = ("kind", "severity", "status", "family", "audience")  # short strings, normally
_SCALARS = (int, float, bool, type(None))
_NESTED = (dict, list, tuple)
_EXACT_TYPES = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
_CUT_MARK = re.compile(r"\.\.\.\[cut \d+ bytes\]\Z")
_CONTAINERS = frozenset(_NESTED)  # (a set's lookup costs less than a tuple's)


@dataclass(frozen=True, slots=True)
class AlertLimits:
    """How large an alert may grow (see the module docstring)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_items: int = DEFAULT_MAX_ITEMS


def fingerprint(kind: str, key: dict[str, Any], incident: Any = None) -> str:
    """16 hex chars of SHA-256 over the canonical JSON of (kind, key, incident)."""
    payload = orjson.dumps([kind, key, incident], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:16]


@dataclass(slots=True)
class Alert:
    kind: str
    severity: str
    status: str
    key: dict[str, Any]
    fingerprint: str
    event_time: float
    title: str
    body: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    family: str = ""
    # "internal" for the team; "customer" for notices meant for the customer (tickets).
    audience: str = "internal"
    # what was cut to keep the alert within its limits (see AlertLimits); empty: nothing
    truncated: list[str] = field(default_factory=list)

    @property
    def category(self) -> str:
        return CATEGORY_BY_FAMILY.get(self.family, "other")

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "event_time": self.event_time,
            "title": self.title,
            "body": self.body,
            "labels": self.labels,
            "evidence": self.evidence,
            "source": self.source,
            "family": self.family,
            "audience": self.audience,
        }
        if self.truncated:
            out["truncated"] = self.truncated
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        # the fields in order, not by name (the delivery side reads every alert back: about
        # 5,000 of its 55,000 CPU instructions a 1 KB alert)
        return cls(
            d["kind"],
            d["severity"],
            d["status"],
            d.get("key") or {},
            d["fingerprint"],
            float(d["event_time"]),
            d.get("title", ""),
            d.get("body", ""),
            d.get("labels") or {},
            d.get("evidence") or {},
            d.get("source") or {},
            d.get("family", ""),
            d.get("audience", "internal"),
            list(d.get("truncated") or ()),
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Alert:
        return cls.from_dict(orjson.loads(raw))


# -- keeping an alert within its limits --------------------------------------------------------


def cap_alert(alert: Alert, limits: AlertLimits) -> Alert:
    """Cut ``alert`` in place to ``limits`` and return it; ``alert.truncated`` says what was
    cut. Values first (each copied value to ``max_value_bytes``), then, while the encoded
    alert is still over ``max_bytes``, whole evidence entries (largest first), the body, the
    title, the key's values and finally (a hand-built alert) all but what routes it.

    An alert within its limits is returned as it is, found so from its encoding (``_short``,
    else ``_within`` bounded by the encoding's length): what ``_cut`` would return unchanged,
    containers of the same type."""
    # encoded first: its length bounds all the strings together
    form = _encoded_form(alert)
    if (form is not None and _short(alert, limits, form)) or _within(alert, limits, form):
        return alert
    return _cut(alert, limits)


def _cut(alert: Alert, limits: AlertLimits) -> Alert:
    """``cap_alert``'s cut, for an alert that may be over its limits."""
    cut: list[str] = []
    before = [p if type(p) is str else str(p) for p in alert.truncated[:_MAX_TRUNCATED]]
    cap = _Capper(limits, cut)
    for attr in _IDENTITY:
        value = getattr(alert, attr)
        setattr(alert, attr, cap.value(value if type(value) is str else str(value), attr))
    fp = alert.fingerprint
    if type(fp) is not str or len(fp) > _MAX_FINGERPRINT:
        alert.fingerprint = hashlib.sha256(str(fp).encode("utf-8", "surrogatepass")).hexdigest()[
            :16
        ]
        cut.append("fingerprint")
    if type(alert.event_time) not in (int, float):
        try:
            alert.event_time = float(alert.event_time)
        except (TypeError, ValueError):
            alert.event_time = 0.0
            cut.append("event_time")
    alert.key = cap.value(alert.key, "key")
    alert.labels = cap.value(alert.labels, "labels")
    alert.evidence = cap.value(alert.evidence, "evidence")
    alert.source = cap.value(alert.source, "source")
    for attr in ("title", "body"):
        value = getattr(alert, attr)
        setattr(alert, attr, cap.value(value if type(value) is str else str(value), attr))

    def encoded() -> int:
        """The encoded size, with ``truncated`` naming what was cut so far."""
        merged = dict.fromkeys(
            p if len(p) <= _MAX_PATH else f"{p[:_MAX_PATH]}..." for p in before + cut
        )
        alert.truncated = list(merged)[:_MAX_TRUNCATED]
        return len(alert.to_json())

    size = encoded()
    if size > limits.max_bytes:
        size = _shrink(alert, limits, cut, size, encoded)
    if size > limits.max_bytes:  # a long list of what was cut is what is left to cut
        alert.truncated = alert.truncated[:4] + ["..."]
    return alert


def _encoded_form(alert: Alert) -> bytes | None:
    """Every field of ``alert`` encoded, or None when a value is not of a JSON type: a
    subclass, a date or a dataclass fails here rather than encode as what it stands for.
    About a fifth of ``_within``'s cost (orjson walks it in C), and equal only for an alert
    whose every string, list and nesting is what it was (an enum or a UUID that took the
    place of an equal string encodes the same, and is no larger)."""
    try:
        return orjson.dumps(
            (
                alert.kind,
                alert.severity,
                alert.status,
                alert.key,
                alert.fingerprint,
                alert.event_time,
                alert.title,
                alert.body,
                alert.labels,
                alert.evidence,
                alert.source,
                alert.family,
                alert.audience,
                alert.truncated,
            ),
            option=_EXACT_TYPES,
        )
    except TypeError:  # (orjson.JSONEncodeError)
        return None


# what Alert.to_json adds to an alert's _encoded_form when ``truncated`` is empty: the names of
# the fields it writes (the form is a list of them, ``truncated`` last)
_BLANK = Alert("", "", "", {}, "", 0, "")
_FIELD_NAMES = len(_BLANK.to_json()) - len(_encoded_form(_BLANK) or b"")
del _BLANK


def _short(alert: Alert, limits: AlertLimits, form: bytes) -> bool:
    """True when ``alert``, encoded as ``form`` (its ``_encoded_form``), is one ``_cut`` returns
    as it is (equal, every container of the same type), proven from the form's length: no
    string of it (a value, a name, the body) can be over ``max_value_bytes`` when the whole
    form is not, for a string's UTF-8 bytes are at most its JSON text; nor can the alert be
    over ``max_bytes`` when the form and the field names are not. What a length cannot tell
    is left to check: the types the cut would write otherwise, the items of each container
    and the depth, a container at a time.

    Most alerts a detector makes are that short (1 KiB by default), and these checks do not
    look at a string; for a longer one ``_within`` decides."""
    n = len(form)
    if n > limits.max_value_bytes + 2 or n + _FIELD_NAMES > limits.max_bytes:
        return False
    fp = alert.fingerprint
    truncated = alert.truncated
    if (
        type(alert.title) is not str
        or type(alert.body) is not str
        or type(alert.kind) is not str
        or type(alert.severity) is not str
        or type(alert.status) is not str
        or type(alert.family) is not str
        or type(alert.audience) is not str
        or type(fp) is not str
        or len(fp) > _MAX_FINGERPRINT
        or type(alert.event_time) not in (int, float)
        or type(truncated) is not list
        or truncated
    ):
        return False
    items = limits.max_items
    level: list[Any] = [alert.key, alert.labels, alert.evidence, alert.source]
    depth = 0
    while level:
        if depth >= _MAX_DEPTH:
            return False
        deeper: list[Any] = []
        for value in level:
            t = type(value)
            if t is dict:
                values = value.values()
            elif t is list:
                values = value
            else:  # a tuple (the cut makes it a list), or no container at all
                return False
            if len(value) > items:
                return False
            for child in values:
                if type(child) in _CONTAINERS:
                    deeper.append(child)
        level = deeper
        depth += 1
    return True


def _within(alert: Alert, limits: AlertLimits, form: bytes | None = None) -> bool:
    """True when no part of ``alert`` can be over its limits (the common case, checked
    without encoding: a string of n characters is at most 4n UTF-8 bytes).

    ``form`` is the alert's ``_encoded_form`` where the caller has it (``cap_alert``
    encodes the alert first). Every character the walk counts towards the
    bound on the whole belongs to a string of ``form``, written there in at least as many
    bytes, so the count is at most ``len(form)``: when ``len(form)`` meets the bound, so does
    the count, and the walk checks each value without counting. Otherwise, or without a
    form, it counts. The answer is the same either way."""
    chars = limits.max_value_bytes // 4
    items = limits.max_items
    # Counting is a quarter of the walk's cost: past 256, each addition makes a new int.
    count = form is None or len(form) * 6 + 4096 > limits.max_bytes
    total = 0
    for text in (
        alert.title,
        alert.body,
        alert.kind,
        alert.severity,
        alert.status,
        alert.family,
        alert.audience,
    ):
        if type(text) is not str or len(text) > chars:
            return False
        if count:
            total += len(text)
    fp = alert.fingerprint
    if (
        type(fp) is not str
        or len(fp) > _MAX_FINGERPRINT
        or type(alert.event_time) not in (int, float)
        or len(alert.truncated) > _MAX_TRUNCATED
    ):
        return False
    for path in alert.truncated:
        if type(path) is not str or len(path) > _MAX_PATH:
            return False
        if count:
            total += len(path)
    # One level of nesting at a time, in plain loops: this runs on every alert a detector
    # makes, and a call per value or a tuple per container would cost more than the checks.
    level: list[Any] = [alert.key, alert.labels, alert.evidence, alert.source]
    for value in level:
        if type(value) not in _NESTED:  # a hand-built alert's: the cut writes it as text
            return False
    depth = 0
    while level:
        if depth >= _MAX_DEPTH:
            return False
        deeper: list[Any] = []
        for value in level:
            if len(value) > items:
                return False
            if type(value) is dict:
                # a name and its value in one pass: a second pass over the values costs
                # more than the checks it holds
                for k, child in value.items():
                    if type(k) is not str or len(k) > chars:  # (JSON names are strings)
                        return False
                    t = type(child)
                    if t is str:
                        if len(child) > chars:
                            return False
                        if count:
                            total += len(k) + len(child)
                        continue
                    if count:
                        total += len(k)
                    if t in _NESTED:
                        deeper.append(child)
                    elif t not in _SCALARS:  # bytes, sets, objects: written as str(value)
                        return False
                continue
            for child in value:
                t = type(child)
                if t is str:
                    if len(child) > chars:
                        return False
                    if count:
                        total += len(child)
                elif t in _NESTED:
                    deeper.append(child)
                elif t not in _SCALARS:
                    return False
        level = deeper
        depth += 1
    # every string at most 4 bytes a character, 6 when JSON escapes it; the rest is small
    return not count or total * 6 + 4096 <= limits.max_bytes


def _cut_text(text: str, max_bytes: int) -> tuple[str, int]:
    """(text cut to at most ``max_bytes`` UTF-8 bytes plus a marker, bytes cut); the marker
    is not counted, so a cut value may be a few bytes over."""
    if len(text) * 4 <= max_bytes:  # the common case, without encoding
        return text, 0
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes or (len(raw) <= max_bytes + 32 and _CUT_MARK.search(text)):
        return text, 0  # within, or cut already (a value copied from an alert cut before)
    kept = raw[:max_bytes].decode("utf-8", "ignore")
    n = len(raw) - len(kept.encode("utf-8", "surrogatepass"))
    return f"{kept}...[cut {n} bytes]", n


class _Capper:
    __slots__ = ("cut", "limits")

    def __init__(self, limits: AlertLimits, cut: list[str]) -> None:
        self.limits = limits
        self.cut = cut

    def value(self, value: Any, path: str, depth: int = 0) -> Any:
        t = type(value)
        if t is str:
            text, n = _cut_text(value, self.limits.max_value_bytes)
            if n:
                self.cut.append(path)
            return text
        if t is dict:
            if depth >= _MAX_DEPTH:
                return self._whole(value, path)
            out: dict[Any, Any] = {}
            items = list(value.items())
            marker = None  # cut already (by make_alert, seen again by the engine)
            if len(items) == self.limits.max_items + 1 and items[-1][0] == "...cut":
                marker = items.pop()[1]
            for k, v in items[: self.limits.max_items]:
                if type(k) is not str:  # orjson writes no other name
                    k = str(k)
                k, n = _cut_text(k, self.limits.max_value_bytes)
                if n:
                    self.cut.append(f"{path} (a name)")
                name = k if len(k) <= 64 else f"{k[:64]}..."
                out[k] = self.value(v, f"{path}.{name}" if len(path) < 200 else path, depth + 1)
            if len(items) > self.limits.max_items:
                out["...cut"] = f"[cut {len(items) - self.limits.max_items} entries]"
                self.cut.append(path)
            elif marker is not None:
                out["...cut"] = marker
            return out
        if t is list or t is tuple:
            if depth >= _MAX_DEPTH:
                return self._whole(value, path)
            keep = value[: self.limits.max_items]
            out_list = [self.value(v, path, depth + 1) for v in keep]
            last = value[-1] if len(value) == len(keep) + 1 else None
            if type(last) is str and last.startswith("...[cut ") and last.endswith(" items]"):
                out_list.append(last)  # cut already
            elif len(value) > len(keep):
                out_list.append(f"...[cut {len(value) - len(keep)} items]")
                self.cut.append(path)
            return out_list
        if t in _SCALARS:
            return value
        # Another type (a detector's own Alert(...) can hold anything): orjson writes it
        # natively (datetime, UUID) or as str(value), and that text is what is cut.
        text = orjson.dumps(value, default=str).decode()
        if len(text) <= self.limits.max_value_bytes:
            return value
        text, _ = _cut_text(text, self.limits.max_value_bytes)
        self.cut.append(path)
        return text

    def _whole(self, value: Any, path: str) -> str:
        self.cut.append(path)
        return f"[cut {len(orjson.dumps(value, default=str))} bytes: nested too deep]"


def _shrink(
    alert: Alert, limits: AlertLimits, cut: list[str], size: int, encoded: Callable[[], int]
) -> int:
    """Still over ``max_bytes`` after cutting values: drop whole parts, least needed first."""
    # evidence entries, largest first
    sizes = sorted(
        ((len(orjson.dumps(v, default=str)), k) for k, v in alert.evidence.items()),
        key=lambda item: -item[0],
    )
    evidence = dict(alert.evidence)
    for n, name in sizes:
        if size <= limits.max_bytes or n < 64:
            break
        evidence[name] = f"[cut {n} bytes]"
        alert.evidence = evidence
        cut.append(f"evidence.{name}")
        size = encoded()
    # then the body, the source and the labels beyond what routing reads, the title, the key
    for attr, keep in (("body", 256), ("title", 256)):
        if size <= limits.max_bytes:
            return size
        text, n = _cut_text(getattr(alert, attr), keep)
        if n:
            setattr(alert, attr, text)
            cut.append(attr)
            size = encoded()
    if size > limits.max_bytes:
        small = AlertLimits(limits.max_bytes, 64, 8)
        alert.key = _Capper(small, cut).value(alert.key, "key")
        alert.labels = _Capper(small, cut).value(alert.labels, "labels")
        alert.source = _Capper(small, cut).value(alert.source, "source")
        size = encoded()
    # Only an alert built by hand gets here (hundreds of long evidence names, say): keep what
    # identifies and routes it, a few short values each.
    if size > limits.max_bytes:
        for attr in ("evidence", "source"):
            if getattr(alert, attr):
                setattr(alert, attr, {})
                cut.append(attr)
        size = encoded()
    if size > limits.max_bytes:
        tiny = _Capper(AlertLimits(limits.max_bytes, 32, 4), cut)
        alert.key = tiny.value(alert.key, "key")
        alert.labels = tiny.value(alert.labels, "labels")
        for attr in (*_IDENTITY, "title", "body"):
            setattr(alert, attr, tiny.value(getattr(alert, attr), attr))
        size = encoded()
    return size
