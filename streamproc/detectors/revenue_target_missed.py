"""revenue_target_missed: daily_revenue below 80% of daily_target (medium), below 60% (high).

The target is the record's ``daily_target`` when present, else the ``daily_target`` parameter
(default 100,000). One incident per metric key and UTC day; see ``_business.py``.
"""

from __future__ import annotations

from typing import Any

from ._business import DailyLevelDetector, money, revenue_and_target
from ._common import clip
from .base import register


@register
class RevenueTargetMissed(DailyLevelDetector):
    kind = "revenue_target_missed"
    severity = "medium"
    severities = ("medium", "high")
    defaults = {
        "daily_target": 100_000.0,
        "warning_ratio": 0.8,
        "high_ratio": 0.6,
        "key_fields": "metric",
    }
    colocate = ("metric",)

    def judge(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        got = revenue_and_target(data, float(self.params["daily_target"]))
        if got is None:
            return None
        revenue, target = got
        ratio = revenue / target
        level = (
            2
            if ratio < self.params["high_ratio"]
            else (1 if ratio < self.params["warning_ratio"] else 0)
        )
        return level, {"daily_revenue": revenue, "daily_target": target, "ratio": round(ratio, 6)}

    def describe(
        self, key: dict[str, Any], level: int, facts: dict[str, Any], status: str
    ) -> tuple[str, str]:
        name = clip(str(key.get("metric") or "revenue"))
        pct = facts["ratio"] * 100
        limit = self.params["high_ratio" if level == 2 else "warning_ratio"] * 100
        if status == "firing":
            return (
                f"{name} at {pct:.0f}% of the daily target",
                f"Daily revenue {money(facts['daily_revenue'])} is {pct:.1f}% of the target "
                f"{money(facts['daily_target'])} (alert below {limit:g}%).",
            )
        return (
            f"{name} back to {pct:.0f}% of the daily target",
            f"Daily revenue {money(facts['daily_revenue'])} is {pct:.1f}% of the target "
            f"{money(facts['daily_target'])}, no longer below {limit:g}%.",
        )
