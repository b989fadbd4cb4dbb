"""Silences: label matchers with an expiry that mute matching alerts. Stage 2 of notify.

    streamproc silence add kind=brute_force username=svc-backup --duration 2h --comment "..."
    streamproc silence list
    streamproc silence expire 4f1c2a

Matchers: ``label=value``, ``label!=value``, ``label=~regex``, ``label!~regex`` (regexes match
the whole value). An alert's matchable labels are its ``labels`` plus ``kind``, ``severity``,
``status``, ``fingerprint``, ``family``, ``category``, ``audience`` and its key fields.
A silence mutes an alert when all its matchers hold and now is in [starts, ends).

Silences live in the notify state database (store.py), so they survive restarts and the CLI
can add one while ``streamproc run`` is running: the stage notices other writers through
SQLite's ``data_version`` and reloads.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from ..alerts import Alert
from ..errors import ConfigError, StreamprocError
from .settings import parse_duration
from .store import Tx, open_db

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(=~|!~|!=|=)(.*)$")


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    name: str
    op: str  # = != =~ !~
    value: str

    @classmethod
    def parse(cls, text: str) -> LabelMatcher:
        m = _MATCHER.match(text)
        if not m:
            raise ConfigError(f"cannot read matcher {text!r}",
                              hint="write LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX or LABEL!~REGEX")
        name, op, value = m.group(1), m.group(2), m.group(3)
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(f"matcher {text!r}: bad regex: {exc}") from None
        return cls(name, op, value)

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[LabelMatcher, ...]
    starts: float
    ends: float
    author: str = ""
    comment: str = ""
    created: float = 0.0

    def active(self, now: float) -> bool:
        return self.starts <= now < self.ends

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def match_labels(alert: Alert) -> dict[str, str]:
    """Everything a silence or inhibit rule can match on, as strings."""
    out = {str(k): str(v) for k, v in (alert.key or {}).items()}
    out.update({str(k): str(v) for k, v in (alert.labels or {}).items()})
    out.update(kind=alert.kind, severity=alert.severity, status=alert.status,
               fingerprint=alert.fingerprint, family=alert.family, category=alert.category,
               audience=alert.audience)
    return out


class SilenceStore:
    """Add, list, expire, and match silences; the ``silence`` stage of the pipeline."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._cache: list[Silence] | None = None
        self._version = -1

    def add(self, matchers: list[str], *, duration: float, author: str = "",
            comment: str = "", now: float | None = None) -> Silence:
        parsed = tuple(LabelMatcher.parse(m) for m in matchers)
        if not parsed:
            raise ConfigError("a silence needs at least one matcher", hint="e.g. kind=brute_force")
        now = time.time() if now is None else now
        s = Silence(id=uuid.uuid4().hex[:12], matchers=parsed, starts=now, ends=now + duration,
                    author=author, comment=comment, created=now)
        with Tx(self.db) as db:
            db.execute("INSERT INTO silences VALUES (?,?,?,?,?,?,?)",
                       (s.id, orjson.dumps([[m.name, m.op, m.value] for m in s.matchers]),
                        s.starts, s.ends, s.author, s.comment, s.created))
        self._cache = None
        return s

    def expire(self, silence_id: str, *, now: float | None = None) -> Silence:
        """End a silence now. A unique prefix of the id is enough."""
        now = time.time() if now is None else now
        rows = [s for s in self.all() if s.id.startswith(silence_id)]
        if len(rows) != 1:
            what = "no silence" if not rows else "more than one silence"
            raise StreamprocError(f"{what} with id {silence_id!r}; see `streamproc silence list`")
        with Tx(self.db) as db:
            db.execute("UPDATE silences SET ends = MIN(ends, ?) WHERE id = ?", (now, rows[0].id))
        self._cache = None
        return rows[0]

    def all(self) -> list[Silence]:
        out = []
        for sid, matchers, starts, ends, author, comment, created in self.db.execute(
                "SELECT id, matchers, starts, ends, author, comment, created FROM silences "
                "ORDER BY created"):
            out.append(Silence(sid, tuple(LabelMatcher(*m) for m in orjson.loads(matchers)),
                               starts, ends, author, comment, created))
        return out

    def active(self, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if self._cache is None or version != self._version:
            self._cache = [s for s in self.all() if s.ends > now]
            self._version = version
        return [s for s in self._cache if s.active(now)]

    def silenced_by(self, alert: Alert, now: float) -> Silence | None:
        silences = self.active(now)
        if not silences:
            return None
        labels = match_labels(alert)
        return next((s for s in silences if s.matches(labels)), None)

    def exec(self, alerts: list[Alert], now: float) -> tuple[list[Alert], list[Alert]]:
        """Stage: (alerts to pass on, alerts muted by a silence)."""
        silences = self.active(now)  # once per batch: it asks SQLite for the data version
        if not silences:
            return alerts, []
        kept: list[Alert] = []
        muted: list[Alert] = []
        for a in alerts:
            labels = match_labels(a)
            (muted if any(s.matches(labels) for s in silences) else kept).append(a)
        return kept, muted

    def prune(self, now: float, keep: float = 7 * 86400.0) -> None:
        with Tx(self.db) as db:
            db.execute("DELETE FROM silences WHERE ends < ?", (now - keep,))


def _fmt_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def main(args: argparse.Namespace) -> int:
    """``streamproc silence add|list|expire`` against ``config.state_dir``."""
    from ..config import load_config

    config = load_config(getattr(args, "config", None))
    db = open_db(config.state_dir)
    store = SilenceStore(db)
    try:
        cmd = args.silence_cmd
        if cmd == "add":
            duration = parse_duration(args.duration, where="--duration")
            if duration <= 0:
                raise ConfigError("--duration must be positive", hint="e.g. 30m, 2h, 1d")
            s = store.add(list(args.matchers), duration=duration,
                          author=getattr(args, "author", "") or "",
                          comment=getattr(args, "comment", "") or "")
            print(f"{s.id}  until {_fmt_time(s.ends)}  "
                  + " ".join(str(m) for m in s.matchers))
            return 0
        if cmd == "list":
            now = time.time()
            active = [s for s in store.all() if s.ends > now]
            if not active:
                print("no active silences")
                return 0
            print(f"{'ID':12}  {'ENDS (UTC)':20}  {'AUTHOR':12}  MATCHERS  # COMMENT")
            for s in active:
                line = (f"{s.id:12}  {_fmt_time(s.ends):20}  {s.author[:12]:12}  "
                        + " ".join(str(m) for m in s.matchers))
                if s.comment:
                    line += f"  # {s.comment}"
                print(line)
            return 0
        if cmd == "expire":
            s = store.expire(args.silence_id)
            print(f"expired {s.id}")
            return 0
        raise StreamprocError(f"unknown silence action {cmd!r}")
    finally:
        db.close()

