"""host-metrics traffic: hosts reporting CPU, memory, disk and load on a fixed interval, with
breaches that recover and hosts that go silent for a while.

The levels come from metric_threshold as it judges with its defaults (warning, critical and
hysteresis per metric), the silence from host_silent's factor. The background stays below
the line a breach resolves at (warning minus hysteresis), so every breach fires once and
resolves once; each incident gets a host of its own, so nothing can flap.
"""

from __future__ import annotations

import random
from collections import defaultdict

from .expected import default_detector, detector_defaults
from .result import Incident
from .sampling import weighted
from .stream import FamilyStream, FamilyTraffic
from .timeline import Formatter, diurnal_weight
from .vocabulary import HOST_ENVS, HOST_ROLES, REGIONS

FAMILY = "host-metrics"
# The kinds this traffic is counted for, in the order reports list them.
KINDS: tuple[str, ...] = ("metric_threshold", "host_silent")

# Per metric, how the traffic sits around metric_threshold's levels: (how far the background
# stays under the resolve line, lowest and highest value of a warning breach over warning).
_SHAPES = {
    "cpu_percent": (3.0, 4.0, 13.0),
    "memory_percent": (2.0, 2.5, 8.5),
    "disk_percent": (1.0, 1.5, 4.0),
    "load_average": (0.1, 1.0, 5.0),
}
# A critical breach: (lowest, highest) over the critical level.
_CRITICAL_OVER = (1.5, 4.5)


def default_plan(n: int) -> dict[str, int]:
    """How many incidents of each kind ``n`` host-metrics events get by default."""
    hosts = max(4, min(5000, n // 400))
    return {
        "metric_threshold": max(1, min(hosts // 3, n // 4000)),
        "host_silent": max(1, min(hosts // 6, n // 10000)),
    }


def _levels() -> dict[str, tuple[float, float | None, float]]:
    """metric -> (warning, critical or None, hysteresis) of a default metric_threshold."""
    detector = default_detector("metric_threshold")
    return {metric: detector.rules[metric] for metric in _SHAPES}


def generate(
    rng: random.Random, n: int, start: float, end: float, fmt: Formatter, plan: dict[str, int]
) -> FamilyTraffic:
    levels = _levels()
    ceiling = {m: levels[m][0] - levels[m][2] - _SHAPES[m][0] for m in _SHAPES}
    silence_factor = float(detector_defaults("host_silent")["factor"])

    def breach_range(metric: str, critical: bool) -> tuple[float, float]:
        warn, crit, _ = levels[metric]
        if critical and crit is not None:
            return crit + _CRITICAL_OVER[0], crit + _CRITICAL_OVER[1]
        return warn + _SHAPES[metric][1], warn + _SHAPES[metric][2]

    s = FamilyStream(FAMILY, fmt, end)
    span = end - start
    n_hosts = max(4, min(5000, n // 400))
    n_hosts = max(n_hosts, plan.get("metric_threshold", 0) + plan.get("host_silent", 0) + 2)
    interval = min(900.0, max(10.0, span * n_hosts / max(1, n)))
    samples = max(1, n // n_hosts)
    first = end - samples * interval
    hosts: list[str] = []
    taken: set[str] = set()
    roles = weighted(rng, HOST_ROLES, n_hosts * 2)
    envs = weighted(rng, HOST_ENVS, n_hosts * 2)
    i = 0
    while len(hosts) < n_hosts:
        name = f"{roles[i]}-{rng.randrange(1, 60):02d}.{envs[i]}.{rng.choice(REGIONS)}.internal"
        i = (i + 1) % len(roles)
        if name not in taken:
            taken.add(name)
            hosts.append(name)
    expected: dict[str, int] = defaultdict(int)
    resolved: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []

    # Incidents, one per host (no host breaches twice, so nothing can flap).
    order = list(range(n_hosts))
    rng.shuffle(order)
    breach: dict[int, tuple[str, float, float, float]] = {}  # host -> (metric, t0, t1, level)
    silent: dict[int, tuple[float, float]] = {}
    lo, hi = first + (end - first) * 0.15, end - (end - first) * 0.15
    kinds = ("cpu_percent", "cpu_percent", "memory_percent", "disk_percent", "load_average")
    for j in range(plan.get("metric_threshold", 0)):
        h = order.pop()
        metric = kinds[j % len(kinds)]
        hold = rng.randint(3, 8) * interval
        t0 = rng.uniform(lo, max(lo, hi - hold))
        critical = metric == "cpu_percent" and j % 2 == 1
        # one level drawn per metric, always in this order, so the draws stay aligned
        drawn = {m: rng.uniform(*breach_range(m, critical and m == "cpu_percent")) for m in _SHAPES}
        level = drawn[metric]
        breach[h] = (metric, t0, t0 + hold, level)
        expected["metric_threshold"] += 1
        resolved["metric_threshold"] += 1
        incidents.append(
            Incident(
                "metric_threshold",
                FAMILY,
                t0,
                {"host": hosts[h], "metric": metric},
                f"{metric} {level:.1f} for {hold / 60:.0f} min"
                + (" (critical)" if critical else ""),
            )
        )
    for _ in range(plan.get("host_silent", 0)):
        h = order.pop()
        # silent for well over host_silent's factor times the interval
        gap = max(900.0, interval * rng.uniform(2 * silence_factor, 4 * silence_factor))
        t0 = rng.uniform(lo, max(lo, hi - gap))
        silent[h] = (t0, t0 + gap)
        expected["host_silent"] += 1
        resolved["host_silent"] += 1
        incidents.append(
            Incident(
                "host_silent", FAMILY, t0, {"host": hosts[h]}, f"silent for {gap / 60:.0f} min"
            )
        )

    base = [(rng.uniform(12, 40), rng.uniform(35, 65), rng.uniform(25, 70)) for _ in hosts]
    region = [h.split(".")[2] for h in hosts]
    rows: list[tuple[float, int]] = []
    phase = [rng.uniform(0, interval) for _ in hosts]
    jitter = interval * 0.02
    for h in range(n_hosts):
        t = first + phase[h]
        sil = silent.get(h)
        while t < end:
            if not (sil and sil[0] <= t < sil[1]):
                rows.append((t + rng.uniform(-jitter, jitter), h))
            t += interval
    rows.sort()
    rnd = rng.random
    cpu_top, mem_top = ceiling["cpu_percent"], ceiling["memory_percent"]
    disk_top, load_top = ceiling["disk_percent"], ceiling["load_average"]
    for ts, h in rows:
        cpu0, mem0, disk0 = base[h]
        diurnal = diurnal_weight(ts)
        cpu = min(cpu_top, cpu0 + 28 * diurnal + rnd() * 8)
        mem = min(mem_top, mem0 + 6 * diurnal + rnd() * 4)
        disk = min(disk_top, disk0 + 10 * (ts - first) / max(1.0, end - first) + rnd() * 0.3)
        load = min(load_top, cpu / 26.0 + rnd() * 0.4)
        b = breach.get(h)
        if b and b[1] <= ts < b[2]:
            value = b[3] + rnd() * 0.8 if b[0] != "load_average" else b[3] + rnd() * 0.5
            if b[0] == "cpu_percent":
                cpu = min(value, 99.9)
            elif b[0] == "memory_percent":
                mem = value
            elif b[0] == "disk_percent":
                disk = value
            else:
                load = value
        elif b and ts >= b[2] and b[0] == "disk_percent":
            disk = min(disk, 70.0)  # someone cleaned up the disk
        s.emit(
            ts,
            {
                "timestamp": None,
                "host": hosts[h],
                "cpu_percent": round(cpu, 1),
                "memory_percent": round(mem, 1),
                "disk_percent": round(disk, 1),
                "load_average": round(load, 2),
                "region": region[h],
            },
        )
    return FamilyTraffic(s, expected, incidents, resolved)
