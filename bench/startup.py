"""startup: seconds from ``streamproc run`` to the first record judged, cold.

Each run starts new processes, so imports, config checks and connections are all counted;
the figure is the one the worker itself logs (``first record judged after X s (phases)``,
streamproc/pipeline/startup.py), measured from its process start. Two ways to start, each run:

1. ``streamproc run --demo``: the embedded broker (started by the worker, and counted),
   the sample streams fed once the runtime is up;
2. ``streamproc run -c CONFIG --workers 1``: a configured Kafka, here a fresh Tansu that the
   bench starts (not counted) with 100 auth events already in ``auth-logs``.

Baseline, same run and same fresh broker: what any Python client pays before it holds a
record, i.e. a new process that imports aiokafka, connects, takes every partition of
``auth-logs`` (no group) and fetches the first record, measured from its process start in
the same way. The ratio says how much of streamproc's start-up is its own.

A configured Kafka joins a consumer group: Tansu answers a first JoinGroup after half the
session timeout (``kafka.session_timeout_ms``, 10 s by default), Kafka after
``group.initial.rebalance.delay.ms`` (3 s); the embedded broker is private to the worker,
which takes every partition without a join. The phases of each run are kept in the results.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from streamproc.ops.processes import stop_process

from .common import Context, Row

STEPS_PER_RUN = 2
EMBEDDED_TARGET_S = 2.0
RECORDS = 100
LINE = re.compile(r"first record judged after ([0-9.]+) s \((.*)\)")
PHASE = re.compile(r"(\w+) ([0-9.]+)")

# from its process start on the clock the worker's figure uses (streamproc/pipeline/startup.py)
RAW_CLIENT = r"""
import asyncio, sys, time
from aiokafka import AIOKafkaConsumer, TopicPartition
from streamproc.pipeline.startup import process_started

async def main():
    c = AIOKafkaConsumer(bootstrap_servers=sys.argv[1], fetch_max_wait_ms=100)
    await c.start()
    tps = [TopicPartition("auth-logs", p) for p in sorted(c.partitions_for_topic("auth-logs"))]
    c.assign(tps)
    await c.seek_to_beginning(*tps)
    while not await c.getmany(timeout_ms=100, max_records=1):
        pass
    print(time.time() - process_started(), flush=True)
    await c.stop()

asyncio.run(main())
"""


def run(ctx: Context) -> list[Row]:
    baseline = "raw aiokafka client, new process: first record (no group)"
    demo = Row(
        "startup",
        "run --demo: first record judged (embedded broker)",
        "s",
        higher_is_better=False,
        baseline_name=baseline,
        target=f"<= {EMBEDDED_TARGET_S:.0f} s",
        target_check=lambda r: (r.median or 1e9) <= EMBEDDED_TARGET_S,
    )
    configured = Row(
        "startup",
        "run -c, 1 worker: first record judged (Kafka: fresh Tansu)",
        "s",
        higher_is_better=False,
        baseline_name=baseline,
    )
    for i in range(ctx.runs):
        with tempfile.TemporaryDirectory(prefix="streamproc-bench-startup-") as tmp:
            seconds, phases, raw = _demo_run(Path(tmp))
            demo.runs.append(seconds)
            demo.baseline_runs.append(raw)
            demo.extra.setdefault("phases", []).append(phases)
            ctx.step(f"startup run {i + 1}: --demo {seconds:.2f} s (raw client {raw:.2f} s)")
            seconds, phases, raw = _configured_run(Path(tmp))
            configured.runs.append(seconds)
            configured.baseline_runs.append(raw)
            configured.extra.setdefault("phases", []).append(phases)
            ctx.step(f"startup run {i + 1}: -c {seconds:.2f} s (raw client {raw:.2f} s)")
    for row in (demo, configured):
        row.extra["median_phases"] = _median_phases(row.extra["phases"])
    return [demo, configured]


def _demo_run(tmp: Path) -> tuple[float, dict[str, float], float]:
    seconds, phases = _first_record(
        ["run", "--demo", "--alerts-file", str(tmp / "a.jsonl")], cwd=tmp
    )
    from streamproc.ops.broker import EmbeddedKafka

    # the baseline against a fresh broker with records in it, as the demo had
    with EmbeddedKafka() as broker:
        _produce(broker.bootstrap_servers)
        raw = _raw_client(broker.bootstrap_servers)
    return seconds, phases, raw


def _configured_run(tmp: Path) -> tuple[float, dict[str, float], float]:
    from streamproc.ops.broker import EmbeddedKafka

    with EmbeddedKafka() as broker:
        _produce(broker.bootstrap_servers)
        raw = _raw_client(broker.bootstrap_servers)
        config = tmp / "startup.yaml"
        config.write_text(
            f"kafka:\n  bootstrap_servers: {broker.bootstrap_servers}\nstate_dir: {tmp / 'state'}\n"
        )
        seconds, phases = _first_record(
            ["run", "-c", str(config), "--workers", "1", "--alerts-file", str(tmp / "c.jsonl")],
            cwd=tmp,
        )
    return seconds, phases, raw


def _produce(bootstrap: str) -> None:
    import asyncio

    import orjson

    from streamproc.commands.produce import produce_kafka

    items = [
        (
            "auth-logs",
            f"user{i % 10}".encode(),
            orjson.dumps(
                {
                    "timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
                    "username": f"user{i % 10}",
                    "ip_address": "10.0.0.1",
                    "success": i % 3 != 0,
                    "event_type": "login",
                }
            ),
        )
        for i in range(RECORDS)
    ]
    asyncio.run(produce_kafka({"bootstrap_servers": bootstrap}, items, partitions={"auth-logs": 3}))


def _raw_client(bootstrap: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", RAW_CLIENT, bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=_env(),
    )
    return float(out.stdout.strip())


def _env() -> dict[str, str]:
    """The environment of a measured process: it runs the code this bench runs (a checkout
    on PYTHONPATH, not an install)."""
    import streamproc

    home = str(Path(streamproc.__file__).resolve().parent.parent)
    return dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH")) if p),
    )


def _first_record(
    args: list[str], *, cwd: Path, timeout: float = 60.0
) -> tuple[float, dict[str, float]]:
    """Start ``streamproc ARGS``, read its log until the first-record line, stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamproc.commands.cli", *args, "--log-level", "INFO"],
        cwd=cwd,
        env=_env(),
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    tail: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail = (tail + [line])[-20:]
            m = LINE.search(line)
            if m:
                phases = {p: float(s) for p, s in PHASE.findall(m.group(2))}
                # keep reading what it logs while it stops: a full pipe would block it
                threading.Thread(target=proc.stderr.read, daemon=True).start()
                return float(m.group(1)), phases
            if time.monotonic() > deadline:
                break
        raise RuntimeError(f"no first record judged within {timeout:.0f}s: {''.join(tail)[-600:]}")
    finally:
        stop_process(proc, 20)


def _median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    names = {p for r in runs for p in r}
    return {p: round(statistics.median(r[p] for r in runs if p in r), 3) for p in sorted(names)}
