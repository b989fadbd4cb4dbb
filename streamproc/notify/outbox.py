"""The outbox: messages (one per flushed group) waiting for delivery on one channel.

A row holds the group's alerts, not rendered text, so a digest can re-render several rows
and a template change applies to what is still queued. Rows leave the outbox only in the
same transaction that records their fate in the notification log (sent / fallback / dead).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

import orjson

from ..alerts import Alert
from .stage import Batch, Routed


@dataclass(slots=True)
class OutboxRow:
    id: int
    channel: str
    gkey: str
    created: float
    attempts: int
    next_at: float
    last_error: str
    origin: str | None  # the channel it was meant for, when now on the fallback
    payload: bytes = field(repr=False)

    @property
    def alerts(self) -> list[Alert]:
        return [Alert.from_dict(d) for d in orjson.loads(self.payload)]

    @property
    def home(self) -> str:
        """The channel the notification log entries belong to."""
        return self.origin or self.channel


_COLS = "id, channel, gkey, created, attempts, next_at, last_error, origin, members"


class Outbox:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def enqueue_many(
        self, rows: list[tuple[str, str, list[Alert], str | None]], now: float
    ) -> None:
        """(channel, group key, alerts, origin) for every group of a flush, one executemany."""
        self.db.executemany(
            "INSERT INTO outbox (channel, gkey, created, attempts, next_at, last_error, origin,"
            " members) VALUES (?,?,?,0,?,'',?,?)",
            [
                (
                    channel,
                    gkey,
                    now,
                    now,
                    origin,
                    orjson.dumps([a.to_dict() for a in alerts], default=str),
                )
                for channel, gkey, alerts, origin in rows
            ],
        )

    def due(
        self, channel: str, now: float, *, exclude: Iterable[int] = (), limit: int = 100
    ) -> list[OutboxRow]:
        skip = set(exclude)
        rows = self.db.execute(
            f"SELECT {_COLS} FROM outbox WHERE channel=? AND next_at<=? ORDER BY id LIMIT ?",
            (channel, now, limit + len(skip)),
        ).fetchall()
        return [OutboxRow(*r) for r in rows if r[0] not in skip][:limit]

    def next_due(self, channel: str, *, exclude: Iterable[int] = ()) -> float | None:
        skip = list(exclude)
        if skip:
            marks = ",".join("?" * len(skip))
            row = self.db.execute(
                f"SELECT MIN(next_at) FROM outbox WHERE channel=? AND id NOT IN ({marks})",
                (channel, *skip),
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT MIN(next_at) FROM outbox WHERE channel=?", (channel,)
            ).fetchone()
        return None if row is None else row[0]

    def remove(self, ids: Iterable[int]) -> None:
        self.db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in ids])

    def failed(self, row: OutboxRow, *, error: str, next_at: float, count: bool = True) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts=attempts+?, next_at=?, last_error=? WHERE id=?",
            (1 if count else 0, next_at, error[:500], row.id),
        )

    def move(self, row: OutboxRow, channel: str, now: float) -> None:
        """Hand a row to the fallback channel: attempts and age start again there."""
        self.db.execute(
            "UPDATE outbox SET channel=?, origin=?, attempts=0, created=?, next_at=? WHERE id=?",
            (channel, row.home, now, now, row.id),
        )

    def channels(self) -> set[str]:
        return {c for (c,) in self.db.execute("SELECT DISTINCT channel FROM outbox")}

    def count(self, channel: str | None = None) -> int:
        if channel is None:
            return int(self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        return int(
            self.db.execute("SELECT COUNT(*) FROM outbox WHERE channel=?", (channel,)).fetchone()[0]
        )


class OutboxStage:
    """``outbox``: one row per flushed group (its alerts that are left), for the channel's
    worker to send. A group whose channel was removed goes to the first fallback channel;
    with none, it stays unsent (``Notifier._adopt_orphans`` handles it at the next start)."""

    name = "outbox"

    def __init__(
        self,
        outbox: Outbox,
        channels: Collection[str],
        fallback: str | None,
        wake: Callable[[str], None],
    ) -> None:
        self.outbox = outbox
        self.channels = channels
        self.fallback = fallback
        self.wake = wake

    async def run(self, batch: Batch[Routed]) -> Batch[Routed]:
        groups: dict[tuple[str, str], list[Alert]] = {}
        for r in batch.items:
            groups.setdefault((r.channel, r.gkey), []).append(r.alert)
        rows: list[tuple[str, str, list[Alert], str | None]] = []
        touched: set[str] = set()
        for (cid, gkey), alerts in groups.items():
            target = cid if cid in self.channels else self.fallback
            if target is None:  # channel removed and no fallback
                rows.append((cid, gkey, alerts, None))
                continue
            rows.append((target, gkey, alerts, None if target == cid else cid))
            batch.counts["messages_queued"] += 1
            touched.add(target)
        self.outbox.enqueue_many(rows, batch.now)
        for cid in touched:
            self.wake(cid)
        return batch.next([])
