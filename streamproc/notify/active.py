"""Active alerts: which incidents are firing now, as every worker of a deployment sees them.

The Alertmanager API (http/alertmanager.py) answers "what is firing?" from any worker, on any
machine, while each alert is read from the alert log by one worker only (its delivery
group). So the worker that reads an alert records it here, after notify/ accepted it, and
the record reaches every worker as silences and the notification log do:

    worker A:  alert log ─► notify/ ─► record: local table + <application_id>.alerts.active
    worker B:  table follower (tables.py) ─► its table           (within a fetch, ~100 ms)

One record per alert read, keyed by fingerprint (so the firing and resolved alerts of one
incident land on one partition, in order, and the latest wins):

    {"alert": <the alert without evidence and source>, "updated": T, "ends": E}

    T  when it was read (wall clock): Alertmanager's updatedAt
    E  a resolved alert: its resolve time; a firing one: T + api.resolve_timeout, since
       most detectors report an incident once and never resolve it (Alertmanager's
       resolve_timeout, for clients that send an alert without endsAt)

An alert whose E has passed is dropped (on apply and on every read), so the table holds
what is active now. The topic's retention is resolve_timeout + 1 day; each worker reads it
from the beginning when it starts (Tansu does not delete by retention: the topic then grows
by one small record per alert read, a few hundred bytes).

Without Kafka (MQTT-only), the table is the ``active_alerts`` table of the state
directory's notify.db (``SqliteActiveAlerts``; with ``--workers N`` the shared state_dir, as
for silences), so every worker of the machine lists the same alerts and a restart keeps them.
``ActiveAlerts`` itself keeps them in memory (tests, tools).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..alerts import Alert
from ..ops.logs import RateLimitedLog

if TYPE_CHECKING:
    from ..config import KafkaConfig

log = logging.getLogger("streamproc.notify")


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    alert: Alert  # without evidence and source
    updated: float  # when the delivery side read it
    ends: float  # resolve time, or updated + resolve_timeout

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"alert": self.alert.to_dict(), "updated": self.updated, "ends": self.ends}, default=str
        )

    @classmethod
    def from_json(cls, raw: bytes) -> ActiveAlert:
        d = orjson.loads(raw)
        return cls(Alert.from_dict(d["alert"]), float(d["updated"]), float(d["ends"]))


def compact(alert: Alert) -> Alert:
    """What the API shows of an alert: no evidence, no source (they can be large)."""
    return Alert(
        kind=alert.kind,
        severity=alert.severity,
        status=alert.status,
        key=alert.key,
        fingerprint=alert.fingerprint,
        event_time=alert.event_time,
        title=alert.title,
        body=alert.body,
        labels=alert.labels,
        family=alert.family,
        audience=alert.audience,
    )


def retention_ms(resolve_timeout: float) -> str:
    """The topic's retention: past any record's end, with a day to spare."""
    return str(int((resolve_timeout + 86400) * 1000))


class ActiveAlerts:
    """The table in this process only (MQTT-only deployments); the base of the shared one."""

    def __init__(self, resolve_timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.resolve_timeout = resolve_timeout
        self.clock = clock
        self.by_fp: dict[str, ActiveAlert] = {}
        self.keep = True  # False: nothing read from here (publish only)
        self._pruned = 0.0

    def entries(self, alerts: list[Alert], now: float) -> list[ActiveAlert]:
        return [
            ActiveAlert(
                compact(a),
                now,
                a.event_time if a.status == "resolved" else now + self.resolve_timeout,
            )
            for a in alerts
        ]

    def put(self, entries: list[ActiveAlert], now: float) -> None:
        if not self.keep:
            return
        if now - self._pruned > 60.0:  # bounded even if nobody asks
            self.current(now)
            self._pruned = now
        for e in entries:
            if e.ends <= now:
                self.by_fp.pop(e.alert.fingerprint, None)
            else:
                self.by_fp[e.alert.fingerprint] = e

    async def record(self, alerts: list[Alert]) -> None:
        """Alerts notify/ has just accepted (the delivery loop calls this)."""
        now = self.clock()
        self.put(self.entries(alerts, now), now)

    def current(self, now: float | None = None) -> list[ActiveAlert]:
        """Every alert active now, by fingerprint."""
        now = self.clock() if now is None else now
        for fp in [fp for fp, e in self.by_fp.items() if e.ends <= now]:
            del self.by_fp[fp]
        return sorted(self.by_fp.values(), key=lambda e: e.alert.fingerprint)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class KafkaActiveAlerts(ActiveAlerts):
    """The table every worker of the deployment reads (see the module docstring)."""

    def __init__(
        self,
        cfg: KafkaConfig,
        producer: Any,
        resolve_timeout: float,
        *,
        follow: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from ..storage.tables import TopicTable

        super().__init__(resolve_timeout, clock)
        self.cfg = cfg
        self.topic = cfg.topics.active_alerts
        self.producer = producer
        # False: publish only (a worker that serves no API need not read the topic)
        self.follow = self.keep = follow
        self.table = TopicTable(cfg, self.topic, self._apply, name="active-alerts")
        self._sends: set[asyncio.Task[None]] = set()
        self._bad = RateLimitedLog(log, per_key_interval=60.0)
        self.published = 0

    async def start(self) -> None:
        """Read the topic (created with the other internal topics, runtime.py) up to now,
        then follow it."""
        if self.follow:
            await self.table.start()
            log.info("notify: %d active alert(s) from %s", len(self.current()), self.topic)

    async def stop(self) -> None:
        if self._sends:
            # best effort, as every publish here: a broker that keeps refusing (Tansu has
            # answered NotLeaderForPartition for a whole request timeout, ~40 s) must not
            # hold the shutdown; what is not sent is not listed by the other workers
            _, pending = await asyncio.wait(list(self._sends), timeout=2)
            for task in pending:
                task.cancel()
        await self.table.stop()

    def _apply(self, records: list[Any]) -> None:
        now = self.clock()
        entries = []
        for r in records:
            try:
                entries.append(ActiveAlert.from_json(r.value))
            except Exception as exc:  # noqa: BLE001 - a foreign record must not stop us
                self._bad.warning(
                    ("unreadable", r.topic),
                    "notify: unreadable record in %s[%d]@%d skipped (%s)",
                    r.topic,
                    r.partition,
                    r.offset,
                    type(exc).__name__,
                )
        self.put(entries, now)

    async def record(self, alerts: list[Alert]) -> None:
        now = self.clock()
        entries = self.entries(alerts, now)
        self.put(entries, now)  # this worker sees them at once; the others within a fetch
        # published in the background: the delivery loop never waits on this topic
        task = asyncio.ensure_future(self._send(entries))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, entries: list[ActiveAlert]) -> None:
        try:
            futures = [
                await self.producer.send(self.topic, e.to_json(), key=e.alert.fingerprint.encode())
                for e in entries
            ]
            await asyncio.gather(*futures)
            self.published += len(entries)
        except Exception as exc:  # noqa: BLE001 - this worker's table still has them
            self._bad.warning(
                ("publish", self.topic),
                "notify: could not publish %d active "
                "alert(s) to %s (%s); other workers will not list them",
                len(entries),
                self.topic,
                type(exc).__name__,
            )


class SqliteActiveAlerts(ActiveAlerts):
    """The table in notify.db, shared by the processes of one state directory."""

    def __init__(
        self,
        db: sqlite3.Connection,
        resolve_timeout: float,
        *,
        owns_db: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(resolve_timeout, clock)
        self.db = db
        self.owns_db = owns_db
        self.closed = False
        db.execute(
            "CREATE TABLE IF NOT EXISTS active_alerts (fp TEXT PRIMARY KEY, "
            "record BLOB NOT NULL, ends REAL NOT NULL)"
        )

    def put(self, entries: list[ActiveAlert], now: float) -> None:
        from .store import Tx

        with Tx(self.db) as db:
            db.execute("DELETE FROM active_alerts WHERE ends <= ?", (now,))
            db.executemany(
                "DELETE FROM active_alerts WHERE fp = ?",
                [(e.alert.fingerprint,) for e in entries if e.ends <= now],
            )
            db.executemany(
                "INSERT OR REPLACE INTO active_alerts VALUES (?,?,?)",
                [(e.alert.fingerprint, e.to_json(), e.ends) for e in entries if e.ends > now],
            )

    def current(self, now: float | None = None) -> list[ActiveAlert]:
        if self.closed:  # stopped (a scrape may come after): nothing is read any more
            return []
        now = self.clock() if now is None else now
        out = []
        for (raw,) in self.db.execute(
            "SELECT record FROM active_alerts WHERE ends > ? ORDER BY fp", (now,)
        ):
            try:
                out.append(ActiveAlert.from_json(raw))
            except Exception as exc:  # noqa: BLE001 - a row of another version: skip it
                log.debug("active_alerts: unreadable row skipped (%s)", type(exc).__name__)
        return out

    async def stop(self) -> None:
        if self.owns_db and not self.closed:
            self.closed = True
            self.db.close()
