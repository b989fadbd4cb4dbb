"""The notify state: one SQLite file under ``state_dir`` (``notify.db``), WAL mode.

Tables, each owned by one stage:

    silences       silences.py  matchers + expiry; written by `streamproc silence` too
                                (without Kafka: with Kafka they live in a topic)
    inhibitors     inhibit.py   firing alerts that mute others, with an expiry
    groups         group.py     one row per (channel, group key): its timers
    group_members  group.py     alerts waiting in a group (the durable hand-off of submit())
    nlog           dedup.py     notification log: (channel, fingerprint, status) -> state, at
    outbox         outbox.py    rendered-later messages waiting for, or in, delivery
    nlog_feed      sharedlog.py how far the shared notification log (Kafka) has been read
    am_firing      resend.py    firing alerts sent to Alertmanager channels: re-sent until
                                resolved (or resend_for), and their start for the resolve
    active_alerts  active.py    alerts active now, for the Alertmanager API (without Kafka)

Order of operations and what a crash leaves behind:
1. ``submit()`` writes the alerts into group_members in one transaction and returns; the
   runtime then commits the alert-log offset. Crash before the commit: the alert log
   re-delivers the batch; members are keyed by (channel, group, fingerprint, status), and the
   dedup stage drops what the notification log already has.
2. A group flush moves members into one outbox row and marks them ``queued`` in nlog, in one
   transaction. Crash: either still members, or already an outbox row; never both, never none.
3. A successful send marks nlog ``sent`` and deletes the outbox row, in one transaction.
   Crash between the HTTP 2xx and this commit: the row is sent again after restart (the one
   at-least-once window; webhooks have no idempotency key to close it).
   For an Alertmanager channel the same transaction writes (firing) or deletes (resolved)
   its am_firing row.

``synchronous=NORMAL`` in WAL mode survives a killed process (not a power cut, which may
lose the last transactions); ``busy_timeout`` lets the CLI write silences while we run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..storage.files import private_dir, private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts REAL NOT NULL, ends REAL NOT NULL,
    author TEXT NOT NULL DEFAULT '', comment TEXT NOT NULL DEFAULT '', created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inhibitors (
    fp TEXT NOT NULL, rule INTEGER NOT NULL, eq TEXT NOT NULL, severity INTEGER NOT NULL,
    expires REAL NOT NULL, PRIMARY KEY (fp, rule));
CREATE INDEX IF NOT EXISTS inhibitors_eq ON inhibitors (rule, eq);
CREATE TABLE IF NOT EXISTS groups (
    channel TEXT NOT NULL, gkey TEXT NOT NULL, labels TEXT NOT NULL, created REAL NOT NULL,
    flush_at REAL, last_flush REAL, PRIMARY KEY (channel, gkey));
CREATE INDEX IF NOT EXISTS groups_due ON groups (flush_at);
CREATE TABLE IF NOT EXISTS group_members (
    channel TEXT NOT NULL, gkey TEXT NOT NULL, fp TEXT NOT NULL, status TEXT NOT NULL,
    payload BLOB NOT NULL, added REAL NOT NULL, PRIMARY KEY (channel, gkey, fp, status));
CREATE INDEX IF NOT EXISTS members_fp ON group_members (fp, status);
CREATE TABLE IF NOT EXISTS nlog (
    channel TEXT NOT NULL, fp TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (channel, fp, status));
CREATE INDEX IF NOT EXISTS nlog_fp ON nlog (fp, status);
CREATE INDEX IF NOT EXISTS nlog_at ON nlog (at);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, gkey TEXT NOT NULL,
    created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '', origin TEXT, members BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (channel, next_at, id);
CREATE TABLE IF NOT EXISTS am_firing (
    channel TEXT NOT NULL, fp TEXT NOT NULL, starts REAL NOT NULL, first_sent REAL NOT NULL,
    sent_at REAL NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (channel, fp));
"""

DB_NAME = "notify.db"


def open_db(state_dir: Path | str) -> sqlite3.Connection:
    """Open (creating) ``state_dir/notify.db``; autocommit mode, transactions are explicit."""
    path = private_dir(state_dir)
    # 0600: the database holds alert payloads and recipients' addresses.
    db = sqlite3.connect(
        private_file(path / DB_NAME), isolation_level=None, check_same_thread=False, timeout=10.0
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    db.executescript(SCHEMA)
    return db


class Tx:
    """``with Tx(db):`` one IMMEDIATE transaction, committed on success, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
