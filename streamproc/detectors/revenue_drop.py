"""revenue_drop: (daily_revenue - previous_day_revenue) / previous_day_revenue below -15%
(high), below -30% (critical).

Records without a positive ``previous_day_revenue`` are not judged (a change from zero has no
meaning). One incident per metric key and UTC day; see ``_business.py``.
"""

from __future__ import annotations

from typing import Any

from ._business import DailyLevelDetector, money
from ._common import clip
from .base import register


@register
class RevenueDrop(DailyLevelDetector):
    kind = "revenue_drop"
    severity = "high"
    severities = ("high", "critical")
    defaults = {"drop": 0.15, "critical_drop": 0.30, "key_fields": "metric"}
    colocate = ("metric",)

    def judge(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        revenue = data.get("daily_revenue")
        previous = data.get("previous_day_revenue")
        if revenue is None or previous is None or type(previous) is bool or previous <= 0:
            return None
        change = (float(revenue) - float(previous)) / float(previous)
        level = (
            2
            if change < -self.params["critical_drop"]
            else (1 if change < -self.params["drop"] else 0)
        )
        return level, {
            "daily_revenue": float(revenue),
            "previous_day_revenue": float(previous),
            "change": round(change, 6),
        }

    def describe(
        self, key: dict[str, Any], level: int, facts: dict[str, Any], status: str
    ) -> tuple[str, str]:
        name = clip(str(key.get("metric") or "revenue"))
        pct = facts["change"] * 100
        limit = self.params["critical_drop" if level == 2 else "drop"] * 100
        text = (
            f"Daily revenue {money(facts['daily_revenue'])} vs "
            f"{money(facts['previous_day_revenue'])} the day before: {pct:+.1f}%"
        )
        if status == "firing":
            return f"{name} dropped {-pct:.0f}% day over day", f"{text} (alert below -{limit:g}%)."
        return f"{name} drop recovered ({pct:+.0f}%)", f"{text}, no longer below -{limit:g}%."
