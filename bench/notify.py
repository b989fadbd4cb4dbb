"""notify: notifications/s and p50/p99 latency through ``streamproc.notify.Notifier`` to 5
local HTTP receivers (Apprise ``json://`` URLs) that each take 20 ms to answer. The receivers
run in a child process (receivers.py), as a webhook would run on another machine.

Every alert is its own group (``group_by: [fingerprint]``, ``group_wait: 0``) and rate limits
are off, so each alert becomes one message per channel: N alerts -> 5 N deliveries. Latency is
from ``submit()`` of the alert's batch to its arrival at a receiver (before the receiver's
20 ms).

Each run measures, on fresh notify state:

1. baseline: ``Apprise.notify`` called sequentially, once per alert, on an Apprise object
   holding the same 5 URLs (what a polling script does). Targets: >= 500 deliveries/s and
   >= 10x the baseline;
2. burst: N alerts submitted at once in batches of 100, until every delivery arrived
   (deliveries/s; the latency rows are mostly queueing time);
3. paced: alerts submitted at 200/s in 20 ms ticks for up to 5 s, latency p99 at that rate;
4. isolation: the same with one of the 5 channels holding every request for 30 s (a fresh
   set of receivers, the notify timeout 2 s); p99 over the 4 healthy channels.
"""

from __future__ import annotations

import asyncio
import logging
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Context, Row, skipped
from .receivers import Receivers

DEFAULT_ALERTS = 2000
CHANNELS = 5
DELAY = 0.02
BASELINE_MAX = 100  # sequential delivery is slow by design: 100 alerts x 5 x 20 ms = 10 s
TARGET = 500.0
RATE = 200.0  # alerts/s for the paced measurements
PACED_SECONDS = 5.0  # at most; fewer alerts than RATE x this with a small --events
TICK = 0.02
_TAG = re.compile(r"bench-alert-(\d+)")


def make_alerts(n: int, salt: str) -> list[Any]:
    from streamproc.alerts import Alert, fingerprint

    out = []
    for i in range(n):
        key = {"username": f"bench-alert-{i}", "ip_address": f"203.0.113.{i % 250 + 1}"}
        out.append(
            Alert(
                kind="brute_force",
                severity="high",
                status="firing",
                key=key,
                fingerprint=fingerprint("brute_force", key, f"{salt}-{i}"),
                event_time=1_772_000_000.0 + i,
                title=f"bench-alert-{i} brute force",
                body=f"bench-alert-{i}: 5 failed logins",
                family="auth-logs",
                labels={"kind": "brute_force", "family": "auth-logs"},
                evidence={"failures": 5},
            )
        )
    return out


def notify_config(receivers: Receivers, timeout: float = 10.0) -> dict[str, Any]:
    return {
        "urls": receivers.urls(),
        "routes": [],
        "default_routes": False,
        "group_by": ["fingerprint"],
        "group_wait": 0,
        "group_interval": 0,
        "rate": 0,
        "max_in_flight": 64,
        "timeout": timeout,
        "flush_on_close": False,
        "close_timeout": "1s",
    }


def _alert_no(doc: Any) -> int | None:
    if not isinstance(doc, dict):
        return None
    for field in ("title", "message", "body"):
        m = _TAG.search(str(doc.get(field, "")))
        if m:
            return int(m.group(1))
    return None


def _latencies(
    receivers: Receivers, submitted: dict[int, float], healthy: int = CHANNELS
) -> list[float]:
    """ms from submit to arrival, every delivery to the first ``healthy`` receivers."""
    lat = []
    for arrivals in receivers.arrivals()[:healthy]:
        for at, doc in arrivals:
            k = _alert_no(doc)
            if k is not None and k in submitted:
                lat.append((at - submitted[k]) * 1000.0)
    return lat


async def ours(n: int, receivers: Receivers, run_no: int, timeout: float = 300.0) -> dict[str, Any]:
    """Burst: all ``n`` alerts submitted at once, in batches of 100."""
    from streamproc.notify import Notifier

    alerts = make_alerts(n, f"burst{run_no}")
    receivers.reset()
    with tempfile.TemporaryDirectory() as state_dir:
        notifier = Notifier.from_config(notify_config(receivers), state_dir=Path(state_dir))
        await notifier.start()
        submitted: dict[int, float] = {}
        start = time.perf_counter()
        wall0 = time.time()
        for i in range(0, n, 100):
            now = time.time()
            for j in range(i, min(n, i + 100)):
                submitted[j] = now
            await notifier.submit(alerts[i : i + 100])
        want = n * CHANNELS
        deadline = time.monotonic() + timeout
        while receivers.count() < want and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - start
        await notifier.close()
    return {
        "seconds": seconds,
        "deliveries": receivers.count(),
        "expected": want,
        "latencies_ms": _latencies(receivers, submitted),
        "started": wall0,
    }


async def paced(
    n: int, receivers: Receivers, run_no: int, *, healthy: int = CHANNELS, timeout: float = 10.0
) -> dict[str, Any]:
    """``n`` alerts submitted at ``RATE``/s; latency at the first ``healthy`` receivers."""
    from streamproc.notify import Notifier

    alerts = make_alerts(n, f"paced{run_no}-{healthy}")
    receivers.reset()
    with tempfile.TemporaryDirectory() as state_dir:
        notifier = Notifier.from_config(
            notify_config(receivers, timeout), state_dir=Path(state_dir)
        )
        await notifier.start()
        submitted: dict[int, float] = {}
        per_tick = max(1, int(RATE * TICK))
        t0 = time.perf_counter()
        for i in range(0, n, per_tick):
            now = time.time()
            for j in range(i, min(n, i + per_tick)):
                submitted[j] = now
            await notifier.submit(alerts[i : i + per_tick])
            await asyncio.sleep(max(0.0, t0 + (i + per_tick) / RATE - time.perf_counter()))
        want = n * healthy
        deadline = time.monotonic() + 60
        while receivers.count() < want and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await notifier.close()
    lat = _latencies(receivers, submitted, healthy)
    return {
        "rate": RATE,
        "alerts": n,
        "healthy_channels": healthy,
        "deliveries": len(lat),
        "expected": want,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat, default=None),
        "mean_ms": statistics.fmean(lat) if lat else None,
    }


def paced_one_hanging(n: int, run_no: int) -> dict[str, Any]:
    """``paced`` with the last channel holding every request: the others must not wait."""
    receivers = Receivers(CHANNELS, DELAY, hanging=1)
    quiet = logging.getLogger("streamproc.notify")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its timeouts and retries are the point, not news
    try:
        return asyncio.run(paced(n, receivers, run_no, healthy=CHANNELS - 1, timeout=2.0))
    finally:
        quiet.setLevel(level)
        receivers.close()


def baseline(n: int, receivers: Receivers) -> float:
    import apprise

    ap = apprise.Apprise()
    for url in receivers.urls():
        ap.add(url)
    receivers.reset()
    start = time.perf_counter()
    for i in range(n):
        ap.notify(body=f"bench-alert-{i}: 5 failed logins", title=f"bench-alert-{i}")
    seconds = time.perf_counter() - start
    got = receivers.count()
    return got / seconds


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1))))]


def _record(ctx: Context, row: Row, got: dict[str, Any], label: str) -> bool:
    """One paced run into its row; True when every delivery arrived."""
    row.runs.append(got["p99_ms"] or 0.0)
    row.extra.setdefault("per_run", []).append(got)
    ctx.step(f"{label}: p99 {row.runs[-1]:.0f} ms, {got['deliveries']}/{got['expected']} delivered")
    return bool(got["deliveries"] == got["expected"])


def run(ctx: Context) -> list[Row]:
    n = ctx.n(DEFAULT_ALERTS)
    n_paced = max(1, min(n, int(RATE * PACED_SECONDS)))
    receivers = Receivers(CHANNELS, DELAY)
    try:
        try:
            from streamproc.notify import Notifier  # noqa: F401
        except ImportError as exc:
            for _ in range(ctx.runs * STEPS_PER_RUN):
                ctx.step("notify skipped")
            return [
                skipped(
                    "notify",
                    "deliveries/s, 5 channels x 20 ms",
                    f"streamproc.notify.Notifier is not available ({exc})",
                )
            ]
        row = Row(
            "notify",
            f"deliveries/s, {CHANNELS} channels x {DELAY * 1000:.0f} ms",
            "deliveries/s",
            baseline_name="sequential Apprise.notify",
            target=f">= {TARGET:.0f}/s and >= 10x baseline",
            target_check=lambda r: (r.median or 0) >= TARGET and (r.ratio or 0) >= 10,
        )
        p99 = Row(
            "notify", "delivery latency p99 (submit -> receiver)", "ms", higher_is_better=False
        )
        p50 = Row(
            "notify", "delivery latency p50 (submit -> receiver)", "ms", higher_is_better=False
        )
        at_rate = Row(
            "notify", f"delivery latency p99 at {RATE:.0f} alerts/s", "ms", higher_is_better=False
        )
        hanging = Row(
            "notify",
            f"delivery latency p99 at {RATE:.0f} alerts/s, one of {CHANNELS} channels hanging",
            "ms",
            higher_is_better=False,
        )
        ok = True
        for i in range(ctx.runs):
            base = baseline(min(n, BASELINE_MAX, max(10, n // 10)), receivers)
            row.baseline_runs.append(base)
            out = asyncio.run(ours(n, receivers, i))
            row.runs.append(out["deliveries"] / out["seconds"])
            lat = out.pop("latencies_ms")
            p99.runs.append(percentile(lat, 99) or 0.0)
            p50.runs.append(percentile(lat, 50) or 0.0)
            row.extra.setdefault("per_run", []).append(out | {"baseline": base})
            ok = ok and out["deliveries"] == out["expected"]
            ctx.step(
                f"notify run {i + 1}/{ctx.runs}: {row.runs[-1]:,.0f}/s "
                f"(baseline {base:,.0f}/s), {out['deliveries']}/{out['expected']} "
                f"delivered, p99 {p99.runs[-1]:.0f} ms"
            )
            got = asyncio.run(paced(n_paced, receivers, i))
            ok = _record(ctx, at_rate, got, f"notify run {i + 1}/{ctx.runs}, paced") and ok
            got = paced_one_hanging(n_paced, i)
            ok = _record(ctx, hanging, got, f"notify run {i + 1}/{ctx.runs}, one hanging") and ok
        row.verified = {
            "ok": ok,
            "alerts": n,
            "channels": CHANNELS,
            "delivered_each_run": [r["deliveries"] for r in row.extra["per_run"]],
            "paced_delivered_each_run": {
                name: [r["deliveries"] for r in x.extra["per_run"]]
                for name, x in (("all healthy", at_rate), ("one hanging", hanging))
            },
        }
        row.extra["mean_latency_ms"] = statistics.mean(p50.runs) if p50.runs else None
        return [row, p99, p50, at_rate, hanging]
    finally:
        receivers.close()


STEPS_PER_RUN = 3
