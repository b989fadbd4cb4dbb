"""``streamproc run`` as a subprocess against a Kafka broker, as an operator starts it: the
config it reads, starting it, and knowing when it has committed what it was given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.configs import config_text
from tests.streams import committed_total


def worker_config(
    path: Path,
    bootstrap: str,
    topic: str,
    group: str,
    url: str,
    state_dir: Path,
    interval: float = 1.0,
) -> Path:
    # checkpoints every ``interval`` seconds, so that kills land between and during them
    path.write_text(
        config_text(
            bootstrap=bootstrap,
            group=group,
            kafka={"session_timeout_ms": 6000},
            topics=[topic],
            urls=[url],
            notify={"rate": 0},
            state={"checkpoint_interval": interval},
            state_dir=state_dir,
        )
    )
    return path


def start_worker(config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamproc.commands.cli",
                "run",
                "-c",
                str(config),
                "--workers",
                "1",
                "--log-level",
                "INFO",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


async def has_committed(bootstrap: str, group: str, topic: str, n: int) -> bool:
    try:
        return await committed_total(bootstrap, group, topic) >= n
    except Exception:  # noqa: BLE001 - broker restarting
        return False
