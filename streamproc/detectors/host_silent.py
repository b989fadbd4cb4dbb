"""host_silent: a host that has been reporting stops for 3x its observed interval (min 60 s).

    samples of web-1 (every 10 s):
    --x--x--x--x--x------------------------------------x------> event time
                  |<- max(60 s, 3 x 10 s) ->|          ^ reports again: RESOLVED
                  last sample               deadline: FIRE once the watermark is beyond it

The interval is the median of the host's last 5 gaps between samples, so one delayed or
duplicated sample does not move it. A host is watched once it has sent ``min_samples``
samples (default 2: one sample says nothing about an interval, and a one-off sender, such as a
short CI runner, must not look dead).

Timers fire on the watermark, never on the wall clock: a backlog being consumed does not make
hosts look silent, and a replay gives the same alerts. If a host's next sample arrives after
its deadline but before any watermark passed that deadline (both in one batch, or the
watermark held back by another partition), the silence is still reported, with the deadline as
its time, followed by the resolution: the outcome does not depend on how the input was
batched.

A host silent for ``forget_after`` (default 7 days) is forgotten without a resolution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import clip, iso
from ._windows import KeyedState, TimerQueue
from .base import Detector, register
from .columns import EventBatch

_FIRST = itemgetter(0)
_UNKNOWN: Any = object()


class _Host:
    """One watched host. A million hosts are a million of these, so: slots, the gaps as a
    tuple (no list per host; the empty tuple is shared) and the last sample's source as three
    fields (no tuple per host)."""

    __slots__ = (
        "last",
        "gaps",
        "samples",
        "deadline",
        "silent_since",
        "topic",
        "partition",
        "offset",
    )

    def __init__(self, ts: float, origin: tuple[str, int, int]) -> None:
        self.last = ts
        self.gaps: tuple[float, ...] = ()  # the last 5 gaps between samples
        self.samples = 1
        self.deadline: float | None = None  # armed deadline (None: not watched yet)
        self.silent_since: float | None = None  # last sample before the open silence
        self.topic, self.partition, self.offset = origin


@register
class HostSilent(Detector):
    kind = "host_silent"
    family = "host-metrics"
    severity = "medium"
    defaults = {"factor": 3.0, "min_silence": 60.0, "min_samples": 2, "forget_after": 7 * 86400.0}
    colocate = ("host",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.factor = float(self.params["factor"])
        self.min_silence = float(self.params["min_silence"])
        self.min_samples = max(2, int(self.params["min_samples"]))
        self.forget_after = float(self.params["forget_after"])
        self.state: KeyedState[str, _Host] = KeyedState(self.ctx.key_cap)
        self.timers: TimerQueue[str] = TimerQueue()

    def interval(self, st: _Host) -> float:
        """The median of a host's last gaps. Its deadline is its last sample plus
        max(min_silence, factor * interval), computed inline where samples are judged (a
        call a sample costs more than the rule)."""
        gaps = sorted(st.gaps)
        return gaps[len(gaps) // 2] if gaps else 0.0

    reads_columns = True
    #: judge a batch a host at a time (``_judge_hosts``); False: record by record, as the
    #: tests' reference
    by_host = True
    #: the records a host a batch must average for ``_judge_hosts`` to be worth its setup a
    #: host: a batch of a mixed stream holds one or two samples of each of hundreds of hosts,
    #: and record by record costs ~2,100 instructions a sample less there (cachegrind)
    samples_a_host = 2.0

    def process(self, events: list[Event]) -> list[Alert]:
        return self.judge_batch(EventBatch(events))

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        hosts = batch.column("host")
        if not self.by_host or len(hosts) < self.samples_a_host * len(set(hosts)):
            return self._judge_records(batch, hosts)
        rows_of: dict[Any, list[int]] = {}
        for i, host in enumerate(hosts):
            rows = rows_of.get(host)
            if rows is None:
                rows_of[host] = [i]
            else:
                rows.append(i)
        if len(self.state) + len(rows_of) > self.state.cap:
            # a host may be evicted: which one depends on the order of every touch
            return self._judge_records(batch, hosts)
        return self._judge_hosts(batch, rows_of.items())

    def _judge_records(self, batch: EventBatch, hosts: list[Any]) -> list[Alert]:
        """The batch record by record."""
        alerts: list[Alert] = []
        get, touch, origin = self.state.get, self.state.touch, batch.origin
        statuses = batch.column("agent_status")
        min_samples, min_silence, factor = self.min_samples, self.min_silence, self.factor
        for i, (host, ts) in enumerate(zip(hosts, batch.times, strict=True)):
            status = statuses[i]
            if status is not None:
                # The agent's Last Will (or its clean goodbye): not a sample. "offline" means
                # silent now, without waiting for the deadline.
                alert = self._agent_offline(batch.event(i)) if status == "offline" else None
                if alert is not None:
                    alerts.append(alert)
                continue
            st = get(host)
            if st is None:
                touch(host, _Host(ts, origin(i)))
                continue
            touch(host, st)
            if ts <= st.last:
                continue  # a duplicate or out-of-order sample says nothing new
            if st.silent_since is None and st.deadline is not None and ts > st.deadline:
                # silent in event time, though no watermark passed the deadline yet
                alerts.append(self._alert(host, st, st.deadline, "firing"))
                st.silent_since = st.last
            gaps = st.gaps
            if st.silent_since is not None:
                alerts.append(self._alert(host, st, ts, "resolved", batch.event(i)))
                st.silent_since = None
            elif len(gaps) == 5:  # the usual case: one tuple built
                _, g1, g2, g3, g4 = gaps
                st.gaps = gaps = (g1, g2, g3, g4, ts - st.last)
            else:
                st.gaps = gaps = (*gaps[1:], ts - st.last) if gaps[5:] else (*gaps, ts - st.last)
            st.last = ts
            st.samples += 1
            st.topic, st.partition, st.offset = origin(i)
            if st.samples >= min_samples:
                first_arm = st.deadline is None
                # the deadline (see interval)
                silence = factor * sorted(gaps)[len(gaps) >> 1] if gaps else factor * 0.0
                st.deadline = ts + max(min_silence, silence)
                if first_arm:
                    self.timers.arm(math.nextafter(st.deadline, math.inf), host)
        return alerts

    def _judge_hosts(
        self, batch: EventBatch, rows_of: Iterable[tuple[Any, Iterable[int]]]
    ) -> list[Alert]:
        """``_judge_records``, a host's records at a time (a host reports many times a
        batch): what a record reads and changes is its own host's, so each host's records in
        order leave that host as the batch in order leaves it. What is shared is put back in
        record order: the alerts, the timers armed, the hosts' recency in ``state`` (each
        touched where its last sample is; no host is evicted, the caller checked). Within a
        host, its fields are kept in locals (written back before anything reads the host
        and after its last record), its deadline is computed where it is read (it is at least
        ``min_silence``, and ``factor`` times the least gap, after the last sample, so a
        sample sooner cannot be past it) and its last source once, at the end."""
        get = self.state.get
        statuses, times = batch.column("agent_status"), batch.times
        min_silence, min_samples, factor = self.min_silence, self.min_samples, self.factor
        # A lower bound of the interval bounds the deadline from below: a sample within
        # max(min_silence, factor * bound) of the last cannot be past it, and none is
        # computed for it. (factor * x grows with x where factor >= 0; where factor < 0,
        # that is min_silence or not above zero, and every sample is past the last.)
        alerts: list[tuple[int, Alert]] = []
        arms: list[tuple[int, float, Any]] = []
        touched: list[tuple[int, Any, _Host]] = []
        for host, rows in rows_of:
            st = get(host)
            if st is not None:
                last, gaps, samples = st.last, st.gaps, st.samples
                deadline, silent = st.deadline, st.silent_since
            # lowest: at most the least of the gaps (so at most the interval) where there are
            # gaps; quiet: max(min_silence, factor * lowest), no later than the deadline
            lowest, quiet = math.inf, min_silence
            if st is not None and gaps:
                lowest = min(gaps)
                silence = factor * lowest
                quiet = silence if silence > min_silence else min_silence
            stale = False  # deadline is behind the last sample: recompute before reading
            source_row = -1  # the row of st's last sample, once st's source is behind it
            touched_row = -1
            for i in rows:
                status = statuses[i]
                if status is not None:
                    if status == "offline":
                        if st is not None:
                            if source_row >= 0:
                                st.topic, st.partition, st.offset = batch.origin(source_row)
                                source_row = -1
                            st.last, st.gaps, st.samples = last, gaps, samples
                            st.deadline, st.silent_since = deadline, silent
                        alert = self._agent_offline(batch.event(i), st)
                        if alert is not None:
                            alerts.append((i, alert))
                            silent = last  # as _agent_offline left st
                    continue
                touched_row = i
                ts = times[i]
                if st is None:
                    st = _Host(ts, batch.origin(i))
                    last, gaps, samples, deadline, silent = ts, (), 1, None, None
                    continue
                if ts <= last:
                    continue
                if silent is None and deadline is not None:
                    if stale and not ts <= last + quiet:
                        silence = factor * sorted(gaps)[len(gaps) >> 1] if gaps else factor * 0.0
                        # max(min_silence, silence), the deadline (see interval)
                        deadline = last + (silence if silence > min_silence else min_silence)
                        stale = False
                    if not stale and ts > deadline:
                        if source_row >= 0:
                            st.topic, st.partition, st.offset = batch.origin(source_row)
                            source_row = -1
                        st.last, st.gaps, st.samples = last, gaps, samples
                        st.deadline, st.silent_since = deadline, None
                        alerts.append((i, self._alert(host, st, deadline, "firing")))
                        silent = last
                if silent is not None:
                    st.last, st.gaps, st.samples = last, gaps, samples
                    st.deadline, st.silent_since = deadline, silent
                    alerts.append((i, self._alert(host, st, ts, "resolved", batch.event(i))))
                    silent = None
                else:
                    gap = ts - last
                    if len(gaps) == 5:  # the usual case: one tuple built, no list
                        _, g1, g2, g3, g4 = gaps
                        gaps = (g1, g2, g3, g4, gap)
                    else:
                        gaps = (*gaps[1:], gap) if len(gaps) >= 5 else (*gaps, gap)
                    # the gap dropped only raises the least, so lowest still bounds it
                    if gap < lowest:
                        lowest = gap
                        silence = factor * gap
                        quiet = silence if silence > min_silence else min_silence
                last = ts
                samples += 1
                source_row = i
                if samples >= min_samples:
                    if deadline is None:
                        silence = factor * sorted(gaps)[len(gaps) >> 1] if gaps else factor * 0.0
                        deadline = last + (silence if silence > min_silence else min_silence)
                        stale = False
                        arms.append((i, math.nextafter(deadline, math.inf), host))
                    else:
                        stale = True
            if st is None:
                continue  # statuses of a host it does not know
            if stale:
                silence = factor * sorted(gaps)[len(gaps) >> 1] if gaps else factor * 0.0
                deadline = last + (silence if silence > min_silence else min_silence)
            st.last, st.gaps, st.samples = last, gaps, samples
            st.deadline, st.silent_since = deadline, silent
            if source_row >= 0:
                st.topic, st.partition, st.offset = batch.origin(source_row)
            if touched_row >= 0:
                touched.append((touched_row, host, st))
        touch = self.state.touch
        for _, host, st in sorted(touched, key=_FIRST):
            touch(host, st)
        if arms:
            arm = self.timers.arm
            for _, when, host in sorted(arms, key=_FIRST):
                arm(when, host)
        if not alerts:
            return []
        alerts.sort(key=_FIRST)  # stable: a record's alerts in the order it raised them
        return [alert for _, alert in alerts]

    def on_watermark(self, watermark: float) -> list[Alert]:
        alerts: list[Alert] = []
        for _when, host in self.timers.due(watermark):
            st = self.state.get(host)
            if st is None or st.deadline is None:
                continue
            if st.silent_since is not None:
                # already reported: keep one timer to forget the host eventually
                if watermark > st.last + self.forget_after:
                    self.state.pop(host)
                else:
                    self.timers.arm(st.last + self.forget_after + 1, host)
                continue
            if st.deadline >= watermark:  # it reported since: re-arm (lazy deletion)
                self.timers.arm(math.nextafter(st.deadline, math.inf), host)
                continue
            st.silent_since = st.last
            alerts.append(self._alert(host, st, st.deadline, "firing"))
            self.timers.arm(st.last + self.forget_after + 1, host)
        return alerts

    def _agent_offline(self, ev: Event, st: _Host | None = _UNKNOWN) -> Alert | None:
        """``st``: the host's state, where the caller holds it (else looked up)."""
        if st is _UNKNOWN:
            st = self.state.get(ev.data["host"])
        if st is None or st.silent_since is not None or ev.ts < st.last:
            return None  # unknown host, already silent, or a stale status
        alert = self._alert(ev.data["host"], st, ev.ts, "firing")
        reason = ev.data.get("agent_reason")
        if reason:
            alert.body += f" The agent reported itself offline: {clip(str(reason))}."
            alert.evidence["agent_reason"] = clip(str(reason))
        st.silent_since = st.last
        return alert

    def _alert(
        self, host: str, st: _Host, ts: float, status: str, ev: Event | None = None
    ) -> Alert:
        interval = self.interval(st)
        silence = max(self.min_silence, self.factor * interval)
        since = st.last if status == "firing" else st.silent_since
        assert since is not None
        if status == "firing":
            title = f"Host {clip(host)} stopped reporting"
            body = (
                f"No metrics from {clip(host)} since {iso(since)}: silent for more than "
                f"{silence:g} s ({self.factor:g}x its {interval:g} s interval, minimum "
                f"{self.min_silence:g} s)."
            )
        else:
            title = f"Host {clip(host)} is reporting again"
            body = f"{clip(host)} reported at {iso(ts)} after {ts - since:.0f} s of silence."
        return self.make_alert(
            key={"host": host},
            incident=since,
            event_time=ts,
            title=title,
            body=body,
            status=status,
            evidence={
                "last_seen": since,
                "interval_seconds": interval,
                "silence_threshold_seconds": silence,
                "silent_for_seconds": ts - since,
            },
            source=ev.source()
            if ev is not None
            else {"topic": st.topic, "partition": st.partition, "offset": st.offset},
            labels={"host": clip(host)},
        )

    def snapshot(self) -> Any:
        return {
            "hosts": [
                [
                    h,
                    st.last,
                    list(st.gaps),
                    st.samples,
                    st.deadline,
                    st.silent_since,
                    [st.topic, st.partition, st.offset],
                ]
                for h, st in self.state.items()
            ],
            "timers": [[w, k] for w, k in self.timers.snapshot() if math.isfinite(w)],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        for host, last, gaps, samples, deadline, silent, source in state.get("hosts", []):
            st = _Host.__new__(_Host)
            st.last, st.gaps, st.samples, st.deadline = last, tuple(gaps), samples, deadline
            st.silent_since = silent
            st.topic, st.partition, st.offset = source
            self.state.touch(host, st)
        self.timers.restore([(w, k) for w, k in state.get("timers", [])])
        self.state.evictions = int(state.get("evictions", 0))
