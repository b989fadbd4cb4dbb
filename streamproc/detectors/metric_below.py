"""metric_below: a business metric under its floor: conversion_rate < 0.03,
daily_active_users < 10,000, session_duration < 300 (seconds). Medium.

The record names the metric (``metric: conversion_rate``) and carries the number in ``value``
(or in a field named after the metric). Floors are parameters; ``minimums`` adds your own
(``{signups: 200}``). One incident per metric key and UTC day, resolved when a later record
that day is back at or above the floor; see ``_business.py``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ._business import DailyLevelDetector
from ._common import clip
from .base import register


@register
class MetricBelow(DailyLevelDetector):
    kind = "metric_below"
    severity = "medium"
    severities = ("medium", "medium")
    defaults = {
        "conversion_rate": 0.03,
        "daily_active_users": 10_000.0,
        "session_duration": 300.0,
        "minimums": {},
        "key_fields": "metric",
    }
    colocate = ("metric",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.floors: dict[str, float] = {
            name: float(self.params[name])
            for name in ("conversion_rate", "daily_active_users", "session_duration")
        }
        extra = self.params["minimums"] or {}
        if not isinstance(extra, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in extra.values()
        ):
            raise ConfigError(
                "metric_below minimums must map metric names to numbers",
                hint="e.g. minimums: {signups: 200}",
            )
        self.floors.update({str(k): float(v) for k, v in extra.items()})

    def judge(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        metric = data.get("metric")
        if not isinstance(metric, str):
            return None
        floor = self.floors.get(metric)
        if floor is None:
            return None
        value = data.get("value")
        if value is None:
            value = data.get(metric)
        if value is None or type(value) is bool:
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return (1 if value < floor else 0), {"value": value, "minimum": floor}

    def describe(
        self, key: dict[str, Any], level: int, facts: dict[str, Any], status: str
    ) -> tuple[str, str]:
        name = clip(str(key.get("metric")))
        if status == "firing":
            return (
                f"{name} is {facts['value']:g}, below {facts['minimum']:g}",
                f"{name} reported {facts['value']:g}, under its floor {facts['minimum']:g}.",
            )
        return (
            f"{name} is back to {facts['value']:g}",
            f"{name} reported {facts['value']:g}, at or above its floor {facts['minimum']:g}.",
        )
