"""Silences: label matchers with an expiry that mute matching alerts. The ``silence`` stage.

    streamproc silence add kind=brute_force username=svc-backup --duration 2h --comment "..."
    streamproc silence list
    streamproc silence query -o json      # as amtool shows them; Alertmanager's JSON
    streamproc silence expire 4f1c2a

Matchers: ``label=value``, ``label!=value``, ``label=~regex``, ``label!~regex`` (regexes match
the whole value). An alert's matchable labels are its ``labels`` plus ``kind``, ``severity``,
``status``, ``fingerprint``, ``family``, ``category``, ``audience`` and its key fields.
A silence mutes an alert when all its matchers hold and now is in [starts, ends).

Where silences live: where every worker of the deployment reads them.

- With Kafka: the topic ``<application_id>.silences``, keyed by silence id, one record per
  version of a silence (added; expired early, with its new end). Every worker reads it as a
  table (tables.py: no consumer group, every partition, from the beginning, then following),
  so a silence added with ``streamproc silence add -c CONFIG`` on any machine mutes matching
  alerts in every worker within a fetch (a few hundred milliseconds) and logs
  ``silence <id> active until ...`` there. The latest version of an id wins; silences that
  have ended are kept in the table and ignored. Brokers that compact (Apache Kafka; the topic
  is created with ``cleanup.policy=compact``) keep one record per silence; Tansu keeps every
  version, which is correct too (a few hundred bytes per add or expire).
- Without Kafka (MQTT-only, the embedded demo): the notify state database (store.py) in
  ``state_dir`` (with ``--workers N``, the shared ``state_dir``, not ``state_dir/worker-N``),
  so they survive restarts and the CLI can add one while ``streamproc run`` is running: the
  stage notices other writers through SQLite's ``data_version`` and reloads.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..alerts import Alert
from ..errors import ConfigError, StreamprocError
from .settings import parse_duration
from .stage import Batch
from .store import Tx, open_db

if TYPE_CHECKING:
    from ..config import KafkaConfig

log = logging.getLogger("streamproc.notify")

_AM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
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
            raise ConfigError(
                f"cannot read matcher {text!r}",
                hint="write LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX or LABEL!~REGEX",
            )
        name, op, value = m.group(1), m.group(2), m.group(3)
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(f"matcher {text!r}: bad regex: {exc}") from None
        return cls(name, op, value)

    @classmethod
    def of(cls, name: object, op: object, value: object) -> LabelMatcher:
        """From stored parts, checked as ``parse`` checks text."""
        if op not in ("=", "!=", "=~", "!~"):
            raise ConfigError(f"unknown matcher operator {op!r}")
        if op in ("=~", "!~"):
            re.compile(str(value))
        return cls(str(name), str(op), str(value))

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

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "matchers": [[m.name, m.op, m.value] for m in self.matchers],
                "starts": self.starts,
                "ends": self.ends,
                "author": self.author,
                "comment": self.comment,
                "created": self.created,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Silence:
        d = orjson.loads(raw)
        return cls(
            str(d["id"]),
            tuple(LabelMatcher.of(n, op, v) for n, op, v in d["matchers"]),
            float(d["starts"]),
            float(d["ends"]),
            str(d.get("author", "")),
            str(d.get("comment", "")),
            float(d.get("created", 0.0)),
        )


def new_silence(
    matchers: list[str],
    *,
    duration: float,
    author: str = "",
    comment: str = "",
    now: float | None = None,
) -> Silence:
    parsed = tuple(LabelMatcher.parse(m) for m in matchers)
    if not parsed:
        raise ConfigError("a silence needs at least one matcher", hint="e.g. kind=brute_force")
    now = time.time() if now is None else now
    return Silence(
        id=uuid.uuid4().hex[:12],
        matchers=parsed,
        starts=now,
        ends=now + duration,
        author=author,
        comment=comment,
        created=now,
    )


def find_one(silences: list[Silence], silence_id: str) -> Silence:
    """The silence whose id starts with ``silence_id`` (a unique prefix is enough)."""
    rows = [s for s in silences if s.id.startswith(silence_id)]
    if len(rows) != 1:
        what = "no silence" if not rows else "more than one silence"
        raise StreamprocError(f"{what} with id {silence_id!r}; see `streamproc silence list`")
    return rows[0]


def match_labels(alert: Alert) -> dict[str, str]:
    """Everything a silence or inhibit rule can match on, as strings: with ``alertname``
    (the kind) and the key fields under their Alertmanager label names too, so a silence
    made with amtool (``alertname=brute_force``) mutes what it shows."""
    out = {str(k): str(v) for k, v in (alert.key or {}).items()}
    out.update({str(k): str(v) for k, v in (alert.labels or {}).items()})
    out.update(
        kind=alert.kind,
        severity=alert.severity,
        status=alert.status,
        fingerprint=alert.fingerprint,
        family=alert.family,
        category=alert.category,
        audience=alert.audience,
        alertname=alert.kind,
    )
    for name in [k for k in out if not _AM_NAME.match(k)]:
        out.setdefault(re.sub(r"[^A-Za-z0-9_]", "_", name), out[name])
    return out


class SilenceStage:
    """The ``silence`` stage of the pipeline, over whatever holds the silences (``active``)."""

    name = "silence"

    async def run(self, batch: Batch[Alert]) -> Batch[Alert]:
        kept, muted = self.exec(batch.items, batch.now)
        batch.counts["silenced"] += len(muted)
        return batch.next(kept)

    def active(self, now: float | None = None) -> list[Silence]:
        raise NotImplementedError

    def silenced_by(self, alert: Alert, now: float) -> Silence | None:
        silences = self.active(now)
        if not silences:
            return None
        labels = match_labels(alert)
        return next((s for s in silences if s.matches(labels)), None)

    def exec(self, alerts: list[Alert], now: float) -> tuple[list[Alert], list[Alert]]:
        """Stage: (alerts to pass on, alerts muted by a silence)."""
        silences = self.active(now)  # once per batch
        if not silences:
            return alerts, []
        kept: list[Alert] = []
        muted: list[Alert] = []
        for a in alerts:
            labels = match_labels(a)
            (muted if any(s.matches(labels) for s in silences) else kept).append(a)
        return kept, muted

    def prune(self, now: float, keep: float = 7 * 86400.0) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    # -- what the API and the CLI do with silences (http/alertmanager.py) -----------------

    def all(self) -> list[Silence]:
        """Every silence known, ended ones included, oldest first."""
        raise NotImplementedError

    async def save(self, s: Silence) -> None:
        """Add ``s``, or replace the silence with its id; visible here when this returns."""
        raise NotImplementedError

    async def end(self, silence_id: str, now: float | None = None) -> Silence:
        """End the silence with this id (a unique prefix is enough) now."""
        now = time.time() if now is None else now
        found = find_one(self.all(), silence_id)
        if found.ends > now:
            await self.save(
                Silence(
                    found.id,
                    found.matchers,
                    min(found.starts, now),
                    now,
                    found.author,
                    found.comment,
                    found.created,
                )
            )
        return found


class SilenceStore(SilenceStage):
    """Silences in the notify SQLite database: add, list, expire, and match them."""

    def __init__(self, db: sqlite3.Connection, *, owns_db: bool = False) -> None:
        self.db = db
        self.owns_db = owns_db  # a database of its own (the deployment's, not a worker's)
        self._cache: list[Silence] | None = None
        self._version = -1

    async def stop(self) -> None:
        if self.owns_db:
            self.db.close()

    def add(
        self,
        matchers: list[str],
        *,
        duration: float,
        author: str = "",
        comment: str = "",
        now: float | None = None,
    ) -> Silence:
        s = new_silence(matchers, duration=duration, author=author, comment=comment, now=now)
        with Tx(self.db) as db:
            db.execute(
                "INSERT INTO silences VALUES (?,?,?,?,?,?,?)",
                (
                    s.id,
                    orjson.dumps([[m.name, m.op, m.value] for m in s.matchers]),
                    s.starts,
                    s.ends,
                    s.author,
                    s.comment,
                    s.created,
                ),
            )
        self._cache = None
        return s

    async def save(self, s: Silence) -> None:
        with Tx(self.db) as db:
            db.execute(
                "INSERT OR REPLACE INTO silences VALUES (?,?,?,?,?,?,?)",
                (
                    s.id,
                    orjson.dumps([[m.name, m.op, m.value] for m in s.matchers]),
                    s.starts,
                    s.ends,
                    s.author,
                    s.comment,
                    s.created,
                ),
            )
        self._cache = None

    def expire(self, silence_id: str, *, now: float | None = None) -> Silence:
        """End a silence now. A unique prefix of the id is enough."""
        now = time.time() if now is None else now
        found = find_one(self.all(), silence_id)
        with Tx(self.db) as db:
            db.execute("UPDATE silences SET ends = MIN(ends, ?) WHERE id = ?", (now, found.id))
        self._cache = None
        return found

    def all(self) -> list[Silence]:
        out = []
        for sid, matchers, starts, ends, author, comment, created in self.db.execute(
            "SELECT id, matchers, starts, ends, author, comment, created FROM silences "
            "ORDER BY created"
        ):
            out.append(
                Silence(
                    sid,
                    tuple(LabelMatcher(*m) for m in orjson.loads(matchers)),
                    starts,
                    ends,
                    author,
                    comment,
                    created,
                )
            )
        return out

    def active(self, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if self._cache is None or version != self._version:
            self._cache = [s for s in self.all() if s.ends > now]
            self._version = version
        return [s for s in self._cache if s.active(now)]

    def prune(self, now: float, keep: float = 7 * 86400.0) -> None:
        with Tx(self.db) as db:
            db.execute("DELETE FROM silences WHERE ends < ?", (now - keep,))


class SilenceTable(SilenceStage):
    """Silences in the deployment's topic, read as a table (see the module docstring)."""

    def __init__(self, cfg: KafkaConfig) -> None:
        from ..storage.tables import TopicTable

        self.cfg = cfg
        self.topic = cfg.topics.silences
        self.by_id: dict[str, Silence] = {}
        self.table = TopicTable(cfg, self.topic, self._apply, name="silences")
        self.announce = False  # the CLI reads quietly

    async def start(self) -> None:
        await ensure_silence_topic(self.cfg)
        self.announce = True
        await self.table.start()
        log.info("notify: %d active silence(s) from %s", len(self.active()), self.topic)

    async def stop(self) -> None:
        await self.table.stop()

    def _apply(self, records: list[Any]) -> None:
        now = time.time()
        for r in records:
            if r.value is None:  # a tombstone: the silence is gone
                if r.key is not None:
                    self.by_id.pop(r.key.decode("utf-8", "replace"), None)
                continue
            try:
                s = Silence.from_json(r.value)
            except Exception as exc:  # noqa: BLE001 - a foreign record must not stop us
                log.warning(
                    "notify: unreadable record in %s[%d]@%d skipped (%s)",
                    r.topic,
                    r.partition,
                    r.offset,
                    type(exc).__name__,
                )
                continue
            before = self.by_id.get(s.id)
            self.by_id[s.id] = s
            if not self.announce:
                continue
            if s.ends > now:
                log.info(
                    "notify: silence %s active until %s: %s",
                    s.id,
                    _fmt_time(s.ends),
                    " ".join(str(m) for m in s.matchers),
                )
            elif before is not None and before.ends > now:
                log.info("notify: silence %s expired", s.id)

    def all(self) -> list[Silence]:
        return sorted(self.by_id.values(), key=lambda s: (s.created, s.id))

    async def save(self, s: Silence) -> None:
        await _write_silence(self.cfg, s)
        self.by_id[s.id] = s  # here at once; the table brings the same record back

    def active(self, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        return [s for s in self.by_id.values() if s.active(now)]


async def ensure_silence_topic(cfg: KafkaConfig) -> None:
    from ..ops.broker import ensure_topics

    # one partition: silences are few; compaction (where the broker does it) keeps the
    # latest version of each
    await ensure_topics(
        cfg.client_kwargs(),
        {cfg.topics.silences: 1},
        configs={cfg.topics.silences: {"cleanup.policy": "compact"}},
    )


async def _write_silence(cfg: KafkaConfig, s: Silence) -> None:
    from aiokafka import AIOKafkaProducer

    await ensure_silence_topic(cfg)
    producer = AIOKafkaProducer(
        **cfg.client_kwargs(), acks="all", linger_ms=0, client_id=f"{cfg.client_id}-silence"
    )
    await producer.start()
    try:
        await producer.send_and_wait(cfg.topics.silences, s.to_json(), key=s.id.encode())
    finally:
        await producer.stop()


async def _read_silences(cfg: KafkaConfig) -> list[Silence]:
    table = SilenceTable(cfg)
    await ensure_silence_topic(cfg)
    try:
        await table.table.start()
    finally:
        await table.stop()
    return table.all()


def _fmt_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def main(args: argparse.Namespace) -> int:
    """``streamproc silence add|list|expire`` against ``config.state_dir``."""
    from ..config import load_config

    config = load_config(getattr(args, "config", None))
    if config.kafka is not None:
        return asyncio.run(_kafka_main(config.kafka, args))
    db = open_db(config.state_dir)
    store = SilenceStore(db)
    try:
        cmd = args.silence_cmd
        if cmd == "add":
            s = store.add(
                list(args.matchers),
                duration=_duration(args),
                author=getattr(args, "author", "") or "",
                comment=getattr(args, "comment", "") or "",
            )
            _print_added(s)
            return 0
        if cmd == "list":
            _print_list(store.all())
            return 0
        if cmd == "query":
            _print_query(store.all(), args)
            return 0
        if cmd == "expire":
            s = store.expire(args.silence_id)
            print(f"expired {s.id}")
            return 0
        raise StreamprocError(f"unknown silence action {cmd!r}")
    finally:
        db.close()


async def _kafka_main(cfg: KafkaConfig, args: argparse.Namespace) -> int:
    """The same actions against the deployment's silences topic."""
    cmd = args.silence_cmd
    if cmd == "add":
        s = new_silence(
            list(args.matchers),
            duration=_duration(args),
            author=getattr(args, "author", "") or "",
            comment=getattr(args, "comment", "") or "",
        )
        await _write_silence(cfg, s)
        _print_added(s)
        return 0
    if cmd == "list":
        _print_list(await _read_silences(cfg))
        return 0
    if cmd == "query":
        _print_query(await _read_silences(cfg), args)
        return 0
    if cmd == "expire":
        found = find_one(await _read_silences(cfg), args.silence_id)
        now = time.time()
        await _write_silence(
            cfg,
            Silence(
                found.id,
                found.matchers,
                found.starts,
                min(found.ends, now),
                found.author,
                found.comment,
                found.created,
            ),
        )
        print(f"expired {found.id}")
        return 0
    raise StreamprocError(f"unknown silence action {cmd!r}")


def _duration(args: argparse.Namespace) -> float:
    duration = parse_duration(args.duration, where="--duration")
    if duration <= 0:
        raise ConfigError("--duration must be positive", hint="e.g. 30m, 2h, 1d")
    return duration


def _print_added(s: Silence) -> None:
    print(f"{s.id}  until {_fmt_time(s.ends)}  " + " ".join(str(m) for m in s.matchers))


def _print_query(silences: list[Silence], args: argparse.Namespace) -> None:
    """``silence query``: amtool's view (active and pending, or expired with -e), or
    Alertmanager's JSON (gettableSilence) with -o json."""
    import json

    from ..http.am_shapes import (
        BadMatcher,
        gettable_silence,
        parse_filter,
        silence_has_matchers,
        silence_state,
    )

    try:
        wanted = parse_filter(list(getattr(args, "matchers", []) or []))
    except BadMatcher as exc:
        raise StreamprocError(str(exc)) from None
    now = time.time()
    expired = bool(getattr(args, "expired", False))
    shown = [
        s
        for s in silences
        if silence_has_matchers(s, wanted) and (silence_state(s, now) == "expired") == expired
    ]
    if getattr(args, "output", "simple") == "json":
        print(json.dumps([gettable_silence(s, now) for s in shown], indent=2))
        return
    rows = [("ID", "Matchers", "Ends At", "Created By", "Comment")]
    rows += [
        (s.id, " ".join(str(m) for m in s.matchers), _fmt_time(s.ends), s.author, s.comment)
        for s in shown
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _print_list(silences: list[Silence]) -> None:
    now = time.time()
    active = [s for s in silences if s.ends > now]
    if not active:
        print("no active silences")
        return
    print(f"{'ID':12}  {'ENDS (UTC)':20}  {'AUTHOR':12}  MATCHERS  # COMMENT")
    for s in active:
        line = f"{s.id:12}  {_fmt_time(s.ends):20}  {s.author[:12]:12}  " + " ".join(
            str(m) for m in s.matchers
        )
        if s.comment:
            line += f"  # {s.comment}"
        print(line)
