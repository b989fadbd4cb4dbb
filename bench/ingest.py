"""ingest: events/s POSTed to ``/api/v1/events/{binding}`` (sources/http.py), one event per
request and NDJSON batches, against a bare aiohttp server answering 204 in the same run.

    client (this process)                          server (a process of its own: one core)
    aiohttp ClientSession, keep-alive,   ──HTTP──►  streamproc: the ingest app on the
    CONCURRENCY requests in flight                  listener of run --listen, an MQTT binding of
                                                    auth-logs judged at once (decode, every
                                                    auth detector, alert log, dead letters)
                                                    baseline: a handler that reads the body
                                                    and answers 204

The server runs alone in its process, so its figure is what one core serves; the client has
the other core (on a one-core machine the two share it, and both figures fall alike: trust
the ratio). The MQTT binding is the path with the most work per request in this process: a
Kafka binding produces instead and leaves judging to its consumer (and its broker's speed to
the broker). Records are successful logins of distinct users: valid, no alert, so the figure
is the ingest path's, not the alert log's.

Each run also records the server's CPU seconds (``events_per_server_cpu_s`` in ``per_run``):
what one core of it serves when the client, not the server, is the limit (the bare server
mostly is: an aiohttp client sends ~5-7k requests/s on one core of our machines).

``verified``: every request answered 200 (204 for the baseline), and the server judged as many
records as were sent. Targets, on one server core (events per server CPU second, the median
over the runs): >= 5,000 events/s one event per request, >= 50,000 events/s in NDJSON
batches of BATCH events. The row's median is the rate the client saw.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from .common import Context, Row

STEPS_PER_RUN = 2
CONCURRENCY = 8
BATCH = 1000
SINGLE_DEFAULT = 5_000  # requests (one event each)
NDJSON_DEFAULT = 200_000  # events
SINGLE_TARGET = 5_000.0
NDJSON_TARGET = 50_000.0

SERVER = r"""
import asyncio, sys, time
from pathlib import Path
from aiohttp import web

kind, port, state = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
root = web.Application(client_max_size=64 << 20)
count = {"records": 0}

if kind == "bare":
    async def bare(request):
        body = await request.read()
        count["records"] += body.count(b"\n") + 1
        return web.Response(status=204)
    root.router.add_post("/api/v1/events/{binding}", bare)
else:
    from streamproc.storage.alertlog import SqliteAlertLog
    from streamproc.config import parse_config_text
    from streamproc.storage.dlq import FileDeadLetters
    from streamproc.pipeline.runtime import Judge, tune_gc
    from streamproc.http.listener import Listener
    from streamproc.sources.http import API_PREFIX, Ingest, JudgeTarget, ingest_app

    config = parse_config_text(
        "mqtt: {host: 127.0.0.1, port: 1883}\n"
        f"state_dir: {state}\n"
        "topics:\n  - {name: auth, family: auth-logs, source: mqtt, mqtt_topic: auth/#}\n"
        "ingest: {rate_limit: 0}\n")
    judge = Judge(config, clock=time.time)
    alert_log = SqliteAlertLog(state / "alerts.sqlite3")
    dead = FileDeadLetters(state / "dead.jsonl")
    ingest = Ingest(config.ingest, config.bindings,
                    [JudgeTarget(judge, alert_log.append, dead.write)])
    ingest.settings.max_body_bytes = 64 << 20
    # the listener of `run --listen` (its middlewares run for every request), served here
    listener = Listener("127.0.0.1", port, max_body_bytes=64 << 20)
    listener.mount(API_PREFIX, ingest_app(ingest))
    root = listener.app
    tune_gc()

async def counted(request):
    n = count["records"] if kind == "bare" else judge.stats.records_in
    return web.json_response({"records": n, "cpu_s": time.process_time()})

root.router.add_get("/bench/count", counted)
web.run_app(root, host="127.0.0.1", port=port, access_log=None, print=None)
"""


class Server:
    """One bench server process (``kind``: streamproc or bare) on a free loopback port."""

    def __init__(self, kind: str, state: Path) -> None:
        from streamproc.ops.broker import free_port

        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, kind, str(self.port), str(state)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 30.0) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        "bench ingest server exited: "
                        + (self.proc.stderr.read() or b"").decode()[-2000:]
                    )
                try:
                    async with session.get(self.url + "/bench/count") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("bench ingest server did not start")
                await asyncio.sleep(0.05)

    async def count(self) -> tuple[int, float]:
        """(records the server judged or read, its CPU seconds so far)."""
        import aiohttp

        async with aiohttp.ClientSession() as session, session.get(self.url + "/bench/count") as r:
            got = await r.json()
            return int(got["records"]), float(got["cpu_s"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bodies(n: int, batch: int) -> list[bytes]:
    """``n`` successful logins of distinct users, ``batch`` per body (NDJSON when > 1)."""
    now = time.time()
    lines = [
        orjson.dumps(
            {
                "timestamp": now - 60 + i * 1e-4,
                "username": f"user{i}",
                "ip_address": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                "success": True,
            }
        )
        for i in range(n)
    ]
    return [b"\n".join(lines[i : i + batch]) for i in range(0, n, batch)]


async def post_all(url: str, payloads: list[bytes], content_type: str) -> tuple[float, dict]:
    """POST every payload over CONCURRENCY keep-alive connections; (seconds, statuses)."""
    import aiohttp

    statuses: dict[int, int] = {}
    queue = iter(payloads)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    headers = {"Content-Type": content_type}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body in queue:
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1

        # one warm-up request per connection is not counted
        async with session.post(url, data=payloads[0], headers=headers) as r:
            await r.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, statuses


async def measure(
    kind: str, state: Path, payloads: list[bytes], events: int, content_type: str
) -> tuple[float, dict[str, Any]]:
    server = Server(kind, state)
    try:
        await server.ready()
        _, cpu_before = await server.count()
        seconds, statuses = await post_all(
            server.url + "/api/v1/events/auth", payloads, content_type
        )
        counted, cpu_after = await server.count()
    finally:
        server.stop()
    want = 204 if kind == "bare" else 200
    # the warm-up request's records are counted by the server too
    warm = payloads[0].count(b"\n") + 1
    ok = statuses == {want: len(payloads)} and counted == events + warm
    # the server's CPU seconds (warm-up and two count requests included): events per CPU
    # second is what one core of it serves when the client is not the limit
    cpu = cpu_after - cpu_before
    return events / seconds, {
        "seconds": round(seconds, 4),
        "statuses": statuses,
        "server_counted": counted - warm,
        "server_cpu_s": round(cpu, 4),
        "events_per_server_cpu_s": round(events / cpu) if cpu else None,
        "ok": ok,
    }


def per_cpu(row: Row) -> float:
    """The median of streamproc's events per server CPU second over the runs."""
    import statistics

    rates = [p["streamproc"]["events_per_server_cpu_s"] or 0 for p in row.extra.get("per_run", [])]
    return statistics.median(rates) if rates else 0.0


def run(ctx: Context) -> list[Row]:
    single_n = ctx.n(SINGLE_DEFAULT)
    ndjson_n = max(ctx.n(NDJSON_DEFAULT), 1)
    baseline = "bare aiohttp server answering 204 (body read)"
    single = Row(
        "ingest",
        f"POST /api/v1/events, 1 event per request, {CONCURRENCY} "
        f"keep-alive connections (judged at once)",
        "events/s",
        baseline_name=baseline,
        target=f">= {SINGLE_TARGET:,.0f} events/s on one server core",
        target_check=lambda r: per_cpu(r) >= SINGLE_TARGET,
    )
    batch = Row(
        "ingest",
        f"POST /api/v1/events, NDJSON of {min(BATCH, ndjson_n):,} events, "
        f"{CONCURRENCY} keep-alive connections (judged at once)",
        "events/s",
        baseline_name=baseline,
        target=f">= {NDJSON_TARGET:,.0f} events/s on one server core",
        target_check=lambda r: per_cpu(r) >= NDJSON_TARGET,
    )
    plans = [
        (single, bodies(single_n, 1), single_n, "application/json"),
        (batch, bodies(ndjson_n, BATCH), ndjson_n, "application/x-ndjson"),
    ]
    for i in range(ctx.runs):
        for row, payloads, events, ctype in plans:
            with tempfile.TemporaryDirectory(prefix="streamproc-bench-ingest-") as tmp:
                # alternate which server goes first, so neither always meets a warmer machine
                order = ("streamproc", "bare") if i % 2 == 0 else ("bare", "streamproc")
                results = {}
                for kind in order:
                    state = Path(tmp) / kind
                    os.makedirs(state, exist_ok=True)
                    results[kind] = asyncio.run(measure(kind, state, payloads, events, ctype))
            ours, bare = results["streamproc"], results["bare"]
            row.runs.append(ours[0])
            row.baseline_runs.append(bare[0])
            row.extra.setdefault("per_run", []).append({"streamproc": ours[1], "bare": bare[1]})
            prior = row.verified["ok"] if row.verified else True
            row.verified = {
                "ok": prior and ours[1]["ok"] and bare[1]["ok"],
                "events": events,
                "requests": len(payloads),
            }
            what = "1 event per request" if row is single else f"NDJSON of {BATCH:,}"
            ctx.step(
                f"ingest run {i + 1}/{ctx.runs} {what}: "
                f"{ours[0]:,.0f} events/s vs bare {bare[0]:,.0f}/s (server: "
                f"{ours[1]['events_per_server_cpu_s'] or 0:,} vs "
                f"{bare[1]['events_per_server_cpu_s'] or 0:,} events per CPU second)"
            )
    return [single, batch]
