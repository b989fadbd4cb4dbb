"""Inhibition: a firing alert mutes others that share its key. The ``inhibit`` stage.

Default rule: a firing ``critical`` alert mutes internal alerts of lower severity with the
same alert key (e.g. the same host, or the same user and IP), for ``inhibit_ttl`` (1 h) or
until the critical one resolves. New-ticket notices do not mute, and customer notices are not
muted. Rules are configurable:

    inhibit_rules:
      - source: {severity: critical, status: firing}    # LABEL: VALUE, "~REGEX" for a regex
        target: {severity: "~info|low|medium|high"}
        equal: [key]            # label names that must be equal; "key" = the whole alert key

Targets are checked on arrival and again when their group flushes, so a critical that comes
a few seconds after a warning (inside group_wait) still mutes it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from ..alerts import Alert
from ..errors import ConfigError
from .routing import Matcher
from .silences import match_labels
from .stage import Batch, Routed
from .store import Tx

DEFAULT_RULES: list[dict[str, Any]] = [
    # A new-ticket notice is critical for an urgent ticket, but it is news, not a condition:
    # it must not mute that ticket's SLA breach. Customer notices are never muted by
    # internal alerts (the customer's acknowledgement of an urgent ticket must go out).
    {
        "source": {"severity": "critical", "status": "firing", "kind": "~(?!ticket_created$).+"},
        "target": {"severity": "~info|low|medium|high", "audience": "internal"},
        "equal": ["key"],
    },
]


@dataclass(slots=True)
class InhibitRule:
    source: dict[str, Matcher]
    target: dict[str, Matcher]
    equal: tuple[str, ...]

    @staticmethod
    def _ok(matchers: dict[str, Matcher], labels: dict[str, str]) -> bool:
        return all(m(labels.get(k)) for k, m in matchers.items())

    def is_source(self, labels: dict[str, str]) -> bool:
        return self._ok(self.source, labels)

    def is_target(self, labels: dict[str, str]) -> bool:
        return self._ok(self.target, labels)

    def eq_hash(self, alert: Alert, labels: dict[str, str]) -> str:
        parts = [alert.key if name == "key" else labels.get(name) for name in self.equal]
        return hashlib.sha256(
            orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str)
        ).hexdigest()[:20]


def parse_rules(rules: list[dict[str, Any]] | None) -> list[InhibitRule]:
    out = []
    for i, r in enumerate(DEFAULT_RULES if rules is None else rules):
        where = f"notify.inhibit_rules[{i}]"
        if not isinstance(r, dict) or "source" not in r or "target" not in r:
            raise ConfigError(
                f"{where}: needs source and target matchers",
                hint="e.g. {source: {severity: critical}, target: {severity: high}, equal: [key]}",
            )
        out.append(
            InhibitRule(
                source={str(k): Matcher(v, f"{where}.source.{k}") for k, v in r["source"].items()},
                target={str(k): Matcher(v, f"{where}.target.{k}") for k, v in r["target"].items()},
                equal=tuple(str(e) for e in (r.get("equal") or ["key"])),
            )
        )
    return out


def inhibited_by(rules: list[InhibitRule], alerts: list[Alert]) -> dict[str, list[str]]:
    """Among ``alerts`` (the active ones, as the Alertmanager API lists them): fingerprint ->
    the fingerprints of the alerts that inhibit it, by the same rules as the stage below.
    An alert never inhibits itself."""
    out: dict[str, list[str]] = {}
    if not rules or not alerts:
        return out
    labels = [match_labels(a) for a in alerts]
    for rule in rules:
        sources: dict[str, list[str]] = {}  # eq hash -> source fingerprints
        for a, lab in zip(alerts, labels, strict=True):
            if rule.is_source(lab):
                sources.setdefault(rule.eq_hash(a, lab), []).append(a.fingerprint)
        if not sources:
            continue
        for a, lab in zip(alerts, labels, strict=True):
            if not rule.is_target(lab):
                continue
            by = [fp for fp in sources.get(rule.eq_hash(a, lab), ()) if fp != a.fingerprint]
            if by:
                known = out.setdefault(a.fingerprint, [])
                known.extend(fp for fp in by if fp not in known)
    return out


class Inhibitor:
    """Stage: drop alerts muted by a firing source alert; remember new sources (durably)."""

    def __init__(self, db: sqlite3.Connection, rules: list[InhibitRule], ttl: float) -> None:
        self.db = db
        self.rules = rules
        self.ttl = ttl

    def observe(self, alerts: list[Alert], now: float) -> None:
        """Record firing sources and forget resolved ones. Call inside a transaction or not."""
        for a in alerts:
            labels = match_labels(a)
            for idx, rule in enumerate(self.rules):
                if a.status == "resolved":
                    self.db.execute("DELETE FROM inhibitors WHERE fp = ?", (a.fingerprint,))
                    break
                if rule.is_source(labels):
                    self.db.execute(
                        "INSERT OR REPLACE INTO inhibitors VALUES (?,?,?,?,?)",
                        (a.fingerprint, idx, rule.eq_hash(a, labels), 0, now + self.ttl),
                    )

    def inhibited(self, alert: Alert, now: float) -> bool:
        return self.inhibited_many([alert], now)[0]

    def inhibited_many(self, alerts: list[Alert], now: float) -> list[bool]:
        """For each alert: is a live source of another fingerprint muting it? One query per
        rule for the whole batch (not one per alert and rule)."""
        muted = [False] * len(alerts)
        if not self.rules or not alerts:
            return muted
        labels: list[dict[str, str]] = []
        for idx, rule in enumerate(self.rules):
            # Usually no source is live (criticals are rare): then nothing to compute
            if (
                self.db.execute(
                    "SELECT 1 FROM inhibitors WHERE rule = ? AND expires > ? LIMIT 1", (idx, now)
                ).fetchone()
                is None
            ):
                continue
            labels = labels or [match_labels(a) for a in alerts]
            wanted: dict[int, str] = {}  # position -> eq hash, for targets not yet muted
            for i, (a, lab) in enumerate(zip(alerts, labels, strict=True)):
                if not muted[i] and rule.is_target(lab):
                    wanted[i] = rule.eq_hash(a, lab)
            if not wanted:
                continue
            sources: dict[str, set[str]] = {}  # eq hash -> fingerprints of live sources
            eqs = list(set(wanted.values()))
            for j in range(0, len(eqs), 500):
                chunk = eqs[j : j + 500]
                for eq, fp in self.db.execute(
                    "SELECT eq, fp FROM inhibitors WHERE rule = ? AND expires > ? AND eq IN"
                    f" ({','.join('?' * len(chunk))})",
                    (idx, now, *chunk),
                ):
                    sources.setdefault(eq, set()).add(fp)
            for i, eq in wanted.items():
                fps = sources.get(eq)
                # an alert never mutes itself
                if fps and (len(fps) > 1 or alerts[i].fingerprint not in fps):
                    muted[i] = True
        return muted

    def exec(self, alerts: list[Alert], now: float) -> tuple[list[Alert], list[Alert]]:
        """Stage: (alerts to pass on, inhibited alerts). Sources in the batch count first."""
        if not self.rules:
            return alerts, []
        self.observe(alerts, now)
        kept: list[Alert] = []
        muted: list[Alert] = []
        for a, is_muted in zip(alerts, self.inhibited_many(alerts, now), strict=True):
            (muted if is_muted else kept).append(a)
        return kept, muted

    def prune(self, now: float) -> None:
        with Tx(self.db) as db:
            db.execute("DELETE FROM inhibitors WHERE expires <= ?", (now,))


class InhibitStage:
    """``inhibit`` on arrival: record the batch's sources, then drop the muted alerts."""

    name = "inhibit"

    def __init__(self, inhibitor: Inhibitor) -> None:
        self.inhibitor = inhibitor

    async def run(self, batch: Batch[Alert]) -> Batch[Alert]:
        kept, muted = self.inhibitor.exec(batch.items, batch.now)
        batch.counts["inhibited"] += len(muted)
        return batch.next(kept)


class InhibitFlushedStage:
    """``inhibit`` again when a group flushes: a source that came during group_wait mutes
    the alerts that waited for it (sources are recorded on arrival only)."""

    name = "inhibit"

    def __init__(self, inhibitor: Inhibitor) -> None:
        self.inhibitor = inhibitor

    async def run(self, batch: Batch[Routed]) -> Batch[Routed]:
        muted = self.inhibitor.inhibited_many([r.alert for r in batch.items], batch.now)
        kept = [r for r, is_muted in zip(batch.items, muted, strict=True) if not is_muted]
        batch.counts["inhibited"] += len(batch.items) - len(kept)
        return batch.next(kept)
