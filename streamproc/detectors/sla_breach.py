"""sla_breach: a ticket with no ``responded`` or ``resolved`` event within its SLA.

    ticket T-1 (urgent, SLA 1 h):
    created ------------- deadline ---------------- 2 x SLA --------------> event time
       |<------ 1 h ------->|                          |
                            FIRE (high, internal)      customer apology (audience customer)
                                            ... responded: RESOLVED (breach fingerprint)

- The SLA clock is first response: the first ``responded`` (or ``resolved``) event stops it.
  A response exactly at the deadline is in time; the breach fires once the watermark is beyond
  the deadline.
- Apology: a ticket still unanswered when its age exceeds ``apology_factor`` x SLA (default 2:
  overdue by more than twice its SLA measured from creation, e.g. 2 h for urgent) gets one
  customer-facing apology (``audience="customer"``). ``apology_factor: 0`` turns it off.
- Timers fire on the watermark. A response that arrives after the deadline before any
  watermark passed it still produces the breach (at the deadline) and its resolution, so the
  outcome does not depend on batching. Tickets unanswered for ``forget_after`` (30 days) are
  dropped.
- This detector owns the SLA table (``sla_*_hours``); ticket_created and ticket_resolved in
  the same binding quote it.
"""

from __future__ import annotations

import math
from typing import Any

from ..alerts import Alert
from ..events import Event
from ..windows import KeyedState, TimerQueue
from ._common import clip, iso
from ._tickets import SHARED_SLA, SLA_DEFAULTS, hours_text, priority_of, sla_table
from .base import Detector, register

# per ticket: [created, priority, deadline, apology_at, breached, apologised, name, email,
#              subject, source]
_CREATED, _PRIO, _DEADLINE, _APOLOGY, _BREACHED, _APOLOGISED = range(6)
_NAME, _EMAIL, _SUBJECT, _SOURCE = range(6, 10)


@register
class SlaBreach(Detector):
    kind = "sla_breach"
    family = "support-tickets"
    severity = "high"
    defaults = {**SLA_DEFAULTS, "apology_factor": 2.0, "forget_after": 30 * 86400.0}

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.sla = sla_table(self.params)
        self.apology_factor = float(self.params["apology_factor"])
        self.forget_after = float(self.params["forget_after"])
        self.ctx.shared[SHARED_SLA] = self.sla
        self.state: KeyedState[list[Any]] = KeyedState(self.ctx.key_cap)
        self.timers = TimerQueue()

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        state = self.state
        for ev in events:
            data = ev.data
            kind = data["event"]
            tid = str(data["ticket_id"])
            ts = ev.ts
            self.evaluations += 1
            if kind == "created":
                if tid in state:
                    continue  # duplicate delivery
                priority = priority_of(data)
                sla_s = self.sla[priority] * 3600
                apology = ts + self.apology_factor * sla_s if self.apology_factor > 0 else None
                st = [ts, priority, ts + sla_s, apology, False, False,
                      data.get("customer_name"), data.get("customer_email"),
                      data.get("subject"), ev.source()]
                state.touch(tid, st)
                self.timers.arm(math.nextafter(st[_DEADLINE], math.inf), tid)
                continue
            st = state.get(tid)
            if st is None:
                continue  # created before our history, or already answered
            if ts < st[_CREATED]:
                continue
            # responded or resolved: the clock stops
            if not st[_BREACHED] and ts > st[_DEADLINE]:
                st[_BREACHED] = True
                alerts.append(self._breach(tid, st, st[_DEADLINE], "firing"))
            if (not st[_APOLOGISED] and st[_APOLOGY] is not None and ts > st[_APOLOGY]):
                st[_APOLOGISED] = True
                alerts.append(self._apology(tid, st, st[_APOLOGY]))
            if st[_BREACHED]:
                alerts.append(self._breach(tid, st, ts, "resolved", ev, kind))
            state.pop(tid)
        return alerts

    def on_watermark(self, watermark: float) -> list[Alert]:
        alerts: list[Alert] = []
        for _, tid in self.timers.due(watermark):
            st = self.state.get(tid)
            if st is None:
                continue
            if not st[_BREACHED]:
                if watermark <= st[_DEADLINE]:
                    continue
                st[_BREACHED] = True
                alerts.append(self._breach(tid, st, st[_DEADLINE], "firing"))
                if st[_APOLOGY] is not None:
                    self.timers.arm(math.nextafter(st[_APOLOGY], math.inf), tid)
                    continue
            elif not st[_APOLOGISED] and st[_APOLOGY] is not None:
                if watermark <= st[_APOLOGY]:
                    continue
                st[_APOLOGISED] = True
                alerts.append(self._apology(tid, st, st[_APOLOGY]))
            forget = st[_CREATED] + self.forget_after
            if watermark > forget:
                self.state.pop(tid)
            else:
                self.timers.arm(math.nextafter(forget, math.inf), tid)
        return alerts

    def _breach(self, tid: str, st: list[Any], ts: float, status: str,
                ev: Event | None = None, how: str = "") -> Alert:
        priority = st[_PRIO]
        hours = self.sla[priority]
        subject = clip(st[_SUBJECT] or "(no subject)")
        if status == "firing":
            title = (f"SLA breached: {priority} ticket {clip(tid)} unanswered for "
                     f"{hours_text(hours)}")
            body = (f"Ticket {clip(tid)} \"{subject}\" from "
                    f"{clip(st[_NAME] or st[_EMAIL] or 'unknown')} was created at "
                    f"{iso(st[_CREATED])} and has no response; the {priority} SLA is "
                    f"{hours_text(hours)}.")
        else:
            late = ts - st[_DEADLINE]
            title = f"Ticket {clip(tid)} {how} {late / 3600:.1f} h after its SLA"
            body = (f"Ticket {clip(tid)} \"{subject}\" got its first {how} event at {iso(ts)}, "
                    f"{late / 3600:.1f} h after the {hours_text(hours)} {priority} SLA.")
        return self.make_alert(
            key={"ticket_id": tid}, incident=st[_CREATED], event_time=ts, title=title,
            body=body, status=status,
            evidence={"priority": priority, "sla_hours": hours, "created": st[_CREATED],
                      "deadline": st[_DEADLINE], "customer_email": st[_EMAIL],
                      "overdue_seconds": ts - st[_DEADLINE]},
            source=ev.source() if ev is not None else dict(st[_SOURCE]),
            labels={"ticket_id": clip(tid), "priority": priority})

    def _apology(self, tid: str, st: list[Any], ts: float) -> Alert:
        priority = st[_PRIO]
        name = clip(st[_NAME] or "")
        subject = clip(st[_SUBJECT] or "your request")
        labels = {"ticket_id": clip(tid), "priority": priority, "audience": "customer"}
        if st[_EMAIL]:
            labels["customer_email"] = clip(str(st[_EMAIL]))
        return self.make_alert(
            key={"ticket_id": tid}, incident=[st[_CREATED], "apology"], event_time=ts,
            title=f"We are sorry for the delay on \"{subject}\" [ticket {clip(tid)}]",
            body=(f"Hello{' ' + name if name else ''},\n\nwe are sorry: your request "
                  f"\"{subject}\" (ticket {clip(tid)}) has waited longer than the "
                  f"{hours_text(self.sla[priority])} we promise for {priority}-priority "
                  f"requests. It has been escalated and someone will contact you as soon as "
                  f"possible."),
            severity="high", audience="customer",
            evidence={"priority": priority, "created": st[_CREATED], "deadline": st[_DEADLINE],
                      "waited_seconds": ts - st[_CREATED]},
            source=dict(st[_SOURCE]), labels=labels)

    def snapshot(self) -> Any:
        return {"tickets": [[tid, st] for tid, st in self.state.items()],
                "timers": [[w, k] for w, k in self.timers.snapshot()],
                "evictions": self.state.evictions}

    def restore(self, state: Any) -> None:
        for tid, st in state.get("tickets", []):
            self.state.touch(tid, list(st))
        self.timers.restore([(w, k) for w, k in state.get("timers", [])])
        self.state.evictions = int(state.get("evictions", 0))
