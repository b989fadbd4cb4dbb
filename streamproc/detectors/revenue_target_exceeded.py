"""revenue_target_exceeded: daily_revenue >= 120% of the daily target (info, good news).

Reported once per metric key and UTC day, never resolved (a later, lower update the same day
does not un-send good news). See ``_business.py``.
"""

from __future__ import annotations

from typing import Any

from ._business import DailyLevelDetector, money, revenue_and_target
from ._common import clip
from .base import register


@register
class RevenueTargetExceeded(DailyLevelDetector):
    kind = "revenue_target_exceeded"
    severity = "info"
    severities = ("info", "info")
    resolves = False
    defaults = {"daily_target": 100_000.0, "ratio": 1.2, "key_fields": "metric"}
    colocate = ("metric",)

    def judge(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        got = revenue_and_target(data, float(self.params["daily_target"]))
        if got is None:
            return None
        revenue, target = got
        ratio = revenue / target
        return (1 if ratio >= self.params["ratio"] else 0), {
            "daily_revenue": revenue,
            "daily_target": target,
            "ratio": round(ratio, 6),
        }

    def describe(
        self, key: dict[str, Any], level: int, facts: dict[str, Any], status: str
    ) -> tuple[str, str]:
        name = clip(str(key.get("metric") or "revenue"))
        pct = facts["ratio"] * 100
        return (
            f"{name} at {pct:.0f}% of the daily target",
            f"Daily revenue {money(facts['daily_revenue'])} is {pct:.1f}% of the target "
            f"{money(facts['daily_target'])} (reported at "
            f"{self.params['ratio'] * 100:g}% and above).",
        )
