"""Where generated events sit on the time line: the default span, a diurnal load curve, spaced
incident starts and the timestamp formats a record can carry."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime

# A fixed end date, so the sample streams and default runs are reproducible byte for byte.
DEFAULT_END = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()
DEFAULT_DURATION = 3 * 86400.0

TS_FORMATS = ("iso", "iso_ms", "epoch_s", "epoch_ms")


def diurnal_weight(ts: float) -> float:
    """Relative load at ``ts``: trough ~04:00 UTC, peak ~15:00 UTC, weekends at 60%."""
    hour = (ts % 86400.0) / 3600.0
    day = 0.55 + 0.45 * math.sin((hour - 9.5) / 24.0 * 2 * math.pi)
    weekday = datetime.fromtimestamp(ts, UTC).weekday()
    return day * (0.6 if weekday >= 5 else 1.0) + 0.05


def diurnal_times(rng: random.Random, n: int, start: float, end: float) -> list[float]:
    """``n`` sorted event times on [start, end) drawn from the diurnal curve (per-minute)."""
    if n <= 0 or end <= start:
        return []
    step = 60.0
    buckets = max(1, int((end - start) // step))
    cum: list[float] = []
    total = 0.0
    for b in range(buckets):
        total += diurnal_weight(start + b * step)
        cum.append(total)
    picks = rng.choices(range(buckets), cum_weights=cum, k=n)
    rnd = rng.random
    times = [start + b * step + rnd() * step for b in picks]
    times.sort()
    return times


class Formatter:
    """Epoch seconds -> the requested timestamp representation (cached per second)."""

    def __init__(self, fmt: str) -> None:
        if fmt not in TS_FORMATS:
            raise ValueError(f"unknown timestamp format {fmt!r}; use one of {TS_FORMATS}")
        self.fmt = fmt
        self._sec = -1
        self._text = ""

    def __call__(self, ts: float) -> str | int | float:
        fmt = self.fmt
        if fmt == "epoch_ms":
            return int(ts * 1000)
        if fmt == "epoch_s":
            return round(ts, 3)
        sec = int(ts)
        minute = sec - sec % 60
        if minute != self._sec:
            self._sec = minute
            self._text = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute))
        if fmt == "iso_ms":
            return f"{self._text}{sec - minute:02d}.{int((ts - sec) * 1000):03d}Z"
        return f"{self._text}{sec - minute:02d}Z"


def spaced_starts(rng: random.Random, n: int, lo: float, hi: float, gap: float) -> list[float]:
    """``n`` sorted times in [lo, hi) at least ``gap`` apart where the span allows."""
    if n <= 0:
        return []
    span = hi - lo
    gap = min(gap, span / (n + 1))
    free = span - gap * n
    cuts = sorted(rng.random() * free for _ in range(n))
    return [lo + c + i * gap for i, c in enumerate(cuts)]
