"""Grouping: alerts for one channel that share the ``group_by`` labels become one message.

The three timers, on one group (``group_by: [kind]``, one channel), defaults in brackets:

    alerts in:  a1   a2 a3              a4        a5                          a6
    time:       0s   5s 12s            2m        4m                           9m
                |--group_wait [30s]-->|
                                      flush #1: "3 brute_force alerts ..." (a1 a2 a3)
                                      |-------- group_interval [5m] -------->|
                                                                             flush #2: a4 a5
                                                                             |--- 5m --->| idle:
                                                 the group ends; a6 (9m+) opens a new one and
                                                 waits group_wait again
    repeat_interval [4h] is a different clock: per (channel, fingerprint, status), in the
    notification log (dedup.py). a1 submitted again at 1h is not sent; at 4h+ it is.

- ``group_wait``: how long the first alert of a new group waits for company. Longer: fewer,
  fuller messages; shorter: faster first notice.
- ``group_interval``: after a flush, new alerts of the same group are held until this long
  after that flush, so a burst becomes one message per interval, not one per alert.
- ``repeat_interval``: the same alert (fingerprint + status) is not sent to the same channel
  again within it, even across restarts. (Unlike Alertmanager, there are no reminder
  re-sends: streamproc's detectors emit an alert once per incident; a re-fire that reuses the
  fingerprint after repeat_interval is sent again.)

Groups are per channel, so each channel's timers, dedup and rate limit are independent.
Group rows and their members live in SQLite (store.py): a group waiting for its timer is
already durable, which is what lets ``submit()`` return before anything is sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

import orjson

from ..alerts import Alert
from .silences import match_labels


class Grouper:
    """Stage: put alerts into per-channel groups and say which groups are due to flush."""

    def __init__(self, db: sqlite3.Connection, *, group_by: Iterable[str], group_wait: float,
                 group_interval: float,
                 channel_timers: Callable[[str], tuple[float, float]] | None = None) -> None:
        self.db = db
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        # channel id -> (group_wait, group_interval); channels may override the defaults
        self._timers = channel_timers or (lambda _ch: (group_wait, group_interval))

    def key(self, alert: Alert) -> tuple[str, dict[str, str]]:
        labels = match_labels(alert)
        picked = {name: labels.get(name, "") for name in self.group_by}
        return orjson.dumps(picked, option=orjson.OPT_SORT_KEYS).decode(), picked

    def add(self, alert: Alert, channel: str, now: float) -> bool:
        """Add to the channel's group (call inside a transaction). False if already there."""
        gkey, labels = self.key(alert)
        cur = self.db.execute(
            "INSERT OR IGNORE INTO group_members VALUES (?,?,?,?,?,?)",
            (channel, gkey, alert.fingerprint, alert.status, alert.to_json(), now))
        if cur.rowcount == 0:
            return False
        wait, interval = self._timers(channel)
        row = self.db.execute("SELECT flush_at, last_flush FROM groups WHERE channel=? AND gkey=?",
                              (channel, gkey)).fetchone()
        if row is None:
            self.db.execute("INSERT INTO groups VALUES (?,?,?,?,?,NULL)",
                            (channel, gkey, orjson.dumps(labels).decode(), now, now + wait))
        elif row[0] is None:  # idle since its last flush
            last = row[1]
            if last is None or now >= last + interval:  # long idle: a fresh group
                self.db.execute("UPDATE groups SET created=?, flush_at=? "
                                "WHERE channel=? AND gkey=?", (now, now + wait, channel, gkey))
            else:  # the next group_interval tick
                self.db.execute("UPDATE groups SET flush_at=? WHERE channel=? AND gkey=?",
                                (last + interval, channel, gkey))
        return True

    def due(self, now: float, limit: int = 500) -> list[tuple[str, str]]:
        return [(c, g) for c, g in self.db.execute(
            "SELECT channel, gkey FROM groups WHERE flush_at IS NOT NULL AND flush_at <= ? "
            "ORDER BY flush_at LIMIT ?", (now, limit))]

    def next_due(self) -> float | None:
        row = self.db.execute("SELECT MIN(flush_at) FROM groups").fetchone()
        return None if row is None else row[0]

    def take(self, channel: str, gkey: str, now: float) -> list[Alert]:
        """Remove and return a group's members; start its group_interval (in a transaction)."""
        rows = self.db.execute(
            "SELECT payload FROM group_members WHERE channel=? AND gkey=? ORDER BY added",
            (channel, gkey)).fetchall()
        self.db.execute("DELETE FROM group_members WHERE channel=? AND gkey=?", (channel, gkey))
        self.db.execute("UPDATE groups SET flush_at=NULL, last_flush=? WHERE channel=? AND gkey=?",
                        (now, channel, gkey))
        return [Alert.from_json(p) for (p,) in rows]

    def flush_all(self, now: float) -> int:
        """Make every waiting group due now (shutdown with flush_on_close)."""
        return self.db.execute("UPDATE groups SET flush_at=? WHERE flush_at > ?",
                               (now, now)).rowcount

    def apply_timers(self, channels: Iterable[str]) -> None:
        """After a restart with new settings, no group waits longer than its group_wait now."""
        for ch in channels:
            wait, _ = self._timers(ch)
            self.db.execute("UPDATE groups SET flush_at = MIN(flush_at, created + ?) "
                            "WHERE channel=? AND flush_at IS NOT NULL", (wait, ch))

    def gc(self, now: float) -> int:
        """Drop groups idle for longer than their group_interval (they restart fresh)."""
        return self.db.execute(
            "DELETE FROM groups WHERE flush_at IS NULL AND last_flush < ?",
            (now - max(self.group_interval, 1.0) * 2,)).rowcount

    def waiting_for(self, fingerprint: str, status: str) -> list[str]:
        return [c for (c,) in self.db.execute(
            "SELECT DISTINCT channel FROM group_members WHERE fp=? AND status=?",
            (fingerprint, status))]
