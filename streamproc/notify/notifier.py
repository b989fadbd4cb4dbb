"""The Notifier: runs the notify pipeline (pipeline.py) and owns its asyncio tasks.

    build_pipeline(policy, state) -> Pipeline, its stages in this order:

    submit(batch) ─► inhibit ─► silence ─► route ─► dedup ─► group      [one SQLite tx]
                                                                ║  (durable: submit
                                                                ║   returns here)
    flush loop    ◄── group timers due ═════════════════════════╝
        └─► inhibit (again) ─► dedup (nlog: queued) ─► outbox            [one SQLite tx]
                                                          ║
    one worker per channel (worker.py) ◄══════════════════╝
        └─► rate limit (token bucket, digest) ─► deliver (own threads, timeout)
            ─► retry: ok: nlog sent | 429: pause channel | error: backoff
                      exhausted: fallback channel ─► exhausted again: dead letters
    resend loop (only with alertmanager:// channels, see resend.py):
        firing alerts sent there, not resolved ─► re-sent every ``resend``

Every stage is a small object in its module with one method, ``run(batch) -> batch``
(stage.py), that a test can drive alone. This module decides when each part of the list
runs (on submit, on a group timer, in a channel's worker) and swaps the list on reload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..alerts import Alert
from ..ops.logs import RateLimitedLog
from . import am_payloads
from .channels import Channel, load_channels
from .dedup import Dedup
from .deliver import AM_FORMATS, Hooks
from .group import Grouper
from .inhibit import Inhibitor, InhibitRule
from .outbox import Outbox, OutboxRow
from .pipeline import Pipeline, Policy, State, build_pipeline
from .resend import FiringTable
from .retry import GiveUp, RetryPolicy
from .routing import Router
from .settings import NotifySettings, parse_settings
from .silences import SilenceStage, SilenceStore
from .stage import Batch, run_in_tx
from .store import Tx, open_db
from .templates import Message, Renderer, notify_type_for
from .undelivered import DeadLetterCallback, DeadLetters
from .worker import ChannelWorker, wait_event

if TYPE_CHECKING:
    from .sharedlog import SharedNotificationLog

log = logging.getLogger("streamproc.notify")


class Notifier:
    """Deliver alerts through Apprise with no alert lost and none sent twice.

    Contract with the runtime: ``submit(batch)`` returns once every alert of the batch is
    durable in ``state_dir/notify.db``, or in the dead letters (unrouted: no channel carries
    any of its tags; reason ``no_route``), or deliberately dropped (silenced, inhibited,
    duplicate); the runtime may then commit its alert-log offsets.
    """

    def __init__(
        self,
        settings: NotifySettings,
        channels: list[Channel],
        fallbacks: list[Channel],
        *,
        state_dir: Path,
        dead_letter: DeadLetterCallback | None = None,
        clock: Callable[[], float] = time.time,
        silences: SilenceStage | None = None,
        shared_log: SharedNotificationLog | None = None,
    ) -> None:
        # where the deployment's silences live (None: this notify.db); the notification log
        # shared with the other workers (None: this worker's alone); see sharedlog.py
        self._silence_source = silences
        self.shared_log = shared_log
        self.channels: dict[str, Channel] = {c.id: c for c in channels}
        self.fallbacks = fallbacks
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.channel_counters: dict[str, Counter[str]] = {c.name: Counter() for c in channels}
        self.policy = Policy.build(settings, channels)
        self.hooks = Hooks()
        self.dead = DeadLetters(self.state_dir, dead_letter)
        self.workers: dict[str, ChannelWorker] = {}
        self.pipeline: Pipeline | None = None  # built by start(), over the open database
        self._state: State | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_wake: asyncio.Event | None = None
        self._backlog = (0, 0.0)
        self._sent: list[tuple[ChannelWorker, list[OutboxRow], list[list[Alert]]]] = []
        self._started = False
        self._closed = False
        self._db_open = False
        self._unrouted_log = RateLimitedLog(log, per_key_interval=10.0)
        self._resend_log = RateLimitedLog(log, per_key_interval=60.0)
        self._sinks: tuple[str | None, bool] = (None, False)  # alerts_file, console

    @classmethod
    def from_config(
        cls,
        notify_cfg: dict[str, Any] | None,
        *,
        state_dir: Path,
        alerts_file: str | None = None,
        console: bool = False,
        dead_letter: DeadLetterCallback | None = None,
        clock: Callable[[], float] = time.time,
        silences: SilenceStage | None = None,
        shared_log: SharedNotificationLog | None = None,
    ) -> Notifier:
        settings = parse_settings(notify_cfg)
        channels, fallbacks = load_channels(settings, alerts_file=alerts_file, console=console)
        if not channels:
            log.warning(
                "notify: no channels configured; every alert goes to the dead "
                "letters (reason no_route). Add notify.urls to your config."
            )
        notifier = cls(
            settings,
            channels,
            fallbacks,
            state_dir=Path(state_dir),
            dead_letter=dead_letter,
            clock=clock,
            silences=silences,
            shared_log=shared_log,
        )
        notifier._sinks = (alerts_file, console)
        return notifier

    # -- what the policy and the pipeline hold, by name --------------------------------------
    @property
    def settings(self) -> NotifySettings:
        return self.policy.settings

    @property
    def router(self) -> Router:
        return self.policy.router

    @property
    def renderer(self) -> Renderer:
        return self.policy.renderer

    @property
    def retry(self) -> RetryPolicy:
        return self.policy.retry

    @property
    def inhibit_rules(self) -> list[InhibitRule]:
        """The inhibit rules in force (the Alertmanager API applies them to active alerts)."""
        return self.policy.inhibit_rules

    def _built(self) -> Pipeline:
        assert self.pipeline is not None, "Notifier.start() first"
        return self.pipeline

    @property
    def inhibitor(self) -> Inhibitor:
        return self._built().inhibitor

    @property
    def grouper(self) -> Grouper:
        return self._built().grouper

    @property
    def dedup(self) -> Dedup:
        return self._built().dedup

    @property
    def on_delivery(self) -> Callable[[str, str, float], None] | None:
        """(channel service name, outcome, seconds) after each send: Prometheus hooks here."""
        return self.hooks.on_delivery

    @on_delivery.setter
    def on_delivery(self, hook: Callable[[str, str, float], None] | None) -> None:
        self.hooks.on_delivery = hook

    @property
    def on_dead_letter(self) -> Callable[[str, int], None] | None:
        """(reason, alerts) for every alert dead-lettered: no_route, delivery_failed."""
        return self.hooks.on_dead_letter

    @on_dead_letter.setter
    def on_dead_letter(self, hook: Callable[[str, int], None] | None) -> None:
        self.hooks.on_dead_letter = hook

    def reload(self, notify_cfg: dict[str, Any] | None) -> None:
        """Apply new routes, templates, inhibit rules, timers and retry policy live.

        Channels (URLs, Apprise config files) own threads, buckets and outbox rows: a change
        to them is refused with ConfigError (restart to apply), and nothing is changed.
        """
        from ..errors import ConfigError

        settings = parse_settings(notify_cfg)
        channels, fallbacks = load_channels(
            settings, alerts_file=self._sinks[0], console=self._sinks[1]
        )
        if {c.id for c in channels} != set(self.channels) or {f.id for f in fallbacks} != {
            f.id for f in self.fallbacks
        }:
            raise ConfigError(
                "notify channels changed (urls, apprise_config or fallback): "
                "restart streamproc to apply them",
                hint="routes, templates, timers and inhibit rules reload live",
            )
        policy = Policy.build(settings, list(self.channels.values()))
        # all checks passed: swap in one step of the event loop
        self.use(policy)
        log.info("notify: routes, templates, timers and inhibit rules reloaded")

    def use(self, policy: Policy) -> None:
        """Run with this policy from now on: once started, a pipeline built for it replaces
        the current one (its stages, and each channel worker's) in one step."""
        self.policy = policy
        if self._state is None:  # not started: start() builds it
            return
        self.pipeline = build_pipeline(policy, self._state)
        for cid, worker in self.workers.items():
            worker.use(self.pipeline.channels[cid])

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.db = open_db(self.state_dir)
        self._db_open = True
        self.silences: SilenceStage = self._silence_source or SilenceStore(self.db)
        await self.silences.start()
        if self.shared_log is not None:
            await self.shared_log.start(self.db)
        self.outbox = Outbox(self.db)
        self.firing = FiringTable(self.db)
        self._flush_wake = asyncio.Event()
        for ch in self.channels.values():
            w = ChannelWorker(
                ch,
                outbox=self.outbox,
                db=self.db,
                clock=self.clock,
                counters=self.counters,
                delivered=self.sent_later,
            )
            w.is_fallback = ch in self.fallbacks
            self.workers[ch.id] = w
        # GiveUp only writes "dead" into the notification log: no repeat_interval involved
        give_up = GiveUp(
            self.db,
            self.outbox,
            Dedup(self.db, repeat_interval=0.0),
            self.dead,
            fallbacks=self.fallbacks,
            channels=self.channels,
            counters=self.counters,
            hooks=self.hooks,
            clock=self.clock,
            wake=lambda cid: self.workers[cid].wake(),
            shared_log=self.shared_log,
        )
        self._state = State(
            db=self.db,
            silences=self.silences,
            outbox=self.outbox,
            firing=self.firing,
            channels=self.channels,
            fallbacks=self.fallbacks,
            workers=self.workers,
            give_up=give_up,
            hooks=self.hooks,
            clock=self.clock,
            channel_counters=self.channel_counters,
        )
        self.give_up = give_up
        self.use(self.policy)
        with Tx(self.db):
            self.grouper.apply_timers(self.channels)
        await self._adopt_orphans()
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="notify-flush"))
        self._tasks.append(asyncio.create_task(self._maintenance(), name="notify-maint"))
        if any(c.fmt == "alertmanager" for c in self.channels.values()):
            self._tasks.append(asyncio.create_task(self._resend_loop(), name="notify-resend"))
        for w in self.workers.values():
            self._tasks.append(asyncio.create_task(w.run(), name=f"notify-{w.channel.id}"))

    async def _adopt_orphans(self) -> None:
        """Outbox rows of channels removed from the config: fallback, else dead letters."""
        for cid in self.outbox.channels() - set(self.channels):
            rows = self.outbox.due(cid, float("inf"), limit=1 << 30)
            await self.give_up(
                rows, "channel no longer configured", attempts_extra=0, reason="channel_removed"
            )

    async def drain(self, timeout: float) -> bool:
        """Flush every waiting group now and wait until nothing is deliverable (sent, or
        waiting on a paused/backing-off channel). True when the outbox emptied."""
        deadline = time.monotonic() + timeout
        with Tx(self.db):
            self.grouper.flush_all(self.clock())
        assert self._flush_wake is not None
        self._flush_wake.set()
        while time.monotonic() < deadline and self.grouper.due(self.clock(), 1):
            await asyncio.sleep(0.01)
        while time.monotonic() < deadline and self._deliverable_now():
            await asyncio.sleep(0.01)
        return self.outbox.count() == 0

    async def close(self) -> None:
        """Flush what can be flushed within ``close_timeout``; everything else stays on disk."""
        if not self._started or self._closed:
            return
        try:
            if self.settings.flush_on_close:
                await self.drain(self.settings.close_timeout)
            else:
                deadline = time.monotonic() + self.settings.close_timeout
                while time.monotonic() < deadline and any(
                    w.in_flight for w in self.workers.values()
                ):
                    await asyncio.sleep(0.01)
        finally:
            self._closed = True
            for t in self._tasks:
                t.cancel()
            for w in self.workers.values():
                for t in list(w.tasks):
                    t.cancel()
            await asyncio.gather(
                *self._tasks,
                *(t for w in self.workers.values() for t in w.tasks),
                return_exceptions=True,
            )
            for w in self.workers.values():
                w.sender.close()
            self._commit_sent()  # deliveries that completed during shutdown
            if self.shared_log is not None:
                await self.shared_log.stop()  # after the last publish
            await self.silences.stop()
            self._db_open = False
            self.db.close()

    def _deliverable_now(self) -> bool:
        now = self.clock()
        for w in self.workers.values():
            if w.in_flight:
                return True
            if w.paused_until > now:
                continue
            nxt = self.outbox.next_due(w.channel.id)
            if nxt is not None and nxt <= now + 0.5:
                return True
        return False

    # -- ingest -----------------------------------------------------------------------------
    async def submit(self, alerts: list[Alert]) -> None:
        """Run the ingest stages and persist the batch; returns when it is durable."""
        if not self._started:
            await self.start()
        if not alerts:
            return
        await self._wait_for_room()
        now = self.clock()
        batch: Batch[Alert] = Batch(now, list(alerts))
        self.counters["received"] += len(alerts)
        try:
            with Tx(self.db):
                run_in_tx(self._built().ingest, batch)
        finally:
            self.counters.update(batch.counts)
        if batch.unrouted:
            await self._dead_letter_unrouted(batch.unrouted, now)
        assert self._flush_wake is not None
        self._flush_wake.set()

    async def _dead_letter_unrouted(self, alerts: list[Alert], now: float) -> None:
        """Alerts no channel takes are kept, not dropped: to the dead letters with reason
        ``no_route`` before submit returns (so before the alert log moves past them)."""
        records = []
        for a in alerts:
            tags = ",".join(self.router.tags_for(a)) or "none"
            self._unrouted_log.warning(
                ("unrouted", a.kind),
                "notify: no channel for %s/%s (tags %s): dead-lettered "
                "as no_route; add a channel with one of these tags or a catch-all URL",
                a.kind,
                a.severity,
                tags,
            )
            records.append(
                {
                    "failed_at": now,
                    "reason": "no_route",
                    "channel": None,
                    "last_channel": None,
                    "attempts": 0,
                    "error": f"no channel carries any of the tags {tags}",
                    "alerts": [a.to_dict()],
                }
            )
        await self.dead.write(records)
        self.counters["unrouted"] += len(alerts)
        self.give_up.count_dead("no_route", len(alerts))

    async def _wait_for_room(self) -> None:
        """Backpressure: with max_backlog rows waiting on disk, hold the caller (and so the
        alert-log commit) until channels drain; the backlog then waits in the alert log."""
        while True:
            count, at = self._backlog
            mono = time.monotonic()
            if mono - at > 1.0:
                count = self.outbox.count() + int(
                    self.db.execute("SELECT COUNT(*) FROM group_members").fetchone()[0]
                )
                self._backlog = (count, mono)
            if count < self.settings.max_backlog or self._closed:
                return
            self.counters["backpressure_waits"] += 1
            await asyncio.sleep(0.5)

    # -- group flush ------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        assert self._flush_wake is not None
        while True:
            self._flush_wake.clear()
            now = self.clock()
            due = self.grouper.due(now)
            if due:
                self._flush(due, now)
                await asyncio.sleep(0)
                continue
            nxt = self.grouper.next_due()
            timeout = 5.0 if nxt is None else min(5.0, max(0.001, nxt - now))
            await wait_event(self._flush_wake, timeout)

    def _flush(self, due: list[tuple[str, str]], now: float) -> None:
        """Every due group in one transaction, each stage over the whole flush at once."""
        pipeline = self._built()
        counts: Counter[str] = Counter()
        try:
            with Tx(self.db):
                batch = pipeline.group.take(due, now)
                counts = batch.counts
                run_in_tx(pipeline.flush, batch)
        finally:
            self.counters.update(counts)

    # -- after delivery ---------------------------------------------------------------------
    def sent_later(
        self, worker: ChannelWorker, batch: list[OutboxRow], groups: list[list[Alert]]
    ) -> None:
        """Record a delivery in the next commit. Every send that completes in the same loop
        iteration shares one transaction (at 1000 sends/s, one commit per send was the
        largest cost). Until it commits, the rows stay in flight so they are not re-sent; a
        crash before it re-sends them (the documented at-least-once window)."""
        if not self._sent:
            asyncio.get_running_loop().call_soon(self._commit_sent)
        self._sent.append((worker, batch, groups))

    def _commit_sent(self) -> None:
        done, self._sent = self._sent, []
        if not done or not self._db_open:
            return
        now = self.clock()
        marks = [
            (r.home, a.fingerprint, a.status, "fallback" if r.origin else "sent")
            for _worker, batch, groups in done
            for r, g in zip(batch, groups, strict=True)
            for a in g
        ]
        with Tx(self.db):
            self.dedup.mark_many(marks, now)
            self.outbox.remove(r.id for _worker, batch, _groups in done for r in batch)
            for worker, batch, groups in done:
                if worker.channel.fmt in AM_FORMATS:
                    self.firing.record(
                        worker.channel.id,
                        (
                            a
                            for r, g in zip(batch, groups, strict=True)
                            if r.origin is None
                            for a in g
                        ),
                        now,
                    )
        if self.shared_log is not None:  # in the same loop turn: see sharedlog.py
            self.shared_log.publish(marks, now)
        for worker, batch, groups in done:
            worker.in_flight.difference_update(r.id for r in batch)
            worker.wake()
            self.counters["messages_sent"] += 1
            self.counters["alerts_delivered"] += sum(len(g) for g in groups)
            self.channel_counters[worker.channel.name]["sent"] += 1

    async def _resend_loop(self) -> None:
        """Re-send the firing alerts of every ``alertmanager://`` channel (see resend.py)."""
        channels = [c for c in self.channels.values() if c.fmt == "alertmanager"]
        tick = min(5.0, max(0.05, min(c.resend for c in channels) / 4))
        while True:
            more = False
            for ch in channels:
                try:
                    more |= await self._resend(ch)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the loop must outlive one bad round; the rows stay
                    log.exception("notify: unexpected error re-sending to %s", ch.name)
            if not more:
                await asyncio.sleep(tick)

    async def _resend(self, ch: Channel, limit: int = 1000) -> bool:
        """One POST of this channel's due alerts; True when more may be due."""
        now = self.clock()
        worker = self.workers[ch.id]
        if worker.paused_until > now:  # failing or rate limited: its retries come first
            return False
        resend_for = ch.resend_for if ch.resend_for is not None else self.settings.inhibit_ttl
        due = self.firing.due(ch.id, now, resend=ch.resend, resend_for=resend_for, limit=limit)
        if not due:
            return False
        ends = now + 4 * ch.resend
        body = orjson.dumps(
            [
                am_payloads.postable_alert(
                    a, ends_at=ends, starts_at=starts, generator_url=ch.generator_url
                )
                for a, starts in due
            ]
        ).decode()
        started = time.monotonic()
        result = await worker.sender.send(
            Message(f"{len(due)} firing alerts", body, notify_type_for([a for a, _ in due]))
        )
        if self.on_delivery is not None:
            self.on_delivery(ch.name, "sent" if result.ok else "failed", time.monotonic() - started)
        if not result.ok:
            self.counters["resend_failures"] += 1
            self._resend_log.warning(
                ("resend", ch.id),
                "notify: re-sending %d firing alert(s) to %s failed (%s); trying again in %gs",
                len(due),
                ch.name,
                result.error,
                ch.resend,
            )
            with Tx(self.db):  # not again before the next interval
                self.firing.resent(ch.id, (a.fingerprint for a, _ in due), now)
            return False
        with Tx(self.db):
            self.firing.resent(ch.id, (a.fingerprint for a, _ in due), now)
        self.counters["resent"] += len(due)
        return len(due) >= limit

    # -- housekeeping -----------------------------------------------------------------------
    async def _maintenance(self) -> None:
        while True:
            await asyncio.sleep(60.0)
            now = self.clock()
            with Tx(self.db):
                self.grouper.gc(now)
                self.dedup.prune(now, self.settings.nlog_retention)
                self.firing.prune(now, self.settings.nlog_retention)
            self.inhibitor.prune(now)
            self.silences.prune(now)

    def stats(self) -> dict[str, Any]:
        """Counters for metrics: totals, and per channel (redacted names only)."""
        out: dict[str, Any] = dict(self.counters)
        out["channels"] = {}
        for w in self.workers.values():
            name = w.channel.name
            out["channels"][name] = {
                **self.channel_counters.get(name, {}),
                "queued": self.outbox.count(w.channel.id)
                if self._started and not self._closed
                else 0,
                "paused": w.paused_until > self.clock(),
                "in_flight": len(w.in_flight),
            }
        return out
