"""peers: the auth workload that stream processors are compared on, brute_force only,
streamproc against the raw transport and against Bytewax running the same rule.

The workload (``peers_workload.py``: 1M events of ~210 B, 50k users, ~2% failures with bursts,
near misses, slow, persistent and campaign attackers) is produced once, keyed by username,
to 4 partitions of a fresh embedded Tansu. Then, ``--runs`` times, alternating:

1. raw: aiokafka ``getmany`` without a group, counting records (``peers_clients.py raw``);
2. streamproc: ``streamproc run`` as users start it, brute_force only, 1 worker, a fresh
   consumer group per run, commits, checkpoints every 10 s and the Kafka alert log on;
   progress read from its /metrics (records judged: see ``MetricsPoll``);
3. Bytewax (when importable): ``peers_clients.py bytewax``, its Kafka connectors and
   ``stateful_map`` keyed by username + ip_address, alerts to a topic of its own.

Each is a process of its own, so its peak RSS (psutil, the process and its children, sampled
every 20 ms) is its own. Reported per contestant: events/s from the first record to the last
(the records that came with the first one excluded: start-up is reported apart), seconds from
process start to the first record, peak RSS. Each contestant's alerts are checked against the
set computed from the data (``expected_alerts``): (username, ip_address, first failure in the
window, the failure that fired), missing and extra listed. streamproc must also have
committed every record and dead-lettered none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import Any

from .common import Context, Row
from .peers_workload import DEFAULT_EVENTS, PARTITIONS, TOPIC, ExpectedAlert, generate_peers

RAW_TARGET = 0.65
BYTEWAX_TARGET = 2.0
RSS_TARGET_MB = 150.0
FIRST_RECORD_TARGET_S = 2.0
SAMPLE_S = 0.02
GROUP = "peers-streamproc-{run}"
BYTEWAX_ALERTS = "peers-bytewax-{run}.alerts"


@dataclass
class Measured:
    """One contestant's run."""

    started: float  # wall clock, just before the process was started
    first: float  # the first record seen
    first_count: int  # records that came with it
    end: float  # the last record seen
    count: int
    peak_rss: int  # bytes
    alerts: set[ExpectedAlert] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        if self.count <= self.first_count:  # all came at once (tiny N): start-up included
            return self.count / max(1e-9, self.end - self.started)
        return (self.count - self.first_count) / max(1e-9, self.end - self.first)

    @property
    def first_s(self) -> float:
        return self.first - self.started

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss / 2**20


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _watch(
    cmd: list[str], cwd: str, timeout: float, poll: Any = None
) -> tuple[float, int, str, str]:
    """Run ``cmd`` to its end, sampling its peak RSS (and calling ``poll()``) every 20 ms;
    (start time, peak RSS, stdout, stderr tail)."""
    out_path, err_path = Path(cwd) / "stdout.log", Path(cwd) / "stderr.log"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:  # files: a pipe can fill
        started = time.time()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=err, env=dict(os.environ, PYTHONUNBUFFERED="1")
        )
        peak = 0
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd[3]} did not finish within {timeout:.0f}s")
                peak = max(peak, _tree_rss(proc.pid))
                if poll is not None:
                    poll()
                time.sleep(SAMPLE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    tail = err_path.read_text(errors="replace")[-2000:]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:4])} exited with {proc.returncode}: {tail}")
    return started, peak, out_path.read_text(errors="replace"), tail


def _client(kind: str, bootstrap: str, n: int, timeout: float, **kw: str) -> Measured:
    cmd = [
        sys.executable,
        "-m",
        "streamproc.bench.peers_clients",
        kind,
        "--bootstrap",
        bootstrap,
        "--topic",
        TOPIC,
        "--events",
        str(n),
    ]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", v]
    with tempfile.TemporaryDirectory() as cwd:
        started, peak, out, _ = _watch(cmd, cwd, timeout)
    res = json.loads(out.strip().splitlines()[-1])
    return Measured(started, res["first"], res["first_count"], res["end"], res["count"], peak)


class MetricsPoll:
    """Reads ``streamproc_*_total`` counters from a running streamproc's /metrics.

    A scrape costs the measured process ~1 ms of CPU (and the GIL), so it is scraped every
    20 ms only where the time matters: until the first record and from 90% of the records
    on; every 100 ms in between (~1% of a core instead of 5%).
    """

    def __init__(self, port: int, n: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.n = n
        self.first: float | None = None
        self.first_count = 0
        self.end: float | None = None
        self.last: dict[str, float] = {}
        self._next = 0.0

    def __call__(self) -> None:
        if time.monotonic() < self._next:
            return
        try:
            with urllib.request.urlopen(self.url, timeout=0.5) as resp:
                text = resp.read().decode()
        except OSError:
            return  # not up yet, or already stopped
        now = time.time()
        sums: dict[str, float] = {}
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in (
                "streamproc_records_in_total",
                "streamproc_dead_letters_total",
                "streamproc_alerts_total",
            ):
                sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        self.last = sums
        records = int(sums.get("streamproc_records_in_total", 0))
        if records and self.first is None:
            self.first, self.first_count = now, records
        if records >= self.n and self.end is None:
            self.end = now
        if self.first is not None and records < 0.9 * self.n:
            self._next = time.monotonic() + 0.1


def brute_force_only() -> dict[str, dict[str, Any]]:
    """Detector settings that switch off every auth-logs detector but brute_force."""
    from streamproc.detectors import REGISTRY

    return {
        kind: {"enabled": False}
        for kind, cls in sorted(REGISTRY.items())
        if cls.family == "auth-logs" and kind != "brute_force"
    }


def streamproc_config(bootstrap: str, group: str, state_dir: str) -> dict[str, Any]:
    off = brute_force_only()
    return {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "auto_offset_reset": "earliest",
        },
        "topics": [
            {"topic": TOPIC, "family": "auth-logs", "keyed_by": "username", "detectors": off}
        ],
        "state": {"checkpoint_interval": 10},
        "state_dir": state_dir,
    }


def run_streamproc(bootstrap: str, run_no: int, n: int, timeout: float) -> Measured:
    from streamproc.config import parse_config
    from streamproc.ops.broker import ensure_topics, free_port

    from .kafka import committed_total

    group = GROUP.format(run=run_no)
    with tempfile.TemporaryDirectory() as cwd:
        doc = streamproc_config(bootstrap, group, str(Path(cwd) / "state"))
        kafka = parse_config(doc, file=None).kafka
        assert kafka is not None
        # The alert log provisioned as an operator does (see kafka.provision_internal_topics)
        asyncio.run(
            ensure_topics(
                {"bootstrap_servers": bootstrap}, {kafka.alert_topic: 3, kafka.alert_dlq_topic: 1}
            )
        )
        cfg = Path(cwd) / "streamproc.yaml"
        cfg.write_text(json.dumps(doc))  # JSON is YAML
        port = free_port()
        poll = MetricsPoll(port, n)
        cmd = [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "run",
            "-c",
            str(cfg),
            "--workers",
            "1",
            "--metrics-port",
            str(port),
            "--max-events",
            str(n),
            "--log-level",
            "WARNING",
        ]
        started, peak, _, tail = _watch(cmd, cwd, timeout, poll)
    if poll.first is None or poll.end is None:
        raise RuntimeError(
            f"streamproc run ended before its metrics showed {n} records "
            f"judged (last seen: {poll.last}); stderr: {tail}"
        )
    n_alerts = int(poll.last.get("streamproc_alerts_total", 0))
    logged = asyncio.run(read_all(bootstrap, kafka.alert_topic, at_least=n_alerts))
    alerts = {
        (
            a["labels"]["username"],
            a["labels"]["ip_address"],
            round(a["evidence"]["first_seen"] * 1000),
            round(a["evidence"]["last_seen"] * 1000),
        )
        for a in logged
        if a.get("kind") == "brute_force" and a.get("status") == "firing"
    }
    committed = asyncio.run(committed_total(bootstrap, group, [TOPIC], PARTITIONS))
    return Measured(
        started,
        poll.first,
        poll.first_count,
        poll.end,
        n,
        peak,
        alerts,
        {
            "committed": committed,
            "alerts_logged": len(logged),
            "alerts_counted": n_alerts,
            "dead_letters": int(poll.last.get("streamproc_dead_letters_total", 0)),
        },
    )


def run_bytewax(bootstrap: str, run_no: int, n: int, timeout: float) -> Measured:
    from streamproc.ops.broker import ensure_topics

    topic = BYTEWAX_ALERTS.format(run=run_no)
    asyncio.run(ensure_topics({"bootstrap_servers": bootstrap}, {topic: 1}))
    out = _client("bytewax", bootstrap, n, timeout, alerts_topic=topic)
    logged = asyncio.run(read_all(bootstrap, topic))
    out.alerts = {(a["username"], a["ip_address"], a["first_ms"], a["fired_ms"]) for a in logged}
    out.extra["alerts_logged"] = len(logged)
    return out


async def read_all(
    bootstrap: str, topic: str, at_least: int = 0, idle: float = 1.0, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Every JSON record of ``topic``: read until ``at_least`` and then ``idle`` seconds
    without a new one (end offsets are not trusted on Tansu)."""
    import orjson
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            if any(batches.values()):
                quiet_since = time.monotonic()
                for records in batches.values():
                    out.extend(orjson.loads(r.value) for r in records)
            elif len(out) >= at_least and time.monotonic() - quiet_since >= idle:
                break
    finally:
        await consumer.stop()
    return out


def check(expected: set[ExpectedAlert], got: set[ExpectedAlert] | None) -> dict[str, Any]:
    got = got or set()
    missing, extra = sorted(expected - got), sorted(got - expected)
    return {
        "ok": not missing and not extra and bool(expected),
        "expected": len(expected),
        "got": len(got),
        "missing": [list(a) for a in missing[:20]],
        "extra": [list(a) for a in extra[:20]],
        "missing_count": len(missing),
        "extra_count": len(extra),
    }


def bytewax_version() -> str | None:
    if util.find_spec("bytewax") is None or util.find_spec("confluent_kafka") is None:
        return None
    try:
        return metadata.version("bytewax")
    except metadata.PackageNotFoundError:
        return None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run(ctx: Context) -> list[Row]:
    from streamproc.commands.produce import produce_kafka
    from streamproc.ops.broker import EmbeddedKafka

    key = ("peers", ctx.n(DEFAULT_EVENTS), ctx.seed)
    if key not in ctx.cache:
        ctx.log(f"generating the peer workload: {ctx.n(DEFAULT_EVENTS):,} auth events")
        ctx.cache[key] = generate_peers(ctx.n(DEFAULT_EVENTS), seed=ctx.seed)
    workload = ctx.cache[key]
    items = workload.kafka_items(TOPIC)
    n = len(items)
    timeout = max(120.0, n / 10_000)
    bw_version = bytewax_version()
    bw_name = f"Bytewax {bw_version} (stateful_map, KafkaSink)"
    main = Row(
        "peers",
        "streamproc run, brute_force only, 1 worker, commits+checkpoints+alert log",
        "events/s",
        baseline_name="raw aiokafka getmany, count only",
        target=f">= {RAW_TARGET:.2f}x raw",
        target_check=lambda r: (r.ratio or 0) >= RAW_TARGET,
    )
    vs_bw = Row(
        "peers",
        "streamproc run vs Bytewax, same rule",
        "events/s",
        baseline_name=bw_name,
        target=f">= {BYTEWAX_TARGET:.0f}x Bytewax",
        target_check=lambda r: (r.ratio or 0) >= BYTEWAX_TARGET,
    )
    # how much of the transport's speed judging leaves, against the loop on the same records
    vs_light = Row(
        "peers",
        "streamproc run vs the same getmany loop on streamproc's records",
        "events/s",
        baseline_name="raw aiokafka getmany, KafkaRecords, count only",
    )
    first = Row(
        "peers",
        "streamproc run: process start to first record judged",
        "s",
        higher_is_better=False,
        baseline_name="raw getmany: start to first record",
        target=f"<= {FIRST_RECORD_TARGET_S:.0f} s",
        target_check=lambda r: (r.median or 1e9) <= FIRST_RECORD_TARGET_S,
    )
    rss = Row(
        "peers",
        "streamproc run: peak RSS",
        "MB",
        higher_is_better=False,
        baseline_name="raw getmany: peak RSS",
        target=f"<= {RSS_TARGET_MB:.0f} MB",
        target_check=lambda r: (r.median or 1e9) <= RSS_TARGET_MB,
    )
    runners: dict[str, list[Measured]] = {
        "raw": [],
        "raw_light": [],
        "streamproc": [],
        "bytewax": [],
    }
    sp_checks, bw_checks = [], []
    bw_error = ""
    with EmbeddedKafka() as broker:
        bs = broker.bootstrap_servers
        res = asyncio.run(
            produce_kafka({"bootstrap_servers": bs}, items, partitions={TOPIC: PARTITIONS})
        )
        ctx.step(
            f"peers: produced {res.records:,} at {res.rate:,.0f}/s, "
            f"{len(workload.expected)} alerts expected"
        )
        for i in range(1, ctx.runs + 1):
            raw = _client("raw", bs, n, timeout)
            runners["raw"].append(raw)
            ctx.step(f"peers run {i}: raw getmany {raw.rate:,.0f}/s")
            light = _client("raw-light", bs, n, timeout)
            runners["raw_light"].append(light)
            ctx.step(f"peers run {i}: raw getmany, KafkaRecords {light.rate:,.0f}/s")
            sp = run_streamproc(bs, i, n, timeout)
            runners["streamproc"].append(sp)
            c = check(workload.expected, sp.alerts)
            c.update(
                committed=sp.extra["committed"], produced=n, dead_letters=sp.extra["dead_letters"]
            )
            if sp.extra["committed"] != n or sp.extra["dead_letters"]:
                c["ok"] = False
            sp_checks.append(c)
            ctx.step(
                f"peers run {i}: streamproc {sp.rate:,.0f}/s, first record after "
                f"{sp.first_s:.1f}s, {sp.peak_rss_mb:.0f} MB, alerts "
                f"{'exact' if c['ok'] else 'WRONG'}"
            )
            if bw_version is None or bw_error:
                ctx.step("peers: Bytewax skipped")
                continue
            try:
                bw = run_bytewax(bs, i, n, timeout)
            except (RuntimeError, ValueError, KeyError) as exc:
                # the comparison is skipped and says why; streamproc's rows still stand
                bw_error = f"Bytewax could not run here: {exc}"
                ctx.step(f"peers run {i}: {bw_error[:200]}")
                continue
            runners["bytewax"].append(bw)
            bc = check(workload.expected, bw.alerts)
            bw_checks.append(bc)
            ctx.step(
                f"peers run {i}: Bytewax {bw.rate:,.0f}/s, first record after "
                f"{bw.first_s:.1f}s, {bw.peak_rss_mb:.0f} MB, alerts "
                f"{'exact' if bc['ok'] else 'WRONG'}"
            )
    sp_runs = runners["streamproc"]
    main.runs = [m.rate for m in sp_runs]
    main.baseline_runs = [m.rate for m in runners["raw"]]
    main.verified = next((c for c in sp_checks if not c["ok"]), sp_checks[0])
    vs_light.runs = list(main.runs)
    vs_light.baseline_runs = [m.rate for m in runners["raw_light"]]
    first.runs = [m.first_s for m in sp_runs]
    first.baseline_runs = [m.first_s for m in runners["raw"]]
    rss.runs = [m.peak_rss_mb for m in sp_runs]
    rss.baseline_runs = [m.peak_rss_mb for m in runners["raw"]]
    table = {
        name: {
            "events_per_s": _median([m.rate for m in ms]),
            "first_record_s": _median([m.first_s for m in ms]),
            "peak_rss_mb": _median([m.peak_rss_mb for m in ms]),
            "runs": [
                {
                    "events_per_s": m.rate,
                    "first_record_s": m.first_s,
                    "peak_rss_mb": m.peak_rss_mb,
                    **m.extra,
                }
                for m in ms
            ],
        }
        for name, ms in runners.items()
        if ms
    }
    main.extra.update(
        events=n,
        failures=workload.failures,
        injected=workload.injected,
        expected_alerts=len(workload.expected),
        runners=table,
        checks={"streamproc": sp_checks, "bytewax": bw_checks},
    )
    rows = [main, vs_bw, vs_light, first, rss]
    if bw_version is None:
        vs_bw.skipped = (
            "bytewax (with confluent-kafka) is not installed: pip install 'streamproc[bench]'"
        )
    elif bw_error:
        vs_bw.skipped = bw_error
    else:
        vs_bw.runs = list(main.runs)
        vs_bw.baseline_runs = [m.rate for m in runners["bytewax"]]
        vs_bw.verified = next((c for c in bw_checks if not c["ok"]), bw_checks[0])
        first.extra["bytewax_first_record_s"] = table["bytewax"]["first_record_s"]
        rss.extra["bytewax_peak_rss_mb"] = table["bytewax"]["peak_rss_mb"]
    return rows


STEPS_PER_RUN = 4
EXTRA_STEPS = 1
