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
"""

from __future__ import annotations

import hashlib
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
        return cls(
            kind=d["kind"], severity=d["severity"], status=d["status"], key=d.get("key") or {},
            fingerprint=d["fingerprint"], event_time=float(d["event_time"]),
            title=d.get("title", ""), body=d.get("body", ""), labels=d.get("labels") or {},
            evidence=d.get("evidence") or {}, source=d.get("source") or {},
            family=d.get("family", ""), audience=d.get("audience", "internal"),
            truncated=list(d.get("truncated") or ()),
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Alert:
        return cls.from_dict(orjson.loads(raw))

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.fingerprint, self.status)


# -- keeping an alert within its limits --------------------------------------------------------

def cap_alert(alert: Alert, limits: AlertLimits) -> Alert:
    """Cut ``alert`` in place to ``limits`` and return it; ``alert.truncated`` says what was
    cut. Values first (each copied value to ``max_value_bytes``), then, while the encoded
    alert is still over ``max_bytes``, whole evidence entries (largest first), the body, the
    title and finally the key's values."""
    if _within(alert, limits):
        return alert
    cut: list[str] = []
    cap = _Capper(limits, cut)
    alert.key = cap.value(alert.key, "key")
    alert.labels = cap.value(alert.labels, "labels")
    alert.evidence = cap.value(alert.evidence, "evidence")
    alert.source = cap.value(alert.source, "source")
    alert.title = cap.value(alert.title, "title")
    alert.body = cap.value(alert.body, "body")
    size = len(alert.to_json())
    if size > limits.max_bytes:
        size = _shrink(alert, limits, cut, size)
    if cut:
        seen = dict.fromkeys(alert.truncated + cut)
        alert.truncated = list(seen)[:_MAX_TRUNCATED]
    return alert


def _within(alert: Alert, limits: AlertLimits) -> bool:
    """True when no part of ``alert`` can be over its limits (the common case, checked
    without encoding: a string of n characters is at most 4n UTF-8 bytes)."""
    chars = limits.max_value_bytes // 4
    items = limits.max_items
    total = len(alert.title) + len(alert.body)
    if len(alert.title) > chars or len(alert.body) > chars:
        return False
    stack: list[tuple[Any, int]] = [(alert.key, 0), (alert.labels, 0), (alert.evidence, 0),
                                    (alert.source, 0)]
    while stack:
        value, depth = stack.pop()
        if len(value) > items or depth >= _MAX_DEPTH:
            return False
        children = value.values() if type(value) is dict else value
        if type(value) is dict:
            for k in value:
                if type(k) is str:
                    if len(k) > chars:
                        return False
                    total += len(k)
        for child in children:
            t = type(child)
            if t is str:
                if len(child) > chars:
                    return False
                total += len(child)
            elif t is dict or t is list or t is tuple:
                stack.append((child, depth + 1))
    # every string at most 4 bytes a character, 6 when JSON escapes it; the rest is small
    return total * 6 + 4096 <= limits.max_bytes


def _cut_text(text: str, max_bytes: int) -> tuple[str, int]:
    """(text cut to at most ``max_bytes`` UTF-8 bytes plus a marker, bytes cut); the marker
    is not counted, so a cut value may be a few bytes over."""
    if len(text) * 4 <= max_bytes:  # the common case, without encoding
        return text, 0
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text, 0
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
            for k, v in items[:self.limits.max_items]:
                if type(k) is str:
                    k2, n = _cut_text(k, self.limits.max_value_bytes)
                    if n:
                        self.cut.append(f"{path} (a name)")
                    k = k2
                name = k if type(k) is str and len(k) <= 64 else f"{str(k)[:64]}..."
                out[k] = self.value(v, f"{path}.{name}" if len(path) < 200 else path,
                                    depth + 1)
            if len(items) > self.limits.max_items:
                out["...cut"] = f"[cut {len(items) - self.limits.max_items} entries]"
                self.cut.append(path)
            return out
        if t is list or t is tuple:
            if depth >= _MAX_DEPTH:
                return self._whole(value, path)
            keep = value[:self.limits.max_items]
            out_list = [self.value(v, path, depth + 1) for v in keep]
            if len(value) > len(keep):
                out_list.append(f"...[cut {len(value) - len(keep)} items]")
                self.cut.append(path)
            return out_list
        return value

    def _whole(self, value: Any, path: str) -> str:
        self.cut.append(path)
        return f"[cut {len(orjson.dumps(value, default=str))} bytes: nested too deep]"


def _shrink(alert: Alert, limits: AlertLimits, cut: list[str], size: int) -> int:
    """Still over ``max_bytes`` after cutting values: drop whole parts, least needed first."""
    def encoded() -> int:
        return len(alert.to_json())

    # evidence entries, largest first
    sizes = sorted(((len(orjson.dumps(v, default=str)), k) for k, v in alert.evidence.items()),
                   key=lambda item: -item[0])
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
    return size
