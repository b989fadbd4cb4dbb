"""ticket_created: a new support ticket, for the team and for the customer.

Two alerts per ``created`` event:

- internal (``audience="internal"``): severity by priority, urgent/high/normal/low =
  critical/high/medium/low (unknown priorities count as normal);
- customer acknowledgement (``audience="customer"``, ``labels["audience"]="customer"``, and the
  customer's address in ``labels["customer_email"]`` for routing): "we received your request,
  first response within N hours", N from the SLA table (see ``_tickets.py``). Turn it off with
  ``customer_notices: false``.

Stateless: a duplicate ``created`` record (at-least-once delivery, a replay) yields the same
fingerprints, which notify/ deduplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import clip, column_equals, iso, sample_of
from ._tickets import (
    SEVERITY_BY_PRIORITY,
    SLA_DEFAULTS,
    engine_sla,
    hours_text,
    priority_of,
    sla_table,
)
from .base import Detector, Prefilter, register

_FIELDS = (
    "ticket_id",
    "priority",
    "customer_name",
    "customer_email",
    "category",
    "subject",
    "assignee",
)


def _created(data: dict[str, Any]) -> bool:
    return bool(data["event"] == "created")


@register
class TicketCreated(Detector):
    kind = "ticket_created"
    family = "support-tickets"
    severity = "medium"
    defaults = {"customer_notices": True, **SLA_DEFAULTS}
    colocate = None  # stateless
    prefilter_reads_record_only = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.customer_notices = bool(self.params["customer_notices"])
        self._own_sla = sla_table(self.params)
        self.sla = self._own_sla  # the engine's sla_breach's table, once connected

    def connect(self, peers: Mapping[str, Detector]) -> None:
        self.sla = engine_sla(peers, self._own_sla)

    def prefilter(self) -> Prefilter:
        return _created

    def column_prefilter(self) -> Any:
        return column_equals("event", "created")

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        sla = self.sla
        for ev in events:
            data = ev.data
            if data["event"] != "created":
                continue
            self.evaluations += 1
            tid = str(data["ticket_id"])
            priority = priority_of(data)
            hours = sla[priority]
            subject = clip(data.get("subject") or "(no subject)")
            customer = clip(data.get("customer_name") or data.get("customer_email") or "unknown")
            sample = {"timestamp": iso(ev.ts), **sample_of(data, _FIELDS)}
            alerts.append(
                self.make_alert(
                    key={"ticket_id": tid},
                    incident=[ev.ts, "created"],
                    event_time=ev.ts,
                    title=f"New {priority} ticket {clip(tid)} from {customer}: {subject}",
                    body=(
                        f"Ticket {clip(tid)} ({priority}, category "
                        f"{clip(data.get('category') or 'none')}) from {customer}: {subject}.\n"
                        f"{clip(data.get('description') or '')}\n"
                        f"First response due within {hours_text(hours)}."
                    ).strip(),
                    severity=SEVERITY_BY_PRIORITY[priority],
                    evidence={
                        "priority": priority,
                        "sla_hours": hours,
                        "response_due": ev.ts + hours * 3600,
                        "samples": [sample],
                    },
                    source=ev.source(),
                    labels={
                        "ticket_id": clip(tid),
                        "priority": priority,
                        "category": clip(str(data.get("category") or "")),
                    },
                )
            )
            if not self.customer_notices:
                continue
            labels = {"ticket_id": clip(tid), "priority": priority, "audience": "customer"}
            if data.get("customer_email"):
                labels["customer_email"] = clip(str(data["customer_email"]))
            name = clip(data.get("customer_name") or "")
            alerts.append(
                self.make_alert(
                    key={"ticket_id": tid},
                    incident=[ev.ts, "acknowledgement"],
                    event_time=ev.ts,
                    title=f"We received your request: {subject} [ticket {clip(tid)}]",
                    body=(
                        f"Hello{' ' + name if name else ''},\n\nthank you for contacting us. We "
                        f'received your request "{subject}" as ticket {clip(tid)}. For '
                        f"{priority}-priority requests we respond within {hours_text(hours)}."
                    ),
                    severity="info",
                    audience="customer",
                    evidence={
                        "priority": priority,
                        "sla_hours": hours,
                        "response_due": ev.ts + hours * 3600,
                    },
                    source=ev.source(),
                    labels=labels,
                )
            )
        return alerts
