"""Firing alerts on Alertmanager channels: what was sent, and what is due to be re-sent.

Alertmanager forgets an alert at its ``endsAt``. Prometheus therefore re-sends every active
alert every ``resend_delay`` (1m) with ``endsAt = now + 4 * resend_delay``: if Prometheus
dies, Alertmanager resolves the alert on its own four intervals later. An ``alertmanager://``
channel does the same for the alerts it sent, on a time line like this (``resend: 1m``,
``resend_for: 1h``)::

    t=0     firing sent (outbox, like any message)  endsAt 0+4m   row (channel, fp) written
    t=1m    re-sent by the notifier's resend task   endsAt 1m+4m  sent_at = 1m
    t=2m    re-sent                                 endsAt 2m+4m
    ...
    t=60m   last re-send (resend_for is over)       endsAt 64m    Alertmanager resolves at 64m
    any t:  the resolve is submitted: re-sends stop at once (it waits in a group or the
            outbox); it is sent with endsAt = the resolve time, and the row is deleted

``resend_for`` exists because most streamproc detectors report an incident once and never
resolve it (brute_force, sql_injection...): without it such an alert would fire forever.

The rows live in ``notify.db`` (table ``am_firing``), so a restarted worker goes on
re-sending what it had sent. A row is written in the same transaction that marks the
firing alert ``sent``. Rows of ``alertmanager-webhook`` channels are never re-sent; they
keep the firing time, which a later resolve reports as its ``startsAt``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import orjson

from ..alerts import Alert


class FiringTable:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def record(self, channel: str, alerts: Iterable[Alert], now: float) -> None:
        """Alerts just sent to ``channel``: a firing one is (still) firing there, a resolved
        one no longer is. Call inside a transaction."""
        firing, resolved = [], []
        for a in alerts:
            if a.status == "resolved":
                resolved.append((channel, a.fingerprint))
            else:
                firing.append(
                    (
                        channel,
                        a.fingerprint,
                        a.event_time,
                        now,
                        now,
                        orjson.dumps(a.to_dict(), default=str),
                    )
                )
        if firing:
            # a firing alert whose resolve was already sent (they can cross in a retry)
            # must not come back to life: no row for it
            self.db.executemany(
                "INSERT INTO am_firing (channel, fp, starts, first_sent, sent_at, payload) "
                "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM nlog WHERE "
                "channel = ?1 AND fp = ?2 AND status = 'resolved' AND state != 'queued') "
                "ON CONFLICT (channel, fp) DO UPDATE SET sent_at = excluded.sent_at",
                firing,
            )
        if resolved:
            self.db.executemany("DELETE FROM am_firing WHERE channel = ? AND fp = ?", resolved)

    def starts(self, channel: str, fps: Iterable[str]) -> dict[str, float]:
        """When the firing alerts of these fingerprints started, where ``channel`` sent them."""
        wanted = list(dict.fromkeys(fps))
        out: dict[str, float] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                self.db.execute(
                    f"SELECT fp, starts FROM am_firing WHERE channel = ? AND fp IN ({marks})",
                    [channel, *chunk],
                ).fetchall()
            )
        return out

    def resolve_sent(self, channel: str, fps: Iterable[str]) -> set[str]:
        """Fingerprints whose resolve ``channel`` already delivered (or gave up on)."""
        wanted = list(dict.fromkeys(fps))
        out: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                fp
                for (fp,) in self.db.execute(
                    f"SELECT fp FROM nlog WHERE channel = ? AND status = 'resolved' AND "
                    f"state != 'queued' AND fp IN ({marks})",
                    [channel, *chunk],
                )
            )
        return out

    def due(
        self, channel: str, now: float, *, resend: float, resend_for: float, limit: int = 1000
    ) -> list[tuple[Alert, float]]:
        """Firing alerts of ``channel`` last sent ``resend`` ago or more, first sent less
        than ``resend_for`` ago, whose resolve is not on its way (grouped, queued or sent);
        with their firing times. Oldest first."""
        rows = self.db.execute(
            "SELECT payload, starts FROM am_firing f WHERE channel = ?1 AND sent_at <= ?2 "
            "AND first_sent > ?3 AND NOT EXISTS (SELECT 1 FROM nlog n WHERE n.channel = ?1 "
            "AND n.fp = f.fp AND n.status = 'resolved') AND NOT EXISTS (SELECT 1 FROM "
            "group_members m WHERE m.channel = ?1 AND m.fp = f.fp AND m.status = 'resolved') "
            "ORDER BY sent_at LIMIT ?4",
            (channel, now - resend, now - resend_for, limit),
        )
        return [(Alert.from_dict(orjson.loads(p)), float(s)) for p, s in rows]

    def resent(self, channel: str, fps: Iterable[str], now: float) -> None:
        self.db.executemany(
            "UPDATE am_firing SET sent_at = ? WHERE channel = ? AND fp = ?",
            [(now, channel, fp) for fp in fps],
        )

    def prune(self, now: float, retention: float) -> None:
        """Forget rows not sent for ``retention`` (resends over, no resolve ever came)."""
        self.db.execute("DELETE FROM am_firing WHERE sent_at < ?", (now - retention,))
