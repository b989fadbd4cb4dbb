"""state: bytes per tracked key at 1,000,000 keys; checkpoint and restore time.

Memory is what tracemalloc sees allocated by a detector while it tracks N distinct keys (one
event each, so each key holds the smallest real state: one window entry, one sample); the key
strings themselves are counted, because real state holds them too. Checkpoint is
``snapshot()`` + ``orjson.dumps`` (what the runtime writes to the state topic); restore is
``orjson.loads`` + ``restore()`` into a fresh detector, checked to hold all N keys again.

brute_force (the reference detector) is measured in every run; every other registered
detector that keeps keyed state is measured once, at the same N, for the table in
RESULTS.md. Target: <= 300 bytes per key.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from .common import Context, Row

DEFAULT_KEYS = 1_000_000
TARGET = 300.0
CHUNK = 20_000
T0 = 1_772_000_000.0


def _ip(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


# One synthetic record per key, per family: key i is distinct in every field a detector of
# the family could key on (username, ip_address, host, ticket_id, project...).
FACTORIES: dict[str, Callable[[int], dict[str, Any]]] = {
    "auth-logs": lambda i: {
        "username": f"user{i:07d}",
        "ip_address": _ip(i),
        "success": False,
        "user_agent": "OpenSSH_9.6p1",
        "country": "US",
    },
    "api-access-logs": lambda i: {
        "endpoint": "/api/v1/products?page=2",
        "method": "GET",
        "status_code": 200,
        "ip_address": _ip(i),
        "user_agent": "okhttp/4.12.0",
    },
    "host-metrics": lambda i: {
        "host": f"web-{i:07d}.prod",
        "cpu_percent": 35.0,
        "memory_percent": 50.0,
        "disk_percent": 40.0,
        "load_average": 1.0,
    },
    "cicd-events": lambda i: {
        "type": "pipeline",
        "status": "success",
        "project": f"project-{i:07d}",
        "branch": "main",
    },
    "support-tickets": lambda i: {
        "event": "created",
        "ticket_id": f"TCK-{i:07d}",
        "priority": "low",
        "subject": "Invoice question",
    },
    "business-metrics": lambda i: {"metric": f"kpi_{i:07d}", "value": 1.0},
}


def feed(detector: Any, family: str, n: int) -> None:
    from streamproc.events import Event

    make = FACTORIES[family]
    for start in range(0, n, CHUNK):
        # 0.01 s apart: 1M keys span ~3 hours of event time, so nothing expires mid-feed
        # for detectors whose windows are >= 3 h; shorter windows are swept on watermarks.
        events = [
            Event(family, T0 + i * 0.01, {**make(i), "timestamp": T0 + i * 0.01}, family, 0, i)
            for i in range(start, min(n, start + CHUNK))
        ]
        detector.process(events)


def measure(kind: str, n: int, *, memory: bool = True) -> dict[str, Any]:
    """Feed ``n`` keys to a fresh ``kind`` detector; memory, checkpoint and restore figures."""
    from streamproc.detectors import REGISTRY
    from streamproc.detectors.base import DetectorContext

    cls = REGISTRY[kind]
    gc.collect()
    if memory:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    detector = cls(None, DetectorContext(key_cap=max(n, 1)))
    feed(detector, cls.family, n)
    gc.collect()
    out: dict[str, Any] = {"kind": kind, "family": cls.family, "fed": n}
    keys = detector.state_size()
    out["keys"] = keys
    if memory:
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        out["bytes"] = used
        out["bytes_per_key"] = used / keys if keys else None
    start = time.perf_counter()
    blob = orjson.dumps(detector.snapshot(), option=orjson.OPT_SERIALIZE_NUMPY)
    out["checkpoint_s"] = time.perf_counter() - start
    out["checkpoint_bytes"] = len(blob)
    del detector
    gc.collect()
    fresh = cls(None, DetectorContext(key_cap=max(n, 1)))
    start = time.perf_counter()
    fresh.restore(orjson.loads(blob))
    out["restore_s"] = time.perf_counter() - start
    out["restored_keys"] = fresh.state_size()
    out["restore_ok"] = fresh.state_size() == keys
    return out


def run(ctx: Context) -> list[Row]:
    from streamproc.detectors import REGISTRY

    n = ctx.n(DEFAULT_KEYS)
    mem = Row(
        "state",
        "brute_force bytes per tracked key",
        "bytes/key",
        higher_is_better=False,
        target=f"<= {TARGET:.0f} bytes/key",
        target_check=lambda r: (r.median or 1e9) <= TARGET,
    )
    ckpt = Row("state", "brute_force checkpoint (snapshot + orjson)", "s", higher_is_better=False)
    restore = Row("state", "brute_force restore (orjson + restore)", "s", higher_is_better=False)
    mem.extra["keys"] = n
    restore_ok = True
    for i in range(ctx.runs):
        m = measure("brute_force", n)
        mem.runs.append(m["bytes_per_key"] or 0.0)
        ckpt.runs.append(m["checkpoint_s"])
        ckpt.extra["checkpoint_bytes"] = m["checkpoint_bytes"]
        restore.runs.append(m["restore_s"])
        restore_ok = restore_ok and m["restore_ok"] and m["keys"] == n
        mem.extra.setdefault("per_run", []).append(m)
        ctx.step(
            f"state run {i + 1}/{ctx.runs}: {m['bytes_per_key'] or 0:,.0f} bytes/key, "
            f"checkpoint {m['checkpoint_s']:.2f}s, restore {m['restore_s']:.2f}s"
        )
    # The restore is an answer too: all keys must come back.
    restore.verified = {
        "ok": restore_ok,
        "keys": n,
        "restored": mem.extra["per_run"][-1]["restored_keys"],
    }
    mem.verified = {
        "ok": mem.extra["per_run"][-1]["keys"] == n,
        "tracked_keys": mem.extra["per_run"][-1]["keys"],
        "keys_fed": n,
    }
    rows = [mem, ckpt, restore]
    others = {}
    for kind in sorted(REGISTRY):
        if kind == "brute_force":
            continue
        try:
            # Stateless detectors (deployment, ticket_created...) keep no keys: a small probe
            # says so without feeding them a million events under tracemalloc.
            probe = measure(kind, min(n, 1000), memory=False)
            if not probe["keys"]:
                others[kind] = {"keys": 0, "note": "no keyed state"}
                continue
            m = measure(kind, n)
        except Exception as exc:  # noqa: BLE001 - one detector's failure is reported, not fatal
            others[kind] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        others[kind] = m
    mem.extra["other_detectors"] = others
    for kind, m in others.items():
        if m.get("keys"):
            row = Row(
                "state",
                f"{kind} bytes per tracked key (1 run)",
                "bytes/key",
                runs=[m["bytes_per_key"]],
                higher_is_better=False,
                target=f"<= {TARGET:.0f} bytes/key",
                target_check=lambda r: (r.median or 1e9) <= TARGET,
            )
            row.extra = {k: v for k, v in m.items() if k != "kind"}
            rows.append(row)
    ctx.step(f"state: {len(others)} other detectors measured once")
    return rows


STEPS_PER_RUN = 1
EXTRA_STEPS = 1
