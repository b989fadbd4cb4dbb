"""Dedup against the notification log: the same (fingerprint, status) is not sent twice to a
channel within ``repeat_interval``, across restarts. Stage 4 of notify.

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


class Dedup:
    def __init__(self, db: sqlite3.Connection, *, repeat_interval: float) -> None:
        self.db = db
        self.repeat_interval = repeat_interval

    def seen(self, channel: str, alert: Alert, now: float) -> bool:
        row = self.db.execute("SELECT state, at FROM nlog WHERE channel=? AND fp=? AND status=?",
                              (channel, alert.fingerprint, alert.status)).fetchone()
        return row is not None and (row[0] == "queued" or row[1] > now - self.repeat_interval)

    def exec(self, channel: str, alerts: list[Alert], now: float) -> tuple[list[Alert],
                                                                          list[Alert]]:
        """Stage (inside the flush transaction): (new alerts, now ``queued``; duplicates)."""
        fresh: list[Alert] = []
        dupes: list[Alert] = []
        for a in alerts:
            if self.seen(channel, a, now):
                dupes.append(a)
                continue
            self.db.execute("INSERT OR REPLACE INTO nlog VALUES (?,?,?,'queued',?)",
                            (channel, a.fingerprint, a.status, now))
            fresh.append(a)
        return fresh, dupes

    def mark(self, channel: str, keys: Iterable[tuple[str, str]], state: str, now: float) -> None:
        self.db.executemany("INSERT OR REPLACE INTO nlog VALUES (?,?,?,?,?)",
                            [(channel, fp, status, state, now) for fp, status in keys])

    def channels_of(self, fingerprint: str, status: str = "firing") -> list[str]:
        return [c for (c,) in self.db.execute(
            "SELECT channel FROM nlog WHERE fp=? AND status=? AND state != 'dead'",
            (fingerprint, status))]

    def prune(self, now: float, retention: float) -> int:
        return self.db.execute("DELETE FROM nlog WHERE state != 'queued' AND at < ?",
                               (now - max(retention, self.repeat_interval),)).rowcount
