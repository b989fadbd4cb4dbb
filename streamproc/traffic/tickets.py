"""support-tickets traffic: tickets created, answered and resolved, and SLA breaches.

The SLA per priority and the point where a customer apology is due come from sla_breach as
it judges with its defaults. Background tickets are answered well within their SLA. A breach
is an urgent, high or normal ticket answered at 60-90% of the apology point (1.2-1.8x the
SLA by default): the breach fires once, and resolves when the answer comes, before an
apology is due.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from .expected import default_detector
from .result import Incident
from .sampling import weighted
from .stream import FamilyStream, FamilyTraffic
from .timeline import Formatter, diurnal_times, spaced_starts
from .vocabulary import (
    CUSTOMER_COMPANIES,
    FIRST_NAMES,
    LAST_NAMES,
    STARTED_WHEN,
    SUPPORT_AGENTS,
    TICKET_CATEGORIES,
    TICKET_PRIORITIES,
    TICKET_RESOLUTIONS,
    TICKET_SUBJECTS,
)

FAMILY = "support-tickets"
# The kinds this traffic is counted for, in the order reports list them.
KINDS: tuple[str, ...] = ("ticket_created", "sla_breach", "ticket_resolved")
# Priorities a breach is injected for, most urgent first (each needs a span of a few SLAs).
_BREACH_PRIORITIES = ("urgent", "high", "normal")
# A breached ticket is answered between these fractions of the apology point.
LATE_ANSWER = (0.6, 0.9)


def default_plan(n: int) -> dict[str, int]:
    """How many SLA breaches ``n`` support-tickets events get by default."""
    return {"sla_breach": max(1, n // 250)}


def generate(
    rng: random.Random, n: int, start: float, end: float, fmt: Formatter, plan: dict[str, int]
) -> FamilyTraffic:
    sla_rule = default_detector("sla_breach")
    sla_hours: dict[str, float] = sla_rule.sla  # priority -> hours to the first response
    apology = float(sla_rule.apology_factor)  # x SLA: a customer apology is due

    s = FamilyStream(FAMILY, fmt, end)
    expected: dict[str, int] = defaultdict(int)
    incidents: list[Incident] = []
    n_tickets = max(1, n // 3)
    created = diurnal_times(rng, n_tickets, start, end)
    n_breach = plan.get("sla_breach", 0)
    span = end - start
    breach_prios = [p for p in _BREACH_PRIORITIES if sla_hours[p] * 3600 * (apology * 1.1) < span]
    breach_times = spaced_starts(
        rng,
        n_breach,
        start + span * 0.1,
        end - apology * sla_hours[breach_prios[-1] if breach_prios else "urgent"] * 3600,
        600.0,
    )
    tid = rng.randint(100000, 200000)
    events: list[tuple[float, int, dict[str, Any]]] = []
    seq = 0

    def ticket(ts: float, priority: str, respond_after: float) -> None:
        nonlocal tid, seq
        tid += rng.randint(1, 3)
        tkt = f"TCK-{tid}"
        category = rng.choice(TICKET_CATEGORIES)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = rng.choice(CUSTOMER_COMPANIES)
        subject = rng.choice(TICKET_SUBJECTS[category])
        base = {"ticket_id": tkt, "priority": priority, "category": category}
        events.append(
            (
                ts,
                seq,
                {
                    "timestamp": None,
                    "event": "created",
                    **base,
                    "customer_name": f"{first.title()} {last.title()}",
                    "customer_email": f"{first}.{last}@{company}.example",
                    "subject": subject,
                    "description": f"{subject}. Customer reports it started "
                    f"{rng.choice(STARTED_WHEN)}.",
                },
            )
        )
        assignee = rng.choice(SUPPORT_AGENTS)
        t_resp = ts + respond_after
        events.append(
            (
                t_resp,
                seq + 1,
                {"timestamp": None, "event": "responded", **base, "assignee": assignee},
            )
        )
        t_res = t_resp + rng.expovariate(1 / (sla_hours[priority] * 3600 * 0.8))
        events.append(
            (
                t_res,
                seq + 2,
                {
                    "timestamp": None,
                    "event": "resolved",
                    **base,
                    "assignee": assignee,
                    "resolution": rng.choice(TICKET_RESOLUTIONS),
                    "feedback_url": f"https://support.example.com/feedback/{tkt}",
                },
            )
        )
        seq += 3

    prios = weighted(rng, TICKET_PRIORITIES, n_tickets)
    for ts, prio in zip(created, prios, strict=True):
        ticket(ts, prio, sla_hours[prio] * 3600 * rng.uniform(0.03, 0.7))
    for k, ts in enumerate(breach_times):
        prio = breach_prios[k % len(breach_prios)] if breach_prios else "urgent"
        sla = sla_hours[prio] * 3600
        ticket(ts, prio, sla * rng.uniform(apology * LATE_ANSWER[0], apology * LATE_ANSWER[1]))
        # A ticket created a few minutes after the deadline moves the watermark past it
        # before the late answer arrives, whatever the background density.
        ticket(ts + sla + rng.uniform(180, 600), "low", 3600 * rng.uniform(1, 8))
        expected["sla_breach"] += 1
        incidents.append(
            Incident(
                "sla_breach",
                FAMILY,
                ts + sla,
                {"ticket_id": events[-6][2]["ticket_id"]},
                f"{prio} ticket not answered within {sla_hours[prio]:g} h",
            )
        )
    events.sort(key=lambda e: (e[0], e[1]))
    for ts, _, rec in events:
        if ts >= end:
            continue
        if rec["event"] == "created":
            expected["ticket_created"] += 1
        elif rec["event"] == "resolved":
            expected["ticket_resolved"] += 1
        s.emit(ts, rec)
    # every breached ticket is answered (before the apology point) before the end: one
    # resolved each
    return FamilyTraffic(s, expected, incidents, {"sla_breach": expected["sla_breach"]})
