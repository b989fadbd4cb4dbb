"""business-metrics traffic: daily KPIs, reported at 00:05 UTC for the day before.

Revenue moves a few percent a day, between the target-missed and target-exceeded lines; on
incident days it drops (between revenue_drop's ``drop`` and ``critical_drop``), misses the
target (between revenue_target_missed's two ratios) or exceeds it. Every report is counted
by the detectors' own rules with their default settings, one alert per firing day, and the
incident values keep clear of the lines they do not aim at.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict

from .expected import detector_defaults
from .result import Incident
from .stream import FamilyStream, FamilyTraffic
from .timeline import Formatter
from .vocabulary import CURRENCY, DAILY_TARGET

FAMILY = "business-metrics"
# The kinds this traffic is counted for, in the order reports list them.
KINDS: tuple[str, ...] = (
    "revenue_target_missed",
    "revenue_drop",
    "revenue_target_exceeded",
    "metric_below",
)
_KPIS = ("conversion_rate", "daily_active_users", "session_duration")


def default_plan(n: int) -> dict[str, int]:
    """How many incidents of each kind ``n`` business-metrics events get by default."""
    days = max(3, n // 4)
    return {
        "revenue_drop": 1 if days >= 6 else 0,
        "revenue_target_missed": 1 if days >= 9 else 0,
        "revenue_target_exceeded": 1 if days >= 12 else 0,
        "metric_below": min(3, days // 4),
    }


def normal_move() -> float:
    """The most revenue moves from one normal day to the next: well short of revenue_drop."""
    return _ratio(float(detector_defaults("revenue_drop")["drop"]) - 0.06)


def _ratio(x: float) -> float:
    """``x`` as the decimal fraction it stands for (0.8 + 0.02 is 0.82, not 0.8200000000000001)."""
    return round(x, 6)


def generate(
    rng: random.Random, n: int, start: float, end: float, fmt: Formatter, plan: dict[str, int]
) -> FamilyTraffic:
    """``n`` / 4 days (a revenue report and one per KPI each) that end at ``end``."""
    missed = detector_defaults("revenue_target_missed")
    drop_rule = detector_defaults("revenue_drop")
    exceeded = detector_defaults("revenue_target_exceeded")
    floors = detector_defaults("metric_below")
    miss_ratio, miss_high = float(missed["warning_ratio"]), float(missed["high_ratio"])
    drop, critical_drop = float(drop_rule["drop"]), float(drop_rule["critical_drop"])
    exceed_ratio = float(exceeded["ratio"])

    s = FamilyStream(FAMILY, fmt, end)
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    days = max(3, n // 4)
    last_midnight = math.floor(end / 86400.0) * 86400.0
    if last_midnight + 300 >= end:
        last_midnight -= 86400.0
    first_day = last_midnight - days * 86400.0  # the day the first report covers
    target = DAILY_TARGET

    def money(ratio: float) -> float:
        """``ratio`` of the target, in cents."""
        return round(_ratio(ratio) * target, 2)

    # Where the revenue goes, relative to the target or to the day before.
    floor_day = money(miss_ratio + 0.01)  # a normal day: just above the miss line
    top_day = money(exceed_ratio - 0.01)  # ... and just under the exceeded line
    move = normal_move()  # ... and moves less than the drop line
    normal_down, normal_up = _ratio(1 - move), _ratio(1 + move)
    drop_to = (_ratio(1 - critical_drop + 0.04), _ratio(1 - drop - 0.03))
    miss_to = (money(miss_high + 0.06), money(miss_ratio - 0.02))
    exceed_to = (money(exceed_ratio + 0.01), money(exceed_ratio + 0.08))
    # Incident days: spaced >= 3 days apart, never the first two days.
    kinds = (
        ["revenue_drop"] * plan.get("revenue_drop", 0)
        + ["revenue_target_missed"] * plan.get("revenue_target_missed", 0)
        + ["revenue_target_exceeded"] * plan.get("revenue_target_exceeded", 0)
    )
    below_kinds = [_KPIS[i % 3] for i in range(plan.get("metric_below", 0))]
    candidates = list(range(2, days, 3))
    rng.shuffle(candidates)
    rev_days = dict(zip(sorted(candidates[: len(kinds)]), kinds, strict=False))
    candidates2 = list(range(1, days, 2))
    rng.shuffle(candidates2)
    below_days = dict(zip(candidates2[: len(below_kinds)], below_kinds, strict=False))
    prev = target
    for d in range(days):
        day_start = first_day + d * 86400.0
        ts = day_start + 86400.0 + 300.0 + rng.uniform(0, 60)
        date = time.strftime("%Y-%m-%d", time.gmtime(day_start))
        weekend = time.gmtime(day_start).tm_wday >= 5
        kind = rev_days.get(d)
        if kind == "revenue_drop":
            rev = prev * rng.uniform(*drop_to)
            # stay clear of the target-missed line
            if _ratio(miss_ratio - 0.02) * target < rev < _ratio(miss_ratio + 0.02) * target:
                rev = (
                    _ratio(miss_ratio + 0.03) * target
                    if rev > miss_ratio * target
                    else _ratio(miss_ratio - 0.03) * target
                )
        elif kind == "revenue_target_missed":
            rev = rng.uniform(*miss_to)
            if -_ratio(drop + 0.02) < (rev - prev) / prev < -_ratio(drop - 0.02):
                # stay clear of the drop line
                rev = (
                    prev * _ratio(1 - drop + 0.03)
                    if prev * _ratio(1 - drop + 0.03) < miss_to[1]
                    else prev * _ratio(1 - drop - 0.05)
                )
        elif kind == "revenue_target_exceeded":
            rev = rng.uniform(*exceed_to)
        else:
            goal = target * (0.93 if weekend else 1.03) * rng.uniform(0.95, 1.05)
            rev = min(max(goal, prev * normal_down, floor_day), prev * normal_up, top_day)
            rev = max(rev, floor_day)
        rev = round(rev, 2)
        change = (rev - prev) / prev
        # Count by the detectors' rules (margins keep values off the thresholds).
        fired = []
        if rev < miss_ratio * target:
            fired.append("revenue_target_missed")
        if change < -drop:
            fired.append("revenue_drop")
        if rev >= exceed_ratio * target:
            fired.append("revenue_target_exceeded")
        for k in fired:
            expected[k] += 1
            incidents.append(
                Incident(
                    k,
                    FAMILY,
                    ts,
                    {"metric": "revenue"},
                    f"{date}: {rev:,.0f} vs {prev:,.0f} (target {target:,.0f})",
                )
            )
        s.emit(
            ts,
            {
                "timestamp": None,
                "metric": "revenue",
                "daily_revenue": rev,
                "previous_day_revenue": round(prev, 2),
                "daily_target": target,
                "currency": CURRENCY,
                "date": date,
            },
        )
        prev = rev
        low = below_days.get(d)
        values = {
            "conversion_rate": (
                round(rng.uniform(0.021, 0.027), 4)
                if low == "conversion_rate"
                else round(rng.uniform(0.034, 0.048), 4)
            ),
            "daily_active_users": (
                rng.randint(7000, 9200)
                if low == "daily_active_users"
                else rng.randint(12000, 19000) - (2000 if weekend else 0)
            ),
            "session_duration": (
                round(rng.uniform(220, 280), 1)
                if low == "session_duration"
                else round(rng.uniform(330, 560), 1)
            ),
        }
        for j, (metric, value) in enumerate(values.items()):
            s.emit(ts + j + 1, {"timestamp": None, "metric": metric, "value": value, "date": date})
        for metric, value in values.items():
            if value < float(floors[metric]):
                expected["metric_below"] += 1
                incidents.append(
                    Incident(
                        "metric_below",
                        FAMILY,
                        ts,
                        {"metric": metric},
                        f"{date}: {metric} = {value}",
                    )
                )
    return FamilyTraffic(s, expected, incidents)
