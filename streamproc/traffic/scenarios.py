"""Which families a scenario generates, how its events are shared between them, and the
family generators themselves."""

from __future__ import annotations

import random
from typing import Protocol

from ..contracts import get_contract
from . import api, auth, business, cicd, hosts, tickets
from .stream import FamilyTraffic
from .timeline import Formatter


class FamilyGenerator(Protocol):
    """A module that generates one family (``auth``, ``api``, ...)."""

    FAMILY: str
    KINDS: tuple[str, ...]  # the alert kinds its ``expected`` counts, in report order

    def default_plan(self, n: int) -> dict[str, int]: ...

    def generate(
        self,
        rng: random.Random,
        n: int,
        start: float,
        end: float,
        fmt: Formatter,
        plan: dict[str, int],
    ) -> FamilyTraffic: ...


# In this order the families' random streams are seeded and their records merged: the same
# seed gives the same bytes only while it stays.
GENERATORS: tuple[FamilyGenerator, ...] = (auth, api, hosts, cicd, tickets, business)
FAMILIES = tuple(g.FAMILY for g in GENERATORS)
_BY_FAMILY: dict[str, FamilyGenerator] = {g.FAMILY: g for g in GENERATORS}

# Every kind the generator counts per family, so ``expected`` always names all of them.
KINDS_BY_FAMILY = {g.FAMILY: g.KINDS for g in GENERATORS}
# Partition key fields per family: the contract's key.
KEY_FIELDS = {family: get_contract(family).key for family in FAMILIES}

# Share of events per family in the mixed scenario (business-metrics are daily KPIs: a few).
MIX = {
    "auth-logs": 0.32,
    "api-access-logs": 0.44,
    "host-metrics": 0.20,
    "cicd-events": 0.02,
    "support-tickets": 0.02,
}

SCENARIOS: dict[str, tuple[str, ...]] = {
    "mixed": FAMILIES,
    "all": FAMILIES,
    "auth": ("auth-logs",),
    "api": ("api-access-logs",),
    "security": ("auth-logs", "api-access-logs"),
    "hosts": ("host-metrics",),
    "cicd": ("cicd-events",),
    "tickets": ("support-tickets",),
    "business": ("business-metrics",),
    **{f: (f,) for f in FAMILIES},
}


def family_generator(family: str) -> FamilyGenerator:
    try:
        return _BY_FAMILY[family]
    except KeyError:
        raise ValueError(
            f"no generator for family {family!r}; families: {', '.join(FAMILIES)}"
        ) from None


def default_plan(family: str, n: int) -> dict[str, int]:
    """How many incidents of each kind ``n`` events of ``family`` get by default."""
    return family_generator(family).default_plan(n)


def scenario_families(scenario: str) -> tuple[str, ...]:
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise ValueError(
            f"unknown scenario {scenario!r}; use one of {', '.join(sorted(SCENARIOS))}"
        ) from None


def split_events(scenario: str, n_events: int) -> dict[str, int]:
    """How ``n_events`` are shared between the scenario's families."""
    families = scenario_families(scenario)
    if len(families) == 1:
        return {families[0]: n_events}
    weights = {f: MIX.get(f, 0.0) for f in families if f != "business-metrics"}
    total = sum(weights.values())
    out = {f: int(n_events * w / total) for f, w in weights.items()}
    if "business-metrics" in families:
        out["business-metrics"] = max(12, min(400, n_events // 2000))
    return out
