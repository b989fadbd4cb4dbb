"""One generator run: each family of the scenario from its own seeded random stream, put
together as one ``Traffic`` with the alerts it should raise."""

from __future__ import annotations

import random
from typing import Any

from .result import Incident, Traffic
from .scenarios import FAMILIES, family_generator, split_events
from .timeline import DEFAULT_DURATION, DEFAULT_END, Formatter


def generate(
    scenario: str = "mixed",
    n_events: int = 10_000,
    seed: int = 1,
    start_ts: float | None = None,
    *,
    duration: float | None = None,
    ts_format: str = "iso",
    incidents: dict[str, int] | None = None,
    sizes: dict[str, int] | None = None,
) -> Traffic:
    """Generate about ``n_events`` records for ``scenario`` (a family or a mix).

    ``start_ts``/``duration`` (seconds) place the traffic on the time line; by default it
    covers the 3 days before ``DEFAULT_END``. ``incidents`` overrides the number of incidents
    per kind (``brute_force``, ``compromise``, ``password_spray``,
    ``distributed_brute_force``, ``unusual_login``, ``sql_injection``, ``rate_abuse``,
    ``metric_threshold``, ``host_silent``, ``pipeline_failed``, ``deployment_production``,
    ``sla_breach``, ``revenue_drop``, ``revenue_target_missed``, ``revenue_target_exceeded``,
    ``metric_below``); 0 turns a kind off. ``sizes`` sets events per family directly.
    The same arguments always give the same records.
    """
    duration = float(duration if duration is not None else DEFAULT_DURATION)
    if start_ts is None:
        start_ts = DEFAULT_END - duration
    end_ts = start_ts + duration
    fmt = Formatter(ts_format)
    per_family = dict(sizes) if sizes else split_events(scenario, n_events)
    records: dict[str, list[dict[str, Any]]] = {}
    times: dict[str, list[float]] = {}
    expected: dict[str, int] = {}
    resolved: dict[str, int] = {}
    all_incidents: list[Incident] = []
    for index, family in enumerate(FAMILIES):
        if family not in per_family:
            continue
        n = per_family[family]
        generator = family_generator(family)
        plan = generator.default_plan(n)
        if incidents:
            plan.update({k: v for k, v in incidents.items() if k in plan})
        rng = random.Random(seed * 1_000_003 + index)
        made = generator.generate(rng, n, start_ts, end_ts, fmt, plan)
        for k, v in made.resolved.items():
            resolved[k] = resolved.get(k, 0) + v
        for kind in generator.KINDS:
            expected[kind] = expected.get(kind, 0) + made.expected.get(kind, 0)
        rows = made.stream.out
        rows.sort(key=lambda r: r[0])  # stable: ties keep generation order
        times[family] = [r[0] for r in rows]
        records[family] = [r[1] for r in rows]
        all_incidents.extend(made.incidents)
    all_incidents.sort(key=lambda i: (i.start, i.kind))
    return Traffic(
        scenario,
        seed,
        start_ts,
        end_ts,
        records,
        times,
        expected,
        resolved,
        all_incidents,
        ts_format,
    )


def generate_bytes(
    scenario: str = "mixed",
    n_events: int = 10_000,
    seed: int = 1,
    start_ts: float | None = None,
    **kwargs: Any,
) -> tuple[list[tuple[str, bytes | None, bytes]], dict[str, int]]:
    """The fast path for benchmarks: (family, key, JSON bytes) in event-time order + expected."""
    traffic = generate(scenario, n_events, seed, start_ts, **kwargs)
    return traffic.merged_bytes(), traffic.expected
