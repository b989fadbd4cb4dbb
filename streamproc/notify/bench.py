"""Measure notify delivery: throughput, the naive baseline, isolation and added latency.

For ``streamproc bench notify`` (bench/), and runnable alone::

    python -m streamproc.notify.bench --alerts 2000 --channels 5 --latency 0.02

Receivers run in a separate process (asyncio HTTP servers, one per channel) so that their
CPU does not count against the pipeline; each records when every message arrived and which
alert refs it carried. Three measurements, same receivers, same run:

1. naive: sequential ``Apprise.notify`` per alert to all channels (what user scripts do);
2. throughput: the Notifier, alerts submitted in batches of 200, until every delivery arrived;
3. isolation + latency: alerts submitted at ``rate``/s, one channel hanging 30 s (optional);
   latency = arrival at the receiver - submit() call, p50/p99 over the healthy channels.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import re
import statistics
import tempfile
import time
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from ..alerts import Alert, fingerprint

_REF = re.compile(rb"ref ([0-9a-f]{16})")
_LEN = re.compile(rb"(?i)content-length:\s*(\d+)")


def _receivers(conn: Connection, n: int, latency: float, hang: int) -> None:
    async def main() -> None:
        records: list[list[tuple[float, str]]] = [[] for _ in range(n)]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         idx: int) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    m = _LEN.search(head)
                    body = await reader.readexactly(int(m.group(1))) if m else b""
                    now = time.time()
                    for ref in _REF.findall(body):
                        records[idx].append((now, ref.decode()))
                    await asyncio.sleep(30.0 if idx == hang else latency)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                    asyncio.CancelledError):
                pass
            finally:
                writer.close()

        servers = [await asyncio.start_server(partial(handle, idx=i), "127.0.0.1", 0,
                                              backlog=1024) for i in range(n)]
        conn.send([s.sockets[0].getsockname()[1] for s in servers])
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "records":
                conn.send(records)
                records = [[] for _ in range(n)]
            elif cmd == "stop":
                return

    asyncio.run(main())


class Receivers:
    def __init__(self, n: int, latency: float, hang: int = -1) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_receivers, args=(child, n, latency, hang), daemon=True)
        self.proc.start()
        self.ports: list[int] = self.conn.recv()

    def urls(self) -> list[str]:
        return [f"json://127.0.0.1:{p}/hook" for p in self.ports]

    def records(self) -> list[list[tuple[float, str]]]:
        self.conn.send("records")
        return self.conn.recv()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def _alerts(n: int, tag: str) -> list[Alert]:
    out = []
    for i in range(n):
        key = {"username": f"{tag}{i}", "ip_address": f"10.{i % 250}.0.1"}
        out.append(Alert(kind="brute_force", severity="high", status="firing", key=key,
                         fingerprint=fingerprint("brute_force", key, tag), event_time=time.time(),
                         title=f"Brute force on {tag}{i}", body="5 failed logins",
                         labels={"kind": "brute_force"}, family="auth-logs"))
    return out


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def naive(urls: list[str], n: int) -> dict[str, float]:
    import apprise
    ap = apprise.Apprise()
    for u in urls:
        ap.add(u)
    started = time.perf_counter()
    for a in _alerts(n, "naive"):
        ap.notify(body=f"{a.body}\n\nref {a.fingerprint}", title=a.title)
    elapsed = time.perf_counter() - started
    return {"alerts": n, "deliveries": n * len(urls), "seconds": elapsed,
            "deliveries_per_s": n * len(urls) / elapsed}


def _cfg(urls: list[str], max_in_flight: int, timeout: float) -> dict[str, Any]:
    return {"urls": urls, "group_by": ["fingerprint"], "group_wait": 0, "group_interval": 0,
            "rate": 0, "max_in_flight": max_in_flight, "timeout": f"{timeout}s",
            "flush_on_close": False, "close_timeout": "1s",
            "retry": {"initial": "1s", "max_delay": "5s", "max_attempts": 5}}


async def throughput(urls: list[str], n: int, *, max_in_flight: int = 16,
                     batch: int = 200) -> dict[str, float]:
    from . import Notifier
    with tempfile.TemporaryDirectory() as state:
        notifier = Notifier.from_config(_cfg(urls, max_in_flight, 10.0), state_dir=Path(state))
        await notifier.start()
        alerts = _alerts(n, "tp")
        started = time.perf_counter()
        for i in range(0, n, batch):
            await notifier.submit(alerts[i:i + batch])
        want = n * len(urls)
        deadline = time.monotonic() + 300
        while notifier.counters["alerts_delivered"] < want and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        delivered = notifier.counters["alerts_delivered"]
        await notifier.close()
    return {"alerts": n, "deliveries": delivered, "seconds": elapsed,
            "deliveries_per_s": delivered / elapsed}


async def paced(urls: list[str], receivers: Receivers, *, rate: float, seconds: float,
                max_in_flight: int = 16, healthy: int | None = None,
                timeout: float = 10.0) -> dict[str, float]:
    """Submit ``rate`` alerts/s for ``seconds``; latency at the healthy receivers."""
    from . import Notifier
    healthy = len(urls) if healthy is None else healthy
    receivers.records()  # reset
    with tempfile.TemporaryDirectory() as state:
        notifier = Notifier.from_config(_cfg(urls, max_in_flight, timeout), state_dir=Path(state))
        await notifier.start()
        n = int(rate * seconds)
        alerts = _alerts(n, f"paced{rate}")
        submitted: dict[str, float] = {}
        t0 = time.perf_counter()
        tick = 0.02  # submit in small batches every 20 ms
        per_tick = max(1, int(rate * tick))
        for i in range(0, n, per_tick):
            chunk = alerts[i:i + per_tick]
            now = time.time()
            for a in chunk:
                submitted[a.fingerprint] = now
            await notifier.submit(chunk)
            target = t0 + (i + per_tick) / rate
            await asyncio.sleep(max(0.0, target - time.perf_counter()))
        want = n * healthy
        deadline = time.monotonic() + 60
        while notifier.counters["alerts_delivered"] < want and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await notifier.close()
    records = receivers.records()
    lat = [(t - submitted[ref]) * 1000 for recs in records[:healthy] for t, ref in recs
           if ref in submitted]
    return {"rate": rate, "alerts": n, "healthy_channels": healthy, "deliveries": len(lat),
            "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99), "max_ms": max(lat or [0.0]),
            "mean_ms": statistics.fmean(lat) if lat else float("nan")}


def run_bench(*, alerts: int = 2000, channels: int = 5, latency: float = 0.02,
              naive_alerts: int = 200, rate: float = 200.0, seconds: float = 5.0,
              max_in_flight: int = 16) -> dict[str, Any]:
    """All three measurements; returns a dict of figures (and ratios) for RESULTS.md."""
    out: dict[str, Any] = {"channels": channels, "receiver_latency_ms": latency * 1000,
                           "max_in_flight_per_channel": max_in_flight}
    rx = Receivers(channels, latency)
    try:
        out["naive"] = naive(rx.urls(), naive_alerts)
        out["pipeline"] = asyncio.run(throughput(rx.urls(), alerts, max_in_flight=max_in_flight))
        out["speedup"] = out["pipeline"]["deliveries_per_s"] / out["naive"]["deliveries_per_s"]
        out["latency_at_rate"] = asyncio.run(paced(rx.urls(), rx, rate=rate, seconds=seconds,
                                                   max_in_flight=max_in_flight))
    finally:
        rx.stop()
    # isolation: the last channel hangs 30 s on every request
    rx = Receivers(channels, latency, hang=channels - 1)
    try:
        out["one_channel_hanging"] = asyncio.run(paced(
            rx.urls(), rx, rate=rate, seconds=seconds, max_in_flight=max_in_flight,
            healthy=channels - 1, timeout=2.0))
    finally:
        rx.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=2000)
    p.add_argument("--channels", type=int, default=5)
    p.add_argument("--latency", type=float, default=0.02)
    p.add_argument("--naive-alerts", type=int, default=200)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--max-in-flight", type=int, default=16)
    a = p.parse_args(argv)
    result = run_bench(alerts=a.alerts, channels=a.channels, latency=a.latency,
                       naive_alerts=a.naive_alerts, rate=a.rate, seconds=a.seconds,
                       max_in_flight=a.max_in_flight)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
