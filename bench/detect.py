"""detect: all detectors, decode included, one process, in memory, a mixed six-family stream.

Baseline (same invocation): ``orjson.loads`` of the same records, nothing else. The ratio says
what share of the time a bare decode would take; the absolute rate is what sizes a deployment
(target: >= 300,000 events/s on one core).

The stream is what ``streamproc produce --scenario mixed`` makes (Zipf users and IPs, diurnal
load, injected incidents); every run checks that exactly the expected alerts appeared.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson

from .common import Context, Row, verify_counts

DEFAULT_EVENTS = 1_000_000
BATCH = 5000
TARGET = 300_000.0


def build_records(ctx: Context, n: int) -> list[Any]:
    from streamproc.contracts import get_contract
    from streamproc.decode import RawRecord

    topics = {}
    out = []
    for i, (fam, key, value) in enumerate(ctx.merged_bytes("mixed", n)):
        topic = topics.get(fam)
        if topic is None:
            topic = topics[fam] = get_contract(fam).kafka_topic
        out.append(RawRecord(value, topic, 0, i, key))
    return out


def judge_all(records: list[Any]) -> tuple[float, list[Any], dict[str, int]]:
    """Decode and detect every record through the runtime's Judge; (seconds, alerts, dead)."""
    from streamproc.config import load_config
    from streamproc.runtime import Judge, tune_gc

    judge = Judge(load_config(None), partitioned=False)
    tune_gc()  # as Runtime.start does: measure what a deployment gets
    alerts: list[Any] = []
    dead: dict[str, int] = {}
    gc.collect()
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        out, dls = judge.judge(records[i:i + BATCH], "kafka")
        if out:
            alerts.extend(out)
        for dl in dls:
            dead[dl.reason] = dead.get(dl.reason, 0) + 1
    alerts.extend(judge.finish())
    return time.perf_counter() - start, alerts, dead


def decode_only(records: list[Any]) -> float:
    loads = orjson.loads
    gc.collect()
    start = time.perf_counter()
    for r in records:
        loads(r.value)
    return time.perf_counter() - start


def run(ctx: Context) -> list[Row]:
    n = ctx.n(DEFAULT_EVENTS)
    traffic = ctx.traffic("mixed", n)
    records = build_records(ctx, n)
    n = len(records)
    row = Row("detect", "all detectors + decode, 1 process", "events/s",
              baseline_name="orjson.loads alone", target=f">= {TARGET:,.0f} events/s",
              target_check=lambda r: (r.median or 0) >= TARGET)
    row.extra["events"] = n
    row.extra["families"] = {f: len(v) for f, v in traffic.records.items()}
    verified: dict[str, Any] | None = None
    from streamproc.runtime import tune_gc
    tune_gc()  # the baseline runs under the same collector settings as the judge
    for i in range(ctx.runs):
        base = decode_only(records)
        row.baseline_runs.append(n / base)
        ctx.step(f"detect run {i + 1}/{ctx.runs}: baseline {n / base:,.0f}/s")
        seconds, alerts, dead = judge_all(records)
        row.runs.append(n / seconds)
        check = verify_counts(traffic.expected, alerts)
        if dead:
            check["ok"] = False
            check["dead_letters"] = dead
        # Every run must be right, not just the last one.
        if verified is None or not check["ok"]:
            verified = check
        ctx.step(f"detect run {i + 1}/{ctx.runs}: {n / seconds:,.0f}/s, "
                 f"{len(alerts)} alerts, verified={check['ok']}")
        del alerts
    row.verified = verified
    return [row]


STEPS_PER_RUN = 2
