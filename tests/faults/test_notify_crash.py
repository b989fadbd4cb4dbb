"""A process killed between the alert-log append and delivery delivers exactly once after a
restart on the same state_dir. Real subprocesses, real SIGKILL, a real HTTP receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from streamproc.alerts import Alert, fingerprint
from tests.deliveries import refs
from tests.paths import REPO
from tests.waiting import wait_until_sync

# The child plays the runtime: it reads the alert log from its committed offset, submits,
# and commits the offset only after submit() returned (the contract). With "crash" it stops
# right before that commit and waits to be killed.
CHILD = r"""
import asyncio, sys, orjson
from pathlib import Path
from streamproc.alerts import Alert
from streamproc.notify import Notifier

log, offset_file, state, url, group_wait, mode = sys.argv[1:7]

async def main():
    n = Notifier.from_config({"urls": [url], "group_wait": group_wait, "group_interval": 0,
                              "group_by": ["fingerprint"], "rate": 0,
                              "retry": {"initial": "20ms", "max_delay": "100ms",
                                        "max_attempts": 1000}},
                             state_dir=Path(state))
    await n.start()
    lines = Path(log).read_bytes().splitlines()
    offset = int(Path(offset_file).read_text() or 0) if Path(offset_file).exists() else 0
    await n.submit([Alert.from_json(x) for x in lines[offset:]])
    print("SUBMITTED", flush=True)
    if mode == "crash":
        await asyncio.sleep(3600)
    Path(offset_file).write_text(str(len(lines)))
    assert await n.drain(30)
    await n.close()
    print("DONE", flush=True)

asyncio.run(main())
"""


def alerts(n: int) -> list[Alert]:
    out = []
    for i in range(n):
        key = {"username": f"u{i}", "ip_address": "10.0.0.1"}
        out.append(
            Alert(
                kind="brute_force",
                severity="high",
                status="firing",
                key=key,
                fingerprint=fingerprint("brute_force", key, i),
                event_time=1.7e9,
                title=f"bf {i}",
                family="auth-logs",
            )
        )
    return out


def child(tmp: Path, url: str, group_wait: str, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(tmp / "alerts.log"),
            str(tmp / "offset"),
            str(tmp / "state"),
            url,
            group_wait,
            mode,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_line(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == text:
            return
    raise AssertionError(f"child exited with {proc.wait()} before printing {text}")


def test_killed_before_delivery_delivers_exactly_once_after_restart(
    receiver: Any, tmp_path: Path
) -> None:
    batch = alerts(6)
    (tmp_path / "alerts.log").write_bytes(b"\n".join(a.to_json() for a in batch) + b"\n")

    # 1. appended to the alert log, handed to notify, killed before commit and delivery
    first = child(tmp_path, receiver.url("json"), "1h", "crash")
    wait_line(first, "SUBMITTED")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert receiver.requests == []

    # 2. restart: the log is re-read from the uncommitted offset, everything goes out once
    second = child(tmp_path, receiver.url("json"), "0", "run")
    wait_line(second, "DONE")
    assert second.wait() == 0

    # 3. the log is re-read again from the start (lost offset): nothing is re-sent
    (tmp_path / "offset").write_text("0")
    third = child(tmp_path, receiver.url("json"), "0", "run")
    wait_line(third, "DONE")
    assert third.wait() == 0
    assert sorted(refs(receiver.accepted)) == sorted(a.fingerprint for a in batch)


def test_killed_while_the_channel_is_down_delivers_once_when_it_is_back(
    receiver: Any, tmp_path: Path
) -> None:
    batch = alerts(4)
    (tmp_path / "alerts.log").write_bytes(b"\n".join(a.to_json() for a in batch) + b"\n")
    receiver.status = 503  # queued in the outbox, retrying
    first = child(tmp_path, receiver.url("json"), "0", "crash")
    wait_line(first, "SUBMITTED")
    wait_until_sync(
        lambda: len(receiver.requests) >= 3, 30, "the child to retry three times", interval=0.02
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    receiver.status = 200
    second = child(tmp_path, receiver.url("json"), "0", "run")
    wait_line(second, "DONE")
    assert second.wait() == 0
    assert sorted(refs(receiver.accepted)) == sorted(a.fingerprint for a in batch)
