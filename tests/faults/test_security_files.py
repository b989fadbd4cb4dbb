"""Files streamproc writes (the notification log with alert payloads and recipients, the alert
log, checkpoints, alert and dead-letter JSONL files) are readable by their owner only: 0600,
and the folders it creates for them 0700, whatever the umask."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import apprise
import pytest

from streamproc.config import parse_config_text
from streamproc.decode import DeadLetter
from streamproc.notify import plugins
from streamproc.notify.store import open_db
from streamproc.notify.undelivered import DeadLetters
from streamproc.pipeline.runtime import Judge
from streamproc.storage.alertlog import SqliteAlertLog
from streamproc.storage.checkpoints import FileCheckpointer
from streamproc.storage.dlq import FileDeadLetters


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files 0644, folders 0755
    yield
    os.umask(old)


def test_notify_db_its_wal_and_the_state_dir_are_private(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    db = open_db(state)
    db.execute("INSERT INTO silences VALUES ('s1', '[]', 0, 1, '', '', 0)")
    files = sorted(p.name for p in state.iterdir())
    assert "notify.db" in files and "notify.db-wal" in files
    for name in files:
        assert mode(state / name) == 0o600, name
    assert mode(state) == 0o700 and mode(tmp_path / "a") == 0o700
    db.close()


def test_a_notify_db_left_world_readable_is_narrowed_when_opened(tmp_path: Path) -> None:
    open_db(tmp_path).close()
    (tmp_path / "notify.db").chmod(0o644)
    open_db(tmp_path).close()
    assert mode(tmp_path / "notify.db") == 0o600


def test_alert_log_file_is_private(tmp_path: Path) -> None:
    log = SqliteAlertLog(tmp_path / "state" / "alerts.sqlite3")
    log.db.close()
    assert mode(tmp_path / "state" / "alerts.sqlite3") == 0o600
    assert mode(tmp_path / "state") == 0o700


def test_mqtt_checkpoint_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "mqtt-state.snapshot"
    FileCheckpointer(path, Judge(parse_config_text(""))).save()
    assert mode(path) == 0o600 and mode(tmp_path / "state") == 0o700


def test_dead_letter_files_are_private(tmp_path: Path) -> None:
    sink = FileDeadLetters(tmp_path / "dl" / "records.jsonl")
    asyncio.run(sink.write([DeadLetter("not_json", "bad", b"secret@example.com", "auth-logs")]))
    assert mode(tmp_path / "dl" / "records.jsonl") == 0o600
    assert mode(tmp_path / "dl") == 0o700
    DeadLetters(tmp_path / "notify").append_file([{"alert": "x"}])
    assert mode(tmp_path / "notify" / "notify-dead-letters.jsonl") == 0o600


def test_alerts_file_written_through_apprise_is_private(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    sender = apprise.Apprise()
    sender.add(plugins.file_url(str(path)))
    assert sender.notify(body='{"kind": "brute_force"}', title="")
    assert mode(path) == 0o600 and mode(tmp_path / "out") == 0o700


def test_replay_outputs_are_private(tmp_path: Path) -> None:
    records = tmp_path / "auth.jsonl"
    records.write_text('{"not json\n')
    out = tmp_path / "alerts.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "replay",
            "--input",
            f"auth-logs={records}",
            "--alerts-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert mode(out) == 0o600
    assert mode(Path(f"{out}.deadletters.jsonl")) == 0o600
