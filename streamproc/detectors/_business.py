"""Daily business-metric judgements: one state per (metric key, UTC day) and level.

A business metric is reported daily, or re-reported during the day as figures update. Each
detector maps a record to a level (0 fine, 1 or 2 for its two severities)::

    revenue, 2026-03-01:  update 70% -> FIRE medium (< 80% of target)
                          update 55% -> FIRE high   (< 60%; own fingerprint)
                          update 85% -> RESOLVED high, RESOLVED medium
    revenue, 2026-03-02:  a new day, a new incident

Fingerprints are (kind, key, [day, level]), so a replay or a re-sent record does not create a
second incident. ``key_fields`` (default ``metric``) says which fields identify a series: set
it to ``metric,region`` when one topic carries per-region figures.
"""

from __future__ import annotations

from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import Sweeper, clip, day_of, iso, parse_list, sample_of
from ._windows import KeyedState
from .base import Detector

_FIELDS = ("metric", "daily_revenue", "previous_day_revenue", "daily_target", "value")


class DailyLevelDetector(Detector):
    family = "business-metrics"
    severities: tuple[str, str] = ("medium", "high")  # levels 1 and 2
    resolves = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.key_fields = parse_list(str(self.params.get("key_fields", "metric"))) or ("metric",)
        # (key..., day) -> open levels
        self.state: KeyedState[tuple[str, ...], list[int]] = KeyedState(self.ctx.key_cap)
        self._sweeper = Sweeper(86400.0)

    def judge(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """(level, facts) or None when the record is not this detector's business."""
        raise NotImplementedError

    def describe(
        self, key: dict[str, Any], level: int, facts: dict[str, Any], status: str
    ) -> tuple[str, str]:
        raise NotImplementedError

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        judge = self.judge
        fields = self.key_fields
        single = fields[0] if len(fields) == 1 else None
        state = self.state
        get = state.get
        for ev in events:
            data = ev.data
            judged = judge(data)
            if judged is None:
                continue
            self.evaluations += 1
            level, facts = judged
            day = day_of(ev.ts)
            # str(): extra fields of a record may be lists or objects, which do not hash
            skey = (
                (str(data.get(single)), day)
                if single is not None
                else (*[str(data.get(f)) for f in fields], day)
            )
            open_levels = get(skey)
            if level == 0 and not open_levels:
                continue
            if open_levels is None:
                open_levels = []
            state.touch(skey, open_levels)
            key = {f: data.get(f) for f in fields}
            if self.resolves:
                for lvl in sorted(open_levels, reverse=True):
                    if lvl > level:
                        alerts.append(self._alert(key, day, lvl, facts, "resolved", ev))
                open_levels[:] = [lvl for lvl in open_levels if lvl <= level]
            if (
                level > 0
                and level not in open_levels
                and (self.resolves or not open_levels or level > max(open_levels))
            ):
                open_levels.append(level)
                alerts.append(self._alert(key, day, level, facts, "firing", ev))
        return alerts

    def _alert(
        self,
        key: dict[str, Any],
        day: str,
        level: int,
        facts: dict[str, Any],
        status: str,
        ev: Event,
    ) -> Alert:
        title, body = self.describe(key, level, facts, status)
        return self.make_alert(
            key=key,
            incident=[day, level],
            event_time=ev.ts,
            title=title,
            body=body,
            status=status,
            severity=self.severities[level - 1],
            evidence={
                **facts,
                "day": day,
                "samples": [{"timestamp": iso(ev.ts), **sample_of(ev.data, _FIELDS)}],
            },
            source=ev.source(),
            labels={**{k: clip(str(v)) for k, v in key.items()}, "day": day},
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        if self._sweeper.due(watermark):
            keep = {day_of(watermark), day_of(watermark - 86400.0)}
            for skey, _ in self.state.items():
                if skey[-1] not in keep:
                    self.state.pop(skey)
        return []

    def snapshot(self) -> Any:
        return {
            "days": [[list(k), v] for k, v in self.state.items()],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        for skey, levels in state.get("days", []):
            self.state.touch(tuple(skey), list(levels))
        self.state.evictions = int(state.get("evictions", 0))


def money(value: float) -> str:
    return f"{value:,.0f}"


def revenue_and_target(data: dict[str, Any], default_target: float) -> tuple[float, float] | None:
    revenue = data.get("daily_revenue")
    if revenue is None or type(revenue) is bool:
        return None
    target = data.get("daily_target")
    if target is None or type(target) is bool or target <= 0:
        target = default_target
    if target <= 0:
        return None
    return float(revenue), float(target)
