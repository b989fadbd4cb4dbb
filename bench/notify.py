"""notify: notifications/s and p50/p99 latency through ``streamproc.notify.Notifier`` to 5
local HTTP receivers (Apprise ``json://`` URLs) that each take 20 ms to answer. The receivers
run in a child process (receivers.py), as a webhook would run on another machine.

Every alert is its own group (``group_by: [fingerprint]``, ``group_wait: 0``) and rate limits
are off, so each alert becomes one message per channel: N alerts -> 5 N deliveries. Latency is
from ``submit()`` of the alert's batch to its arrival at a receiver.

Baseline (same invocation): ``Apprise.notify`` called sequentially, once per alert, on an
Apprise object holding the same 5 URLs (what a polling script does). Targets: >= 500
deliveries/s and >= 10x the baseline.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import tempfile
import time
from typing import Any

from .common import Context, Row, skipped
from .receivers import Receivers

DEFAULT_ALERTS = 2000
CHANNELS = 5
DELAY = 0.02
BASELINE_MAX = 100  # sequential delivery is slow by design: 100 alerts x 5 x 20 ms = 10 s
TARGET = 500.0
_TAG = re.compile(r"bench-alert-(\d+)")


def make_alerts(n: int, run_no: int) -> list[Any]:
    from streamproc.alerts import Alert, fingerprint

    out = []
    for i in range(n):
        key = {"username": f"bench-alert-{i}", "ip_address": f"203.0.113.{i % 250 + 1}"}
        out.append(Alert(kind="brute_force", severity="high", status="firing", key=key,
                         fingerprint=fingerprint("brute_force", key, f"{run_no}-{i}"),
                         event_time=1_772_000_000.0 + i, title=f"bench-alert-{i} brute force",
                         body=f"bench-alert-{i}: 5 failed logins", family="auth-logs",
                         labels={"kind": "brute_force", "family": "auth-logs"},
                         evidence={"failures": 5}))
    return out


def notify_config(receivers: Receivers) -> dict[str, Any]:
    return {"urls": receivers.urls(), "routes": [], "default_routes": False,
            "group_by": ["fingerprint"], "group_wait": 0, "group_interval": 0, "rate": 0,
            "max_in_flight": 64, "timeout": 10}


def _alert_no(doc: Any) -> int | None:
    if not isinstance(doc, dict):
        return None
    for field in ("title", "message", "body"):
        m = _TAG.search(str(doc.get(field, "")))
        if m:
            return int(m.group(1))
    return None


async def ours(n: int, receivers: Receivers, run_no: int,
               timeout: float = 300.0) -> dict[str, Any]:
    from streamproc.notify import Notifier

    alerts = make_alerts(n, run_no)
    receivers.reset()
    with tempfile.TemporaryDirectory() as state_dir:
        cfg = notify_config(receivers)
        notifier = Notifier.from_config(cfg, state_dir=state_dir)
        await notifier.start()
        submitted: dict[int, float] = {}
        start = time.perf_counter()
        wall0 = time.time()
        for i in range(0, n, 100):
            now = time.time()
            for j in range(i, min(n, i + 100)):
                submitted[j] = now
            await notifier.submit(alerts[i:i + 100])
        want = n * CHANNELS
        deadline = time.monotonic() + timeout
        while receivers.count() < want and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - start
        await notifier.close()
    got = receivers.count()
    lat = []
    for arrivals in receivers.arrivals():
        for at, doc in arrivals:
            k = _alert_no(doc)
            if k is not None and k in submitted:
                lat.append((at - submitted[k]) * 1000.0)
    return {"seconds": seconds, "deliveries": got, "expected": want, "latencies_ms": lat,
            "started": wall0}


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


def run(ctx: Context) -> list[Row]:
    n = ctx.n(DEFAULT_ALERTS)
    receivers = Receivers(CHANNELS, DELAY)
    try:
        try:
            from streamproc.notify import Notifier  # noqa: F401
        except ImportError as exc:
            for _ in range(ctx.runs):
                ctx.step("notify skipped")
            return [skipped("notify", "deliveries/s, 5 channels x 20 ms",
                            f"streamproc.notify.Notifier is not available ({exc})")]
        row = Row("notify", f"deliveries/s, {CHANNELS} channels x {DELAY * 1000:.0f} ms",
                  "deliveries/s", baseline_name="sequential Apprise.notify",
                  target=f">= {TARGET:.0f}/s and >= 10x baseline",
                  target_check=lambda r: (r.median or 0) >= TARGET and (r.ratio or 0) >= 10)
        p99 = Row("notify", "delivery latency p99 (submit -> receiver)", "ms",
                  higher_is_better=False)
        p50 = Row("notify", "delivery latency p50 (submit -> receiver)", "ms",
                  higher_is_better=False)
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
            ctx.step(f"notify run {i + 1}/{ctx.runs}: {row.runs[-1]:,.0f}/s "
                     f"(baseline {base:,.0f}/s), {out['deliveries']}/{out['expected']} "
                     f"delivered, p99 {p99.runs[-1]:.0f} ms")
        row.verified = {"ok": ok, "alerts": n, "channels": CHANNELS,
                        "delivered_each_run": [r["deliveries"] for r in row.extra["per_run"]]}
        row.extra["mean_latency_ms"] = statistics.mean(p50.runs) if p50.runs else None
        return [row, p99, p50]
    finally:
        receivers.close()


STEPS_PER_RUN = 1
