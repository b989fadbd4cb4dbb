"""What the support-ticket detectors share: priorities, severities and the SLA table.

The SLA table (first response within N hours by priority) belongs to ``sla_breach``. The
acknowledgement of ``ticket_created`` and the summary of ``ticket_resolved`` quote the same
table: they read it from the engine's ``sla_breach`` when it runs (``engine_sla``, from
``Detector.connect``: again after a reload), so one setting changes all three, and fall back
to their own ``sla_*_hours`` parameters when it is disabled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRIORITIES = ("urgent", "high", "normal", "low")
SEVERITY_BY_PRIORITY = {"urgent": "critical", "high": "high", "normal": "medium", "low": "low"}
_ALIASES = {
    "critical": "urgent",
    "p1": "urgent",
    "blocker": "urgent",
    "emergency": "urgent",
    "p2": "high",
    "major": "high",
    "medium": "normal",
    "p3": "normal",
    "minor": "low",
    "p4": "low",
    "trivial": "low",
}
SLA_DEFAULTS: dict[str, Any] = {
    "sla_urgent_hours": 1.0,
    "sla_high_hours": 4.0,
    "sla_normal_hours": 24.0,
    "sla_low_hours": 72.0,
}


# name -> the one shared str of that name: a million open tickets hold one "low", not a million
_CANONICAL = {p: p for p in PRIORITIES}


def priority_of(data: dict[str, Any]) -> str:
    """Normalised priority; unknown or missing priorities count as normal."""
    raw = str(data.get("priority") or "normal").strip().lower()
    return _CANONICAL.get(_ALIASES.get(raw, raw), "normal")


def canonical_priority(name: str) -> str:
    """The shared str for a priority read back from a snapshot (any other name as it is)."""
    return _CANONICAL.get(name, name)


def sla_table(params: dict[str, Any]) -> dict[str, float]:
    return {p: float(params[f"sla_{p}_hours"]) for p in PRIORITIES}


def engine_sla(peers: Mapping[str, Any], own: dict[str, float]) -> dict[str, float]:
    """The SLA table of the engine's sla_breach (priority -> hours), else ``own``."""
    table = getattr(peers.get("sla_breach"), "sla", None)
    return table if isinstance(table, dict) else own


def hours_text(hours: float) -> str:
    return f"{hours:g} hour{'s' if hours != 1 else ''}"
