"""ticket_resolved: a resolved ticket, summarised for the team and announced to the customer.

On ``resolved``:

- internal (info): time to first response, time to resolution, SLA met or missed (first
  response, ``responded`` or the resolution itself, at or before created + SLA), resolution,
  assignee. A ticket created before this detector's history says "SLA unknown".
- customer (``audience="customer"``, labelled with the customer's email when known): "your
  request was resolved", with the resolution and the ``feedback_url`` if the record has one.
  ``customer_notices: false`` turns it off.

State per open ticket: created time, priority, first response time; dropped at resolution or
after ``forget_after`` (30 days).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import Sweeper, clip
from ._tickets import SLA_DEFAULTS, engine_sla, hours_text, priority_of, sla_table
from ._windows import KeyedState
from .base import Detector, register


@register
class TicketResolved(Detector):
    kind = "ticket_resolved"
    family = "support-tickets"
    severity = "info"
    defaults = {"customer_notices": True, "forget_after": 30 * 86400.0, **SLA_DEFAULTS}
    colocate = ("ticket_id",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.customer_notices = bool(self.params["customer_notices"])
        self.forget_after = float(self.params["forget_after"])
        self._own_sla = sla_table(self.params)
        self.sla = self._own_sla  # the engine's sla_breach's table, once connected

    def connect(self, peers: Mapping[str, Detector]) -> None:
        self.sla = engine_sla(peers, self._own_sla)
        # ticket -> [created, priority, first response or None, customer name, email, subject]
        self.state: KeyedState[str, list[Any]] = KeyedState(self.ctx.key_cap)
        self._sweeper = Sweeper(86400.0)

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        sla = self.sla
        state = self.state
        for ev in events:
            data = ev.data
            kind = data["event"]
            tid = str(data["ticket_id"])
            ts = ev.ts
            if kind == "created":
                if tid not in state:
                    state.touch(
                        tid,
                        [
                            ts,
                            priority_of(data),
                            None,
                            data.get("customer_name"),
                            data.get("customer_email"),
                            data.get("subject"),
                        ],
                    )
                continue
            st = state.get(tid)
            if kind == "responded":
                if st is not None and (st[2] is None or ts < st[2]):
                    st[2] = ts
                continue
            if kind != "resolved":
                continue
            self.evaluations += 1
            state.pop(tid)
            alerts.extend(self._resolved(tid, st, data, ev, sla))
        return alerts

    def _resolved(
        self, tid: str, st: list[Any] | None, data: dict[str, Any], ev: Event, sla: dict[str, float]
    ) -> list[Alert]:
        ts = ev.ts
        priority = st[1] if st is not None else priority_of(data)
        hours = sla[priority]
        evidence: dict[str, Any] = {
            "priority": priority,
            "sla_hours": hours,
            "resolution": clip(data.get("resolution")),
            "assignee": clip(data.get("assignee")),
        }
        if st is None:
            sla_text = "SLA unknown (ticket created before this history)"
            evidence["sla_met"] = None
            incident: Any = [ts, "resolved"]
        else:
            created = st[0]
            first = st[2] if st[2] is not None else ts
            met = first - created <= hours * 3600
            evidence.update(
                {
                    "sla_met": met,
                    "created": created,
                    "first_response": first,
                    "time_to_first_response_seconds": first - created,
                    "time_to_resolution_seconds": ts - created,
                }
            )
            sla_text = (
                f"SLA {'met' if met else 'MISSED'}: first response after "
                f"{(first - created) / 3600:.1f} h ({priority} SLA "
                f"{hours_text(hours)}); resolved after {(ts - created) / 3600:.1f} h"
            )
            incident = [created, "resolved"]
        subject = clip(data.get("subject") or (st[5] if st else None) or "(no subject)")
        out = [
            self.make_alert(
                key={"ticket_id": tid},
                incident=incident,
                event_time=ts,
                title=f"Ticket {clip(tid)} resolved: {subject}",
                body=(
                    f'Ticket {clip(tid)} "{subject}" was resolved'
                    + (f" by {clip(data['assignee'])}" if data.get("assignee") else "")
                    + ". "
                    + sla_text
                    + "."
                    + (
                        f"\nResolution: {clip(data['resolution'])}"
                        if data.get("resolution")
                        else ""
                    )
                ),
                evidence=evidence,
                source=ev.source(),
                labels={
                    "ticket_id": clip(tid),
                    "priority": priority,
                    "sla": "unknown"
                    if evidence["sla_met"] is None
                    else ("met" if evidence["sla_met"] else "missed"),
                },
            )
        ]
        if self.customer_notices:
            email = data.get("customer_email") or (st[4] if st else None)
            name = clip(data.get("customer_name") or (st[3] if st else None) or "")
            labels = {"ticket_id": clip(tid), "priority": priority, "audience": "customer"}
            if email:
                labels["customer_email"] = clip(str(email))
            feedback = data.get("feedback_url")
            out.append(
                self.make_alert(
                    key={"ticket_id": tid},
                    incident=[*incident, "customer"],
                    event_time=ts,
                    title=f"Your request has been resolved: {subject} [ticket {clip(tid)}]",
                    body=(
                        f'Hello{" " + name if name else ""},\n\nyour request "{subject}" '
                        f"(ticket {clip(tid)}) has been resolved."
                        + (f"\n\n{clip(data['resolution'])}" if data.get("resolution") else "")
                        + (f"\n\nTell us how we did: {clip(feedback)}" if feedback else "")
                    ),
                    severity="info",
                    audience="customer",
                    evidence={
                        "resolution": clip(data.get("resolution")),
                        "feedback_url": clip(feedback),
                    },
                    source=ev.source(),
                    labels=labels,
                )
            )
        return out

    def on_watermark(self, watermark: float) -> list[Alert]:
        if self._sweeper.due(watermark):
            horizon = watermark - self.forget_after
            for tid, st in self.state.items():
                if st[0] < horizon:
                    self.state.pop(tid)
        return []

    def snapshot(self) -> Any:
        return {
            "tickets": [[tid, st] for tid, st in self.state.items()],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        for tid, st in state.get("tickets", []):
            self.state.touch(tid, list(st))
        self.state.evictions = int(state.get("evictions", 0))
