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
- State per open ticket is one ``_Ticket`` (slots; deadline and apology time are not stored:
  they are ``created`` + the SLA of its priority, computed the same way every time). Waiting
  for the deadline costs no timer per ticket: every ticket of one priority has the same SLA,
  so in creation order the deadlines are in order too, and one list per priority is the
  timer queue; the watermark takes from its head::

      urgent  [T-7 T-9 T-12 ...]   deadline = created + 1 h, in list order
      low     [T-3 T-8 ...]        deadline = created + 72 h
      ^ head: deadline < watermark -> FIRE, move on

  Apology and forget times (tickets already breached) use the ordinary TimerQueue. Due
  timers fire in time order; at the very same float time, deadlines first (by priority, then
  creation), then the TimerQueue's (a TimerQueue alone orders ties by when they were armed).
- This detector owns the SLA table (``sla_*_hours``); ticket_created and ticket_resolved in
  the same binding quote it.
"""

from __future__ import annotations

import math
from bisect import insort
from operator import attrgetter, itemgetter
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import clip, iso
from ._tickets import (
    PRIORITIES,
    SLA_DEFAULTS,
    canonical_priority,
    hours_text,
    priority_of,
    sla_table,
)
from ._windows import KeyedState, TimerQueue
from .base import Detector, register

_created = attrgetter("created")
_when = itemgetter(0)


class _Ticket:
    """An open ticket: what its alerts quote, and where its ``created`` event came from."""

    __slots__ = (
        "tid",
        "created",
        "priority",
        "breached",
        "apologised",
        "name",
        "email",
        "subject",
        "topic",
        "partition",
        "offset",
    )

    def __init__(
        self,
        tid: str,
        created: float,
        priority: str,
        name: Any,
        email: Any,
        subject: Any,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        self.tid = tid  # the list entry checks it still is the state's ticket of that id
        self.created = created
        self.priority = priority
        self.breached = False
        self.apologised = False
        self.name, self.email, self.subject = name, email, subject
        self.topic, self.partition, self.offset = topic, partition, offset


class _KeptTimes(_Ticket):
    """A ticket restored from a snapshot taken under another SLA table or apology factor (a
    reload changed them): it keeps the deadline and apology time it was created with."""

    __slots__ = ("deadline", "apology")
    deadline: float
    apology: float | None


@register
class SlaBreach(Detector):
    kind = "sla_breach"
    family = "support-tickets"
    severity = "high"
    defaults = {**SLA_DEFAULTS, "apology_factor": 2.0, "forget_after": 30 * 86400.0}
    colocate = ("ticket_id",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.sla = sla_table(self.params)
        self.apology_factor = float(self.params["apology_factor"])
        self.forget_after = float(self.params["forget_after"])
        self._sla_s = {p: hours * 3600 for p, hours in self.sla.items()}
        self._apology_s = (
            {p: self.apology_factor * s for p, s in self._sla_s.items()}
            if self.apology_factor > 0
            else None
        )
        self.state: KeyedState[str, _Ticket] = KeyedState(self.ctx.key_cap)
        # Unbreached tickets by priority, in creation (= deadline) order; [head:] still wait.
        self._waiting: dict[str, list[_Ticket]] = {p: [] for p in PRIORITIES}
        self._head = dict.fromkeys(PRIORITIES, 0)
        # apology and forget times, and _KeptTimes deadlines
        self.timers: TimerQueue[str] = TimerQueue()

    def _deadline(self, t: _Ticket) -> float:
        if type(t) is _KeptTimes:
            return t.deadline
        return t.created + self._sla_s[t.priority]

    def _apology_at(self, t: _Ticket) -> float | None:
        if type(t) is _KeptTimes:
            return t.apology
        return t.created + self._apology_s[t.priority] if self._apology_s is not None else None

    def _wait(self, t: _Ticket) -> None:
        """Queue an unbreached ticket for its deadline."""
        if type(t) is _KeptTimes:
            self.timers.arm(math.nextafter(t.deadline, math.inf), t.tid)
            return
        waiting = self._waiting[t.priority]
        if not waiting or t.created >= waiting[-1].created:
            waiting.append(t)
        else:  # created out of order (a late event): its place among the waiting ones
            insort(waiting, t, lo=self._head[t.priority], key=_created)

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
                t = _Ticket(
                    tid,
                    ts,
                    priority_of(data),
                    data.get("customer_name"),
                    data.get("customer_email"),
                    data.get("subject"),
                    ev.topic,
                    ev.partition,
                    ev.offset,
                )
                state.touch(tid, t)
                self._wait(t)
                continue
            st = state.get(tid)
            if st is None:
                continue  # created before our history, or already answered
            if ts < st.created:
                continue
            # responded or resolved: the clock stops
            deadline = self._deadline(st)
            if not st.breached and ts > deadline:
                st.breached = True
                alerts.append(self._breach(tid, st, deadline, "firing"))
            apology = self._apology_at(st)
            if not st.apologised and apology is not None and ts > apology:
                st.apologised = True
                alerts.append(self._apology(tid, st, apology))
            if st.breached:
                alerts.append(self._breach(tid, st, ts, "resolved", ev, kind))
            state.pop(tid)
            # Its list entry may outlive it until the deadline: keep that small.
            st.name = st.email = st.subject = None
        return alerts

    def _due_deadlines(self, watermark: float) -> list[tuple[float, str]]:
        """(timer time, ticket id) of the waiting tickets whose deadline the watermark passed
        (the time a TimerQueue timer would have: the next float after the deadline)."""
        due = []
        state = self.state
        for priority, waiting in self._waiting.items():
            sla_s = self._sla_s[priority]
            head = self._head[priority]
            while head < len(waiting):
                t = waiting[head]
                deadline = t.created + sla_s
                if deadline >= watermark:
                    break
                head += 1
                if state.get(t.tid) is t:  # not answered, evicted or created anew since
                    due.append((math.nextafter(deadline, math.inf), t.tid))
            if head == len(waiting):
                waiting.clear()
                head = 0
            elif head > 1024 and head * 2 > len(waiting):
                del waiting[:head]
                head = 0
            self._head[priority] = head
        return due

    def on_watermark(self, watermark: float) -> list[Alert]:
        alerts: list[Alert] = []
        due = self._due_deadlines(watermark)
        due.extend(self.timers.due(watermark))
        due.sort(key=_when)
        for _, tid in due:
            st = self.state.get(tid)
            if st is None:
                continue
            if not st.breached:
                deadline = self._deadline(st)
                if watermark <= deadline:
                    continue
                st.breached = True
                alerts.append(self._breach(tid, st, deadline, "firing"))
            # (one watermark step may pass the deadline and the apology time both)
            if not st.apologised and (apology := self._apology_at(st)) is not None:
                if watermark <= apology:
                    self.timers.arm(math.nextafter(apology, math.inf), tid)
                    continue
                st.apologised = True
                alerts.append(self._apology(tid, st, apology))
            forget = st.created + self.forget_after
            if watermark > forget:
                self.state.pop(tid)
            else:
                self.timers.arm(math.nextafter(forget, math.inf), tid)
        return alerts

    def _source(self, st: _Ticket) -> dict[str, Any]:
        return {"topic": st.topic, "partition": st.partition, "offset": st.offset}

    def _breach(
        self, tid: str, st: _Ticket, ts: float, status: str, ev: Event | None = None, how: str = ""
    ) -> Alert:
        priority = st.priority
        hours = self.sla[priority]
        deadline = self._deadline(st)
        subject = clip(st.subject or "(no subject)")
        if status == "firing":
            title = (
                f"SLA breached: {priority} ticket {clip(tid)} unanswered for {hours_text(hours)}"
            )
            body = (
                f'Ticket {clip(tid)} "{subject}" from '
                f"{clip(st.name or st.email or 'unknown')} was created at "
                f"{iso(st.created)} and has no response; the {priority} SLA is "
                f"{hours_text(hours)}."
            )
        else:
            late = ts - deadline
            title = f"Ticket {clip(tid)} {how} {late / 3600:.1f} h after its SLA"
            body = (
                f'Ticket {clip(tid)} "{subject}" got its first {how} event at {iso(ts)}, '
                f"{late / 3600:.1f} h after the {hours_text(hours)} {priority} SLA."
            )
        return self.make_alert(
            key={"ticket_id": tid},
            incident=st.created,
            event_time=ts,
            title=title,
            body=body,
            status=status,
            evidence={
                "priority": priority,
                "sla_hours": hours,
                "created": st.created,
                "deadline": deadline,
                "customer_email": st.email,
                "overdue_seconds": ts - deadline,
            },
            source=ev.source() if ev is not None else self._source(st),
            labels={"ticket_id": clip(tid), "priority": priority},
        )

    def _apology(self, tid: str, st: _Ticket, ts: float) -> Alert:
        priority = st.priority
        name = clip(st.name or "")
        subject = clip(st.subject or "your request")
        labels = {"ticket_id": clip(tid), "priority": priority, "audience": "customer"}
        if st.email:
            labels["customer_email"] = clip(str(st.email))
        return self.make_alert(
            key={"ticket_id": tid},
            incident=[st.created, "apology"],
            event_time=ts,
            title=f'We are sorry for the delay on "{subject}" [ticket {clip(tid)}]',
            body=(
                f"Hello{' ' + name if name else ''},\n\nwe are sorry: your request "
                f'"{subject}" (ticket {clip(tid)}) has waited longer than the '
                f"{hours_text(self.sla[priority])} we promise for {priority}-priority "
                f"requests. It has been escalated and someone will contact you as soon as "
                f"possible."
            ),
            severity="high",
            audience="customer",
            evidence={
                "priority": priority,
                "created": st.created,
                "deadline": self._deadline(st),
                "waited_seconds": ts - st.created,
            },
            source=self._source(st),
            labels=labels,
        )

    def snapshot(self) -> Any:
        # The format of the list-per-ticket version: [created, priority, deadline, apology,
        # breached, apologised, name, email, subject, source], and every pending timer.
        sla_s, apology_s = self._sla_s, self._apology_s
        nextafter, inf = math.nextafter, math.inf
        tickets = []
        timers = []
        for tid, st in self.state.items():
            created = st.created
            if type(st) is _KeptTimes:
                deadline, apology = st.deadline, st.apology  # its timer is in self.timers
            else:
                deadline = created + sla_s[st.priority]
                apology = created + apology_s[st.priority] if apology_s is not None else None
                if not st.breached:
                    timers.append((nextafter(deadline, inf), tid))
            tickets.append(
                [
                    tid,
                    [
                        created,
                        st.priority,
                        deadline,
                        apology,
                        st.breached,
                        st.apologised,
                        st.name,
                        st.email,
                        st.subject,
                        {"topic": st.topic, "partition": st.partition, "offset": st.offset},
                    ],
                ]
            )
        timers.extend(self.timers.snapshot())
        timers.sort(key=_when)
        return {
            "tickets": tickets,
            "timers": [[w, k] for w, k in timers],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        # Timers are not read back: each ticket's pending timer follows from its state
        # (unbreached: its deadline; breached: its apology, once, then its forget time).
        restored = []
        for tid, fields in state.get("tickets", []):
            (
                created,
                priority,
                deadline,
                apology,
                breached,
                apologised,
                name,
                email,
                subject,
                source,
            ) = fields
            priority = canonical_priority(priority)
            ours = self._sla_s.get(priority)
            ours_apology = (
                created + self._apology_s[priority]
                if self._apology_s is not None and ours is not None
                else None
            )
            t: _Ticket
            if ours is not None and deadline == created + ours and apology == ours_apology:
                t = _Ticket.__new__(_Ticket)
            else:
                t = _KeptTimes.__new__(_KeptTimes)
                t.deadline, t.apology = deadline, apology
            t.tid, t.created, t.priority = tid, created, priority
            t.breached, t.apologised = bool(breached), bool(apologised)
            t.name, t.email, t.subject = name, email, subject
            t.topic, t.partition, t.offset = source["topic"], source["partition"], source["offset"]
            self.state.touch(tid, t)
            restored.append(t)
        restored.sort(key=_created)
        for t in restored:
            if not t.breached:
                self._wait(t)
                continue
            apology = self._apology_at(t)
            when = (
                apology
                if not t.apologised and apology is not None
                else t.created + self.forget_after
            )
            self.timers.arm(math.nextafter(when, math.inf), t.tid)
        self.state.evictions = int(state.get("evictions", 0))
