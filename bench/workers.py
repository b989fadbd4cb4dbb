"""workers: events/s for 1..cores workers (``streamproc run --workers K``) on the kafka
scenario's data; the baseline is 1 worker, measured in the same invocation.

Per (K, run): a fresh Tansu (so no checkpoint of an earlier run is restored), N mixed events
produced to P partitions per topic, then ``streamproc run -c bench.yaml --workers K`` as users
run it (separate processes, one consumer group, checkpoints every second). Progress is read
from the group's committed offsets, which is the only honest signal from outside the
processes: rate = records committed between the first commit and the last / the time
between them (group joins and rebalances before the first commit are excluded; each commit
lags processing by up to the 1 s checkpoint interval at both ends). Over the same window the
CPU seconds of the broker and of the worker processes are sampled (psutil), so a curve that
flattens shows where the cores went.

Sizing for bigger machines (the harness takes no per-scenario flags, so these are read from
the environment; unset, a 2-core box runs what it always ran):

- ``STREAMPROC_BENCH_WORKER_COUNTS``: comma-separated K values, e.g. ``1,2,4,8,12`` (default
  1..cores; 1 is always added, it is the baseline);
- ``STREAMPROC_BENCH_PARTITIONS``: partitions per source topic (default 3, which caps the
  useful workers at 3: a consumer group gives each partition to one member). Repartition
  topics get at least as many (``kafka.repartition_partitions``, default 6), for the same
  reason.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from streamproc.ops.processes import stop_process

from .common import Context, Row
from .kafka import committed_total

DEFAULT_EVENTS = 1_000_000
DEFAULT_PARTITIONS = 3
DEFAULT_REPARTITION_PARTITIONS = 6  # KafkaConfig.repartition_partitions


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def partitions() -> int:
    value = os.environ.get("STREAMPROC_BENCH_PARTITIONS", "").strip()
    return int(value) if value else DEFAULT_PARTITIONS


def worker_counts() -> list[int]:
    value = os.environ.get("STREAMPROC_BENCH_WORKER_COUNTS", "").strip()
    if not value:
        return list(range(1, cores() + 1))
    ks = {int(k) for k in value.split(",") if k.strip()}
    if min(ks) < 1:
        raise ValueError(f"STREAMPROC_BENCH_WORKER_COUNTS={value!r}: counts must be >= 1")
    return sorted(ks | {1})


def write_config(
    path: str,
    bootstrap: str,
    group: str,
    state_dir: str,
    repartition_partitions: int = DEFAULT_REPARTITION_PARTITIONS,
) -> None:
    with open(path, "w") as fh:
        fh.write(
            f"kafka:\n  bootstrap_servers: {bootstrap}\n  group_id: {group}\n"
            f"  repartition_partitions: {repartition_partitions}\n"
            f"state:\n  checkpoint_interval: 1.0\nstate_dir: {state_dir}\n"
            f"notify:\n  urls: []\n"
        )


async def produce(
    bootstrap: str, items: list[tuple[str, bytes | None, bytes]], n_partitions: int
) -> Any:
    from streamproc.commands.produce import produce_kafka

    return await produce_kafka(
        {"bootstrap_servers": bootstrap}, items, partitions={t: n_partitions for t, _, _ in items}
    )


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants alive now."""
    import psutil

    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
    return total


def one(
    ctx: Context,
    items: list[Any],
    topics: list[str],
    k: int,
    run_no: int,
    timeout: float,
    n_partitions: int = DEFAULT_PARTITIONS,
) -> dict[str, Any]:
    from streamproc.ops.broker import EmbeddedKafka

    n = len(items)
    started = time.perf_counter()
    with EmbeddedKafka() as broker, tempfile.TemporaryDirectory() as tmp:
        bs = broker.bootstrap_servers
        produce_start = time.perf_counter()
        asyncio.run(produce(bs, items, n_partitions))
        produce_s = time.perf_counter() - produce_start
        group = f"bench-workers-{k}-{run_no}"
        cfg = os.path.join(tmp, "bench.yaml")
        write_config(
            cfg,
            bs,
            group,
            os.path.join(tmp, "state"),
            max(DEFAULT_REPARTITION_PARTITIONS, n_partitions),
        )
        log = open(os.path.join(tmp, "run.log"), "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamproc.commands.cli",
                "run",
                "-c",
                cfg,
                "--workers",
                str(k),
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            start_new_session=True,
        )
        proc_start = time.perf_counter()
        first_t = first_c = None
        last_c = 0
        last_change = time.perf_counter()
        assert broker.proc is not None
        broker_pid = broker.proc.pid
        # CPU seconds (broker, workers) at the first commit and at the last change
        cpu_first = cpu_last = (cpu_seconds([broker_pid]), cpu_seconds([proc.pid]))
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamproc run exited with {proc.returncode}")
                c = asyncio.run(committed_total(bs, group, topics, n_partitions))
                now = time.perf_counter()
                if c > last_c:
                    last_c, last_change = c, now
                    cpu_last = (cpu_seconds([broker_pid]), cpu_seconds([proc.pid]))
                    if first_t is None:
                        first_t, first_c = now, c
                        cpu_first = cpu_last
                if c >= n:
                    break
                if now - last_change > 60.0:
                    raise RuntimeError(
                        f"{k} worker(s) stalled: committed {last_c:,} of {n:,} "
                        "and no progress for 60 s"
                    )
                time.sleep(0.2)
        finally:
            stop_process(proc, 30)
            log.close()
            with open(os.path.join(tmp, "run.log"), "rb") as run_log:
                tail = run_log.read()[-2000:].decode("utf-8", "replace")
    if last_c < n:
        raise RuntimeError(
            f"{k} worker(s) committed {last_c:,} of {n:,} records within "
            f"{timeout:.0f}s; log tail: {tail}"
        )
    if first_c is not None and first_c >= n:  # tiny N: one commit held everything
        first_t, first_c = proc_start, 0
    seconds = max(1e-9, last_change - (first_t or proc_start))
    return {
        "rate": (n - (first_c or 0)) / seconds,
        "committed": last_c,
        "seconds": seconds,
        "first_commit": first_c,
        "produce_s": round(produce_s, 2),
        "wall_s": round(time.perf_counter() - started, 2),
        "first_commit_after_s": round((first_t or proc_start) - proc_start, 2),
        # cores busy over the measured window (CPU seconds / wall seconds)
        "broker_cores": round((cpu_last[0] - cpu_first[0]) / seconds, 2),
        "worker_cores": round((cpu_last[1] - cpu_first[1]) / seconds, 2),
    }


def run(ctx: Context) -> list[Row]:
    from streamproc.commands.produce import kafka_items, kafka_topics

    n_req = ctx.n(DEFAULT_EVENTS)
    traffic = ctx.traffic("mixed", n_req)
    items = kafka_items(traffic, kafka_topics(None, list(traffic.records)))
    topics = sorted({t for t, _, _ in items})
    ks = worker_counts()
    n_partitions = partitions()
    rows = {
        k: Row(
            "workers",
            f"{k} worker{'s' if k > 1 else ''}, events/s (committed)",
            "events/s",
            baseline_name="1 worker" if k > 1 else None,
        )
        for k in ks
    }
    timeout = max(120.0, len(items) / 5000.0)
    for i in range(ctx.runs):
        for k in ks:
            out = one(ctx, items, topics, k, i + 1, timeout, n_partitions)
            rows[k].runs.append(out["rate"])
            rows[k].extra.setdefault("per_run", []).append(out)
            rows[k].verified = {
                "ok": out["committed"] == len(items),
                "committed": out["committed"],
                "produced": len(items),
            }
            ctx.step(f"workers run {i + 1}/{ctx.runs}: {k} -> {out['rate']:,.0f}/s")
    for k in ks[1:]:
        rows[k].baseline_runs = list(rows[1].runs)
    rows[1].extra.update(cores=cores(), worker_counts=ks, partitions=n_partitions)
    return list(rows.values())


def steps(ctx_runs: int) -> int:
    return ctx_runs * len(worker_counts())


STEPS_PER_RUN = len(worker_counts())
