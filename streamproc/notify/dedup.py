"""Dedup against the notification log: the same (fingerprint, status) is not sent twice to a
channel within ``repeat_interval``, across restarts. The ``dedup`` stage (order: pipeline.py).

The log (table ``nlog``) holds one row per (channel, fingerprint, status) with a state:
``queued`` (in the outbox), ``sent``, ``fallback`` (delivered through the fallback channel) or
``dead`` (dead-lettered). Anything queued, or sent/dead-lettered within repeat_interval, is a
duplicate. Rows older than the retention (7 days) are pruned; the log also answers "where did
the firing alert go?" so its resolve can follow it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ..alerts import Alert
from .stage import Batch, Routed

_CHUNK = 500  # fingerprints per IN (...) query, well under SQLite's variable limit


class Dedup:
    def __init__(self, db: sqlite3.Connection, *, repeat_interval: float) -> None:
        self.db = db
        self.repeat_interval = repeat_interval

    def seen(self, channel: str, alert: Alert, now: float) -> bool:
        return (channel, alert.fingerprint, alert.status) in self.known(
            [(channel, alert.fingerprint, alert.status)], now
        )

    def known(self, keys: Iterable[tuple[str, str, str]], now: float) -> set[tuple[str, str, str]]:
        """Of these (channel, fingerprint, status), the ones the log makes duplicates: one
        query per 500 fingerprints instead of one per key (submit and flush are batches)."""
        wanted = set(keys)
        fps = list({fp for _ch, fp, _st in wanted})
        hits: set[tuple[str, str, str]] = set()
        since = now - self.repeat_interval
        for i in range(0, len(fps), _CHUNK):
            chunk = fps[i : i + _CHUNK]
            for ch, fp, st, state, at in self.db.execute(
                "SELECT channel, fp, status, state, at FROM nlog WHERE fp IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            ):
                if (state == "queued" or at > since) and (ch, fp, st) in wanted:
                    hits.add((ch, fp, st))
        return hits

    def exec(
        self, channel: str, alerts: list[Alert], now: float
    ) -> tuple[list[Alert], list[Alert]]:
        """Stage (inside the flush transaction): (new alerts, now ``queued``; duplicates)."""
        return self.exec_many([(channel, alerts)], now)[0]

    def exec_many(
        self, groups: list[tuple[str, list[Alert]]], now: float
    ) -> list[tuple[list[Alert], list[Alert]]]:
        """``exec`` for every flushed group at once: one lookup, one executemany."""
        taken = self.known(
            [(ch, a.fingerprint, a.status) for ch, alerts in groups for a in alerts], now
        )
        out: list[tuple[list[Alert], list[Alert]]] = []
        queued: list[tuple[str, str, str, float]] = []
        for ch, alerts in groups:
            fresh: list[Alert] = []
            dupes: list[Alert] = []
            for a in alerts:
                k = (ch, a.fingerprint, a.status)
                if k in taken:
                    dupes.append(a)
                    continue
                taken.add(k)  # the same alert in a second group of this flush is a duplicate
                queued.append((ch, a.fingerprint, a.status, now))
                fresh.append(a)
            out.append((fresh, dupes))
        self.db.executemany("INSERT OR REPLACE INTO nlog VALUES (?,?,?,'queued',?)", queued)
        return out

    def mark(self, channel: str, keys: Iterable[tuple[str, str]], state: str, now: float) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO nlog VALUES (?,?,?,?,?)",
            [(channel, fp, status, state, now) for fp, status in keys],
        )

    def mark_many(self, rows: Iterable[tuple[str, str, str, str]], now: float) -> None:
        """(channel, fingerprint, status, state) rows, all in one executemany."""
        self.db.executemany(
            "INSERT OR REPLACE INTO nlog VALUES (?,?,?,?,?)",
            [(ch, fp, status, state, now) for ch, fp, status, state in rows],
        )

    def channels_of(self, fingerprint: str, status: str = "firing") -> list[str]:
        return [
            c
            for (c,) in self.db.execute(
                "SELECT channel FROM nlog WHERE fp=? AND status=? AND state != 'dead'",
                (fingerprint, status),
            )
        ]

    def prune(self, now: float, retention: float) -> int:
        return self.db.execute(
            "DELETE FROM nlog WHERE state != 'queued' AND at < ?",
            (now - max(retention, self.repeat_interval),),
        ).rowcount


class DedupStage:
    """``dedup`` on arrival: drop what the log already has for that channel, so a batch the
    alert log re-delivers after a crash does not wait in a group again. Writes nothing."""

    name = "dedup"

    def __init__(self, dedup: Dedup) -> None:
        self.dedup = dedup

    async def run(self, batch: Batch[Routed]) -> Batch[Routed]:
        dupes = self.dedup.known(
            [(r.channel, r.alert.fingerprint, r.alert.status) for r in batch.items], batch.now
        )
        todo = [
            r for r in batch.items if (r.channel, r.alert.fingerprint, r.alert.status) not in dupes
        ]
        batch.counts["deduplicated"] += len(batch.items) - len(todo)
        return batch.next(todo)


class DedupQueueStage:
    """``dedup`` when a group flushes: drop duplicates and mark the rest ``queued`` in the
    log (one lookup, one executemany for the whole flush)."""

    name = "dedup"

    def __init__(self, dedup: Dedup) -> None:
        self.dedup = dedup

    async def run(self, batch: Batch[Routed]) -> Batch[Routed]:
        # one "group" per item: exec_many shares its lookup across them, so the same alert
        # twice in a flush (two groups of one channel) is queued once
        answers = self.dedup.exec_many([(r.channel, [r.alert]) for r in batch.items], batch.now)
        fresh = [r for r, (new, _dupes) in zip(batch.items, answers, strict=True) if new]
        batch.counts["deduplicated"] += len(batch.items) - len(fresh)
        return batch.next(fresh)
