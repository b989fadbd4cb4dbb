"""workers: events/s for 1..cores workers (``streamproc run --workers K``) on the kafka
scenario's data; the baseline is 1 worker, measured in the same invocation.

Per (K, run): a fresh Tansu (so no checkpoint of an earlier run is restored), N mixed events
produced to 3 partitions per topic, then ``streamproc run -c bench.yaml --workers K`` as users
run it (separate processes, one consumer group, checkpoints every second). Progress is read
from the group's committed offsets, which is the only honest signal from outside the
processes: rate = records committed between the first commit and the last / the time
between them (group joins and rebalances before the first commit are excluded; each commit
lags processing by up to the 1 s checkpoint interval at both ends).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from .common import Context, Row

DEFAULT_EVENTS = 1_000_000


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def write_config(path: str, bootstrap: str, group: str, state_dir: str) -> None:
    with open(path, "w") as fh:
        fh.write(f"kafka:\n  bootstrap_servers: {bootstrap}\n  group_id: {group}\n"
                 f"state:\n  checkpoint_interval: 1.0\nstate_dir: {state_dir}\n"
                 f"notify:\n  urls: []\n")


def one(ctx: Context, items: list[Any], topics: list[str], k: int, run_no: int,
        timeout: float) -> dict[str, Any]:
    from streamproc.broker import EmbeddedKafka

    from .kafka import committed_total, produce

    n = len(items)
    with EmbeddedKafka() as broker, tempfile.TemporaryDirectory() as tmp:
        bs = broker.bootstrap_servers
        asyncio.run(produce(bs, items))
        group = f"bench-workers-{k}-{run_no}"
        cfg = os.path.join(tmp, "bench.yaml")
        write_config(cfg, bs, group, os.path.join(tmp, "state"))
        log = open(os.path.join(tmp, "run.log"), "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "streamproc.cli", "run", "-c", cfg,
                                 "--workers", str(k), "--log-level", "WARNING"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
                                start_new_session=True)
        proc_start = time.perf_counter()
        first_t = first_c = None
        last_c = 0
        last_change = time.perf_counter()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamproc run exited with {proc.returncode}")
                c = asyncio.run(committed_total(bs, group, topics))
                now = time.perf_counter()
                if c > last_c:
                    last_c, last_change = c, now
                    if first_t is None:
                        first_t, first_c = now, c
                if c >= n:
                    break
                if now - last_change > 60.0:
                    raise RuntimeError(f"{k} worker(s) stalled: committed {last_c:,} of {n:,} "
                                       "and no progress for 60 s")
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()
            tail = open(os.path.join(tmp, "run.log"), "rb").read()[-2000:].decode(  # noqa: SIM115
                "utf-8", "replace")
    if last_c < n:
        raise RuntimeError(f"{k} worker(s) committed {last_c:,} of {n:,} records within "
                           f"{timeout:.0f}s; log tail: {tail}")
    if first_c is not None and first_c >= n:  # tiny N: one commit held everything
        first_t, first_c = proc_start, 0
    seconds = max(1e-9, last_change - (first_t or proc_start))
    return {"rate": (n - (first_c or 0)) / seconds, "committed": last_c, "seconds": seconds,
            "first_commit": first_c}


def run(ctx: Context) -> list[Row]:
    from streamproc.produce import kafka_items, kafka_topics

    n_req = ctx.n(DEFAULT_EVENTS)
    traffic = ctx.traffic("mixed", n_req)
    items = kafka_items(traffic, kafka_topics(None, list(traffic.records)))
    topics = sorted({t for t, _, _ in items})
    ks = list(range(1, cores() + 1))
    rows = {k: Row("workers", f"{k} worker{'s' if k > 1 else ''}, events/s (committed)",
                   "events/s", baseline_name="1 worker" if k > 1 else None) for k in ks}
    timeout = max(120.0, len(items) / 5000.0)
    for i in range(ctx.runs):
        for k in ks:
            out = one(ctx, items, topics, k, i + 1, timeout)
            rows[k].runs.append(out["rate"])
            rows[k].extra.setdefault("per_run", []).append(out)
            rows[k].verified = {"ok": out["committed"] == len(items),
                                "committed": out["committed"], "produced": len(items)}
            ctx.step(f"workers run {i + 1}/{ctx.runs}: {k} -> {out['rate']:,.0f}/s")
    for k in ks[1:]:
        rows[k].baseline_runs = list(rows[1].runs)
    rows[1].extra["cores"] = len(ks)
    return list(rows.values())


def steps(ctx_runs: int) -> int:
    return ctx_runs * cores()


STEPS_PER_RUN = cores()
