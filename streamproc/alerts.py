"""The Alert type and its fingerprint.

An alert is what a detector decides; it is appended to the durable alert log before the source
offsets that produced it are committed, and notify/ delivers it from there.

Fingerprint: a stable hash of (kind, key, incident start). The same incident found by another
process or in a replay of the same data has the same fingerprint; the firing and resolved
alerts of one incident share it, so notify/ can route a resolve to where the firing went and
dedup either against its notification log.
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

    @property
    def category(self) -> str:
        return CATEGORY_BY_FAMILY.get(self.family, "other")

    def to_dict(self) -> dict[str, Any]:
        return {
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
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Alert:
        return cls.from_dict(orjson.loads(raw))

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.fingerprint, self.status)
