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
from typing import Any

import orjson

from ..alerts import Alert
from .silences import match_labels
from .stage import Batch, Routed

_CHUNK = 500  # values per IN (...) query, well under SQLite's variable limit


def _first(pair: tuple[float, bytes]) -> float:
    return pair[0]


class Grouper:
    """Stage: put alerts into per-channel groups and say which groups are due to flush."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        group_by: Iterable[str],
        group_wait: float,
        group_interval: float,
        channel_timers: Callable[[str], tuple[float, float]] | None = None,
    ) -> None:
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
        return self.add_many([(alert, channel)], now)[0]

    def add_many(self, items: list[tuple[Alert, str]], now: float) -> list[bool]:
        """``add`` for a whole submit() batch: one lookup of the members already waiting,
        one of the groups they join, then one executemany per kind of write (at 1,000
        deliveries/s, three statements per alert and channel were a fifth of the time)."""
        keyed = [(a, ch, *self.key(a)) for a, ch in items]
        waiting: set[tuple[str, str, str, str]] = set()
        fps = list({a.fingerprint for a, _ch in items})
        for i in range(0, len(fps), _CHUNK):
            chunk = fps[i : i + _CHUNK]
            waiting.update(
                self.db.execute(
                    "SELECT channel, gkey, fp, status FROM group_members WHERE fp IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                )
            )
        added: list[bool] = []
        members = []
        joined: dict[tuple[str, str], dict[str, str]] = {}  # groups that got a new member
        for a, ch, gkey, labels in keyed:
            k = (ch, gkey, a.fingerprint, a.status)
            if k in waiting:
                added.append(False)
                continue
            waiting.add(k)
            members.append((*k, a.to_json(), now))
            joined.setdefault((ch, gkey), labels)
            added.append(True)
        if not members:
            return added
        self.db.executemany("INSERT OR IGNORE INTO group_members VALUES (?,?,?,?,?,?)", members)
        rows = self._rows(list(joined))
        new, fresh, next_tick = [], [], []
        # Only a group's first new member changes its timers (it sets flush_at), so each
        # group gets at most one write, whatever the number of members in the batch.
        for (ch, gkey), labels in joined.items():
            wait, interval = self._timers(ch)
            row = rows.get((ch, gkey))
            if row is None:
                new.append((ch, gkey, orjson.dumps(labels).decode(), now, now + wait))
            elif row[0] is None:  # idle since its last flush
                last = row[1]
                if last is None or now >= last + interval:  # long idle: a fresh group
                    fresh.append((now, now + wait, ch, gkey))
                else:  # the next group_interval tick
                    next_tick.append((last + interval, ch, gkey))
        self.db.executemany("INSERT INTO groups VALUES (?,?,?,?,?,NULL)", new)
        self.db.executemany(
            "UPDATE groups SET created=?, flush_at=? WHERE channel=? AND gkey=?", fresh
        )
        self.db.executemany("UPDATE groups SET flush_at=? WHERE channel=? AND gkey=?", next_tick)
        return added

    def _rows(
        self, groups: list[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        """(flush_at, last_flush) of those groups that exist, one query per channel."""
        return {
            (ch, gkey): (flush_at, last)
            for ch, (gkey, flush_at, last) in self._select_by_channel(
                "groups", "flush_at, last_flush", groups
            )
        }

    def _select_by_channel(
        self, table: str, columns: str, groups: list[tuple[str, str]]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        """(channel, (gkey, *columns)) rows of ``table`` for ``groups``: one IN query per
        channel and chunk instead of one query per group."""
        by_channel: dict[str, list[str]] = {}
        for ch, gkey in groups:
            by_channel.setdefault(ch, []).append(gkey)
        out: list[tuple[str, tuple[Any, ...]]] = []
        for ch, gkeys in by_channel.items():
            for i in range(0, len(gkeys), _CHUNK):
                chunk = gkeys[i : i + _CHUNK]
                out.extend(
                    (ch, row)
                    for row in self.db.execute(
                        f"SELECT gkey, {columns} FROM {table} WHERE channel=? AND gkey IN"
                        f" ({','.join('?' * len(chunk))})",
                        (ch, *chunk),
                    )
                )
        return out

    def due(self, now: float, limit: int = 500) -> list[tuple[str, str]]:
        return [
            (c, g)
            for c, g in self.db.execute(
                "SELECT channel, gkey FROM groups WHERE flush_at IS NOT NULL AND flush_at <= ? "
                "ORDER BY flush_at LIMIT ?",
                (now, limit),
            )
        ]

    def next_due(self) -> float | None:
        row = self.db.execute("SELECT MIN(flush_at) FROM groups").fetchone()
        return None if row is None else row[0]

    def take(self, channel: str, gkey: str, now: float) -> list[Alert]:
        """Remove and return a group's members; start its group_interval (in a transaction)."""
        return self.take_many([(channel, gkey)], now)[0]

    def take_many(self, groups: list[tuple[str, str]], now: float) -> list[list[Alert]]:
        """``take`` for every due group of a flush: one read per channel, two executemany."""
        found: dict[tuple[str, str], list[tuple[float, bytes]]] = {}
        for ch, (gkey, payload, added) in self._select_by_channel(
            "group_members", "payload, added", groups
        ):
            found.setdefault((ch, gkey), []).append((added, payload))
        self.db.executemany("DELETE FROM group_members WHERE channel=? AND gkey=?", groups)
        self.db.executemany(
            "UPDATE groups SET flush_at=NULL, last_flush=? WHERE channel=? AND gkey=?",
            [(now, ch, gkey) for ch, gkey in groups],
        )
        return [
            [Alert.from_json(p) for _at, p in sorted(found.get(g, ()), key=_first)] for g in groups
        ]

    def flush_all(self, now: float) -> int:
        """Make every waiting group due now (shutdown with flush_on_close)."""
        return self.db.execute(
            "UPDATE groups SET flush_at=? WHERE flush_at > ?", (now, now)
        ).rowcount

    def apply_timers(self, channels: Iterable[str]) -> None:
        """After a restart with new settings, no group waits longer than its group_wait now."""
        for ch in channels:
            wait, _ = self._timers(ch)
            self.db.execute(
                "UPDATE groups SET flush_at = MIN(flush_at, created + ?) "
                "WHERE channel=? AND flush_at IS NOT NULL",
                (wait, ch),
            )

    def gc(self, now: float) -> int:
        """Drop groups idle for longer than their group_interval (they restart fresh)."""
        return self.db.execute(
            "DELETE FROM groups WHERE flush_at IS NULL AND last_flush < ?",
            (now - max(self.group_interval, 1.0) * 2,),
        ).rowcount

    def waiting_for(self, fingerprint: str, status: str) -> list[str]:
        return [
            c
            for (c,) in self.db.execute(
                "SELECT DISTINCT channel FROM group_members WHERE fp=? AND status=?",
                (fingerprint, status),
            )
        ]


class GroupStage:
    """``group``: park each routed alert in its channel's group, durably. Nothing goes on
    now; the group's timers bring it back (``take``) when it is due to flush."""

    name = "group"

    def __init__(self, grouper: Grouper) -> None:
        self.grouper = grouper

    async def run(self, batch: Batch[Routed]) -> Batch[Routed]:
        added = self.grouper.add_many([(r.alert, r.channel) for r in batch.items], batch.now)
        batch.counts["grouped"] += sum(added)
        return batch.next([])

    def take(self, due: list[tuple[str, str]], now: float) -> Batch[Routed]:
        """The members of these due groups, in group order, as the flush's batch."""
        taken = self.grouper.take_many(due, now)
        return Batch(
            now,
            [
                Routed(a, channel, gkey)
                for (channel, gkey), alerts in zip(due, taken, strict=True)
                for a in alerts
            ],
        )
