"""The notification log, shared by every worker of a deployment.

Each worker keeps its notification log (``nlog``, dedup.py) in its own ``notify.db``. An
alert can reach a second worker: the alert log's partitions move on a rebalance, and a worker
that died before its checkpoint leaves records that a survivor judges again, appending the
same alerts (same fingerprints) to the alert log once more. Without the first worker's log,
the survivor would notify a second time. So every final state a worker records,

    (channel, fingerprint, status, state, at)     state: sent | fallback | dead

is also published to ``<application_id>.notifications`` (keyed by fingerprint), and every
worker reads that topic as a table (tables.py) into its own ``nlog``, where dedup finds it:

    worker A:  2xx ─► nlog 'sent' (local commit) ─► publish ─► broker ack
    worker B:  table follower ─► nlog (newer 'at' wins) ─► dedup drops the re-read alert

Before B reads alerts of partitions it was just given, it waits until the table has caught
up (``caught_up``, an alert-log assignment hook), so a record A published before it died is
in B's ``nlog`` before B judges the re-read alert.

Crash windows. Between a receiver's 2xx and the local commit (as without workers: the one
at-least-once window of notify, see store.py), and, for a *different* worker, between the
2xx and the broker's acknowledgement of the published record: the commit and the publish are
both issued in the first event-loop turn after the 2xx, so the window grows by one produce
round trip (milliseconds), not by a batch. A worker that dies with alerts accepted but not
yet delivered (waiting in its groups or outbox) delivers them when it restarts; if another
worker re-read them meanwhile, the restarted one drops those that the table already shows
as sent when its groups flush (rows already rendered into its outbox are sent).

Who can write to the topic can suppress a notification for ``repeat_interval`` with a forged
``sent`` record (records timed more than 5 minutes ahead of the reader's clock are skipped, so
none lasts longer): grant write access to streamproc's own principal only.

Size. The topic is created with ``retention.ms`` = max(``nlog_retention``,
``repeat_interval``) (7 days by default): one record of ~120 bytes per (channel, alert)
delivered. Each worker stores where it stopped reading (``nlog_feed``), so a restart reads
only what is new, and rows older than the retention are skipped (and pruned from ``nlog`` as
local rows are).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import orjson

from .store import Tx

if TYPE_CHECKING:
    from ..config import KafkaConfig

log = logging.getLogger("streamproc.notify")

FINAL_STATES = ("sent", "fallback", "dead")
MAX_CLOCK_SKEW = 300.0  # seconds a record's time may be ahead of this worker's clock

# a newer record of (channel, fingerprint, status) replaces an older one, never the reverse
_UPSERT = (
    "INSERT INTO nlog VALUES (?,?,?,?,?) ON CONFLICT (channel, fp, status) DO UPDATE "
    "SET state = excluded.state, at = excluded.at WHERE excluded.at > nlog.at"
)


class SharedNotificationLog:
    def __init__(self, cfg: KafkaConfig, producer: Any, *, retention: float) -> None:
        from ..storage.tables import TopicTable

        self.cfg = cfg
        self.topic = cfg.topics.notifications
        self.producer = producer
        self.retention = retention
        self.table = TopicTable(
            cfg, self.topic, self._apply, name="notifications", start_at=self._start_at
        )
        self.db: sqlite3.Connection | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self.published = 0
        self.applied = 0

    async def ensure_topic(self) -> None:
        from ..ops.broker import ensure_topics

        await ensure_topics(
            self.cfg.client_kwargs(),
            {self.topic: 3},
            configs={self.topic: {"retention.ms": str(int(self.retention * 1000))}},
        )

    async def start(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS nlog_feed (partition INTEGER PRIMARY KEY, "
            "next INTEGER NOT NULL)"
        )
        await self.ensure_topic()
        await self.table.start()
        log.info(
            "notify: shared notification log %s read (%d records)", self.topic, self.table.records
        )

    def _start_at(self) -> dict[int, int]:
        assert self.db is not None
        return {int(p): int(n) for p, n in self.db.execute("SELECT partition, next FROM nlog_feed")}

    def _apply(self, records: list[Any]) -> None:
        assert self.db is not None
        now = time.time()
        oldest = now - self.retention
        rows = []
        feed: dict[int, int] = {}
        for r in records:
            feed[r.partition] = r.offset + 1
            try:
                ch, fp, status, state, at = orjson.loads(r.value)
                if state not in FINAL_STATES:
                    raise ValueError(state)
                if float(at) > now + MAX_CLOCK_SKEW:  # would dedup, unpruned, for ever
                    raise ValueError("time in the future")
            except Exception as exc:  # noqa: BLE001 - a foreign record must not stop us
                log.warning(
                    "notify: unreadable record in %s[%d]@%d skipped (%s)",
                    r.topic,
                    r.partition,
                    r.offset,
                    type(exc).__name__,
                )
                continue
            if float(at) >= oldest:
                rows.append((str(ch), str(fp), str(status), state, float(at)))
        with Tx(self.db) as db:
            db.executemany(_UPSERT, rows)
            db.executemany("INSERT OR REPLACE INTO nlog_feed VALUES (?,?)", feed.items())
        self.applied += len(rows)

    def publish(self, rows: list[tuple[str, str, str, str]], at: float) -> None:
        """(channel, fingerprint, status, state) rows just committed to the local nlog."""
        rows = [r for r in rows if r[3] in FINAL_STATES]
        if not rows:
            return
        task = asyncio.ensure_future(self._send(rows, at))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, rows: list[tuple[str, str, str, str]], at: float) -> None:
        try:
            futures = [
                await self.producer.send(
                    self.topic, orjson.dumps([ch, fp, st, state, at]), key=fp.encode()
                )
                for ch, fp, st, state in rows
            ]
            await asyncio.gather(*futures)
            self.published += len(rows)
        except Exception as exc:  # noqa: BLE001 - the local log still has them
            log.warning(
                "notify: could not publish %d notification-log record(s) to %s (%s); "
                "another worker that re-reads those alerts may notify again",
                len(rows),
                self.topic,
                type(exc).__name__,
            )

    async def caught_up(self) -> None:
        await self.table.caught_up()

    async def stop(self) -> None:
        if self._sends:
            await asyncio.wait(list(self._sends), timeout=5)
        await self.table.stop()
