"""``streamproc run --demo`` shows its alerts every time it is run, not only the first time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from streamproc.contracts import builtin_contracts


def _sample_records() -> int:
    paths = [c.sample_path() for c in builtin_contracts().values()]
    return sum(
        1
        for p in paths
        if p is not None and p.exists()
        for line in p.read_bytes().splitlines()
        if line.strip()
    )


def _fingerprints(lines: list[str]) -> list[tuple[str, str]]:
    return [(a["fingerprint"], a["status"]) for a in map(json.loads, lines)]


def _demo(cwd: Path) -> subprocess.CompletedProcess[str]:
    # --max-events: stop once every sample record was judged (alerts are flushed at stop)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "run",
            "--demo",
            "--max-events",
            str(_sample_records()),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_second_demo_in_the_same_directory_prints_and_appends_its_alerts_again(
    tmp_path: Path,
) -> None:
    alerts_file = tmp_path / "streamproc-alerts.jsonl"
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    first_alerts = alerts_file.read_text().splitlines()
    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    second_alerts = alerts_file.read_text().splitlines()[len(first_alerts) :]
    assert len(first_alerts) > 100
    # The same alerts appended and printed again. (Not exactly the same list: an alert or two
    # still grouped when --max-events stops the run may or may not be flushed in time.)
    again = set(_fingerprints(second_alerts)) & set(_fingerprints(first_alerts))
    assert len(again) >= 0.95 * len(set(_fingerprints(first_alerts)))
    assert second.stdout.count("ref ") >= 0.95 * first.stdout.count("ref ") > 0
    assert "fresh state" in second.stderr
    assert not list(tmp_path.glob("streamproc-data*"))  # the demo's state went with it


def _failed_demo(
    tmp_path: Path, *extra: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    temp = tmp_path / "tmp"  # where the demo makes its state folder
    temp.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc.commands.cli", "run", "--demo", *extra],
        cwd=tmp_path,
        env=dict(os.environ, TMPDIR=str(temp), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc, temp


def test_a_demo_whose_broker_fails_to_start_leaves_no_state_folder(tmp_path: Path) -> None:
    proc, temp = _failed_demo(tmp_path, STREAMPROC_TANSU="/bin/false")  # exits at once
    assert proc.returncode == 1
    assert "embedded broker exited with code 1" in proc.stderr
    assert list(temp.iterdir()) == []


def test_a_demo_that_cannot_serve_its_metrics_leaves_no_state_folder(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc, temp = _failed_demo(tmp_path, "--metrics-port", str(taken.getsockname()[1]))
    assert proc.returncode == 1
    assert "streamproc run: Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(temp.iterdir()) == []
