"""The Notifier: the notify stages wired in order, Alertmanager-style.

    submit(batch) ──► inhibit ─► silence ─► route ─► dedup (early) ─► group   [one SQLite tx]
                                                                        │  (durable: submit
                                                                        │   returns here)
    flush loop  ◄── group timers due ───────────────────────────────────┘
        └─► inhibit (again) ─► dedup (nlog: queued) ─► outbox               [one SQLite tx]
    one worker per channel:
        outbox ─► rate limit (token bucket, digest) ─► deliver (own threads, timeout)
              ─► ok: nlog sent | 429: pause channel | error: retry with backoff
              ─► exhausted: fallback channel ─► exhausted again: dead letters
    resend loop (only with alertmanager:// channels, see resend.py):
        firing alerts sent there, not resolved ─► re-sent every ``resend``

Every stage is a small object in its own module with an ``exec``-like method that a test can
drive alone; this module only decides the order and owns the asyncio tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..alerts import Alert
from ..logs import RateLimitedLog
from . import am_payloads
from .channels import WEBHOOK_FORMAT, Channel, load_channels
from .deadletter import DeadLetterCallback, DeadLetters
from .dedup import Dedup
from .deliver import ChannelSender, SendResult
from .group import Grouper
from .inhibit import Inhibitor, InhibitRule, parse_rules
from .outbox import Outbox, OutboxRow
from .ratelimit import TokenBucket, plan
from .resend import FiringTable
from .retry import RetryPolicy
from .routing import Router, build_routes
from .settings import NotifySettings, parse_settings
from .silences import SilenceStage, SilenceStore
from .store import Tx, open_db
from .templates import Message, Renderer, notify_type_for

if TYPE_CHECKING:
    from .sharedlog import SharedNotificationLog

log = logging.getLogger("streamproc.notify")

# Channel formats that carry Alertmanager-shaped JSON, not text (see am_payloads.py)
AM_FORMATS = ("alertmanager", WEBHOOK_FORMAT)


async def wait_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for ``event`` at most ``timeout`` seconds.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for`` can swallow a
    cancellation that races with the event being set, and close() then hangs.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(None if timeout is None else max(0.0, timeout)):
            await event.wait()


class ChannelWorker:
    """Rate limit -> deliver -> retry -> fallback -> dead-letter, for one channel."""

    def __init__(self, notifier: Notifier, channel: Channel) -> None:
        self.n = notifier
        self.channel = channel
        self.bucket = TokenBucket(channel.rate, channel.burst)
        self.sender = ChannelSender(channel)
        self.in_flight: set[int] = set()
        self.paused_until = 0.0
        self.failures = 0  # consecutive failed sends
        self.wake_event = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.is_fallback = False

    def wake(self) -> None:
        self.wake_event.set()

    async def _sleep(self, seconds: float | None) -> None:
        await wait_event(self.wake_event, seconds)

    async def run(self) -> None:
        n, ch = self.n, self.channel
        digest_max = n.settings.digest_max
        while True:
            self.wake_event.clear()
            now = n.clock()
            if self.paused_until > now:
                await self._sleep(min(self.paused_until - now, 5.0))
                continue
            free = self.sender.free
            if free <= 0:
                await self._sleep(1.0)
                continue
            tokens = self.bucket.available(now)
            if tokens < 1:
                await self._sleep(self.bucket.wait_time(now))
                continue
            unlimited = self.bucket.unlimited
            limit = free if unlimited else min(tokens, free) + digest_max
            rows = n.outbox.due(ch.id, now, exclude=self.in_flight, limit=limit)
            if not rows:
                nxt = n.outbox.next_due(ch.id, exclude=self.in_flight)
                await self._sleep(None if nxt is None else min(max(0.005, nxt - now), 5.0))
                continue
            units = ([range(i, i + 1) for i in range(len(rows))] if unlimited
                     else plan(len(rows), tokens, digest_max=digest_max))
            for unit in units[:free]:
                batch = [rows[i] for i in unit]
                self.bucket.take(now)
                self.in_flight.update(r.id for r in batch)
                task = asyncio.create_task(self._deliver(batch))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            await asyncio.sleep(0)

    def _render(self, batch: list[OutboxRow]) -> tuple[Message, list[list[Alert]]]:
        groups = [self.n.alerts_of(r) for r in batch]
        if len(batch) > 1:
            self.n.counters["digests"] += 1
        return self.n.render(batch, groups, self.channel), groups

    async def _deliver(self, batch: list[OutboxRow]) -> None:
        n = self.n
        committing = False
        try:
            msg, groups = self._render(batch)
            started = time.monotonic()
            result = await self.sender.send(msg)
            if n.on_delivery is not None:
                outcome = "sent" if result.ok else (
                    "rate_limited" if result.status == 429 else "failed")
                n.on_delivery(self.channel.name, outcome, time.monotonic() - started)
            committing = await self._record(batch, groups, result)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one message kill the channel; it stays in the outbox
            log.exception("notify: unexpected error delivering to %s", self.channel.name)
            with Tx(n.db):
                for r in batch:
                    n.outbox.failed(r, error="internal error", next_at=n.clock() + 5.0)
        finally:
            if not committing:  # else the rows stay "in flight" until their commit
                self.in_flight.difference_update(r.id for r in batch)
                self.wake()

    async def _record(self, batch: list[OutboxRow], groups: list[list[Alert]],
                      result: SendResult) -> bool:
        """Act on a send's result. True when the rows were handed to the commit batcher."""
        n, ch = self.n, self.channel
        now = n.clock()
        if result.ok:
            self.failures = 0
            n.sent_later(self, batch, groups)
            return True
        n.counters["send_failures"] += 1
        n.channel_counters[ch.name]["failed"] += 1
        if result.status == 429:
            n.counters["rate_limited"] += 1
            pause = (result.retry_after if result.retry_after is not None
                     else n.retry.delay(self.failures + 1))
            self.paused_until = max(self.paused_until, now + pause)
            self.bucket.drain(now)
            log.warning("notify: %s answered 429; pausing it for %.1fs", ch.name, pause)
            exhausted = []
            with Tx(n.db):
                for r in batch:
                    n.outbox.failed(r, error="HTTP 429 (rate limited)",
                                    next_at=self.paused_until, count=False)
                    if now - r.created >= n.settings.retry.max_age:
                        exhausted.append(r)
            await n.give_up(exhausted, "HTTP 429 (rate limited)", attempts_extra=0)
            return False
        self.failures += 1
        delay = n.retry.delay(self.failures)
        self.paused_until = max(self.paused_until, now + delay)
        log.warning("notify: delivery to %s failed (%s); retrying in %.1fs", ch.name,
                    result.error, delay)
        exhausted = []
        with Tx(n.db):
            for r in batch:
                n.outbox.failed(r, error=result.error, next_at=now + delay)
                if n.retry.exhausted(r.attempts + 1, r.created, now):
                    exhausted.append(r)
        await n.give_up(exhausted, result.error, attempts_extra=1)
        return False


class Notifier:
    """Deliver alerts through Apprise with no alert lost and none sent twice.

    Contract with the runtime: ``submit(batch)`` returns once every alert of the batch is
    durable in ``state_dir/notify.db``, or in the dead letters (unrouted: no channel carries
    any of its tags; reason ``no_route``), or deliberately dropped (silenced, inhibited,
    duplicate); the runtime may then commit its alert-log offsets.
    """

    def __init__(self, settings: NotifySettings, channels: list[Channel],
                 fallbacks: list[Channel], *, state_dir: Path,
                 dead_letter: DeadLetterCallback | None = None,
                 clock: Callable[[], float] = time.time,
                 silences: SilenceStage | None = None,
                 shared_log: SharedNotificationLog | None = None) -> None:
        self.settings = settings
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
        self.renderer = Renderer(settings.templates, max_value_len=settings.max_value_len,
                                 max_title_len=settings.max_title_len,
                                 max_body_len=settings.max_body_len,
                                 max_group_items=settings.max_group_items)
        self.router = Router(build_routes(settings.routes, defaults=settings.default_routes),
                             channels)
        self.retry = RetryPolicy(settings.retry)
        self.dead = DeadLetters(self.state_dir, dead_letter)
        self._inhibit_rules = parse_rules(settings.inhibit_rules)
        self.workers: dict[str, ChannelWorker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_wake: asyncio.Event | None = None
        self._backlog = (0, 0.0)
        self._sent: list[tuple[ChannelWorker, list[OutboxRow], list[list[Alert]]]] = []
        self._render_cache: OrderedDict[tuple[Any, ...], Message] = OrderedDict()
        self._decoded: OrderedDict[bytes, list[Alert]] = OrderedDict()
        self._started = False
        self._closed = False
        self._db_open = False
        # (channel service name, outcome, seconds) after each send: Prometheus hooks here
        self.on_delivery: Callable[[str, str, float], None] | None = None
        # (reason, alerts) for every alert dead-lettered: no_route, delivery_failed
        self.on_dead_letter: Callable[[str, int], None] | None = None
        self._unrouted_log = RateLimitedLog(log, per_key_interval=10.0)
        self._resend_log = RateLimitedLog(log, per_key_interval=60.0)
        self._sinks: tuple[str | None, bool] = (None, False)  # alerts_file, console

    @classmethod
    def from_config(cls, notify_cfg: dict[str, Any] | None, *, state_dir: Path,
                    alerts_file: str | None = None, console: bool = False,
                    dead_letter: DeadLetterCallback | None = None,
                    clock: Callable[[], float] = time.time,
                    silences: SilenceStage | None = None,
                    shared_log: SharedNotificationLog | None = None) -> Notifier:
        settings = parse_settings(notify_cfg)
        channels, fallbacks = load_channels(settings, alerts_file=alerts_file, console=console)
        if not channels:
            log.warning("notify: no channels configured; every alert goes to the dead "
                        "letters (reason no_route). Add notify.urls to your config.")
        notifier = cls(settings, channels, fallbacks, state_dir=Path(state_dir),
                       dead_letter=dead_letter, clock=clock, silences=silences,
                       shared_log=shared_log)
        notifier._sinks = (alerts_file, console)
        return notifier

    @property
    def inhibit_rules(self) -> list[InhibitRule]:
        """The inhibit rules in force (the Alertmanager API applies them to active alerts)."""
        return self._inhibit_rules

    def reload(self, notify_cfg: dict[str, Any] | None) -> None:
        """Apply new routes, templates, inhibit rules, timers and retry policy live.

        Channels (URLs, Apprise config files) own threads, buckets and outbox rows: a change
        to them is refused with ConfigError (restart to apply), and nothing is changed.
        """
        from ..errors import ConfigError

        settings = parse_settings(notify_cfg)
        channels, fallbacks = load_channels(settings, alerts_file=self._sinks[0],
                                            console=self._sinks[1])
        if {c.id for c in channels} != set(self.channels) or \
                {f.id for f in fallbacks} != {f.id for f in self.fallbacks}:
            raise ConfigError("notify channels changed (urls, apprise_config or fallback): "
                              "restart streamproc to apply them",
                              hint="routes, templates, timers and inhibit rules reload live")
        current = list(self.channels.values())
        renderer = Renderer(settings.templates, max_value_len=settings.max_value_len,
                            max_title_len=settings.max_title_len,
                            max_body_len=settings.max_body_len,
                            max_group_items=settings.max_group_items)
        router = Router(build_routes(settings.routes, defaults=settings.default_routes),
                        current)
        rules = parse_rules(settings.inhibit_rules)
        # all checks passed: swap in one step of the event loop
        self.settings = settings
        self.renderer = renderer
        self.router = router
        self.retry = RetryPolicy(settings.retry)
        self._inhibit_rules = rules
        if hasattr(self, "inhibitor"):
            self.inhibitor.rules = rules
        if hasattr(self, "grouper"):
            self.grouper.group_by = list(settings.group_by)
            self.grouper.group_wait = settings.group_wait
            self.grouper.group_interval = settings.group_interval
        if hasattr(self, "dedup") and hasattr(self.dedup, "repeat_interval"):
            self.dedup.repeat_interval = settings.repeat_interval
        self._render_cache.clear()
        log.info("notify: routes, templates, timers and inhibit rules reloaded")

    # -- lifecycle --------------------------------------------------------------------------
    def _timers(self, channel_id: str) -> tuple[float, float]:
        s = self.settings
        ch = self.channels.get(channel_id)
        wait = ch.group_wait if ch is not None and ch.group_wait is not None else s.group_wait
        interval = (ch.group_interval if ch is not None and ch.group_interval is not None
                    else s.group_interval)
        return wait, interval

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        s = self.settings
        self.db = open_db(self.state_dir)
        self._db_open = True
        self.silences: SilenceStage = self._silence_source or SilenceStore(self.db)
        await self.silences.start()
        if self.shared_log is not None:
            await self.shared_log.start(self.db)
        self.inhibitor = Inhibitor(self.db, self._inhibit_rules, s.inhibit_ttl)
        self.grouper = Grouper(self.db, group_by=s.group_by, group_wait=s.group_wait,
                               group_interval=s.group_interval, channel_timers=self._timers)
        self.dedup = Dedup(self.db, repeat_interval=s.repeat_interval)
        self.outbox = Outbox(self.db)
        self.firing = FiringTable(self.db)
        with Tx(self.db):
            self.grouper.apply_timers(self.channels)
        self._flush_wake = asyncio.Event()
        for ch in self.channels.values():
            w = ChannelWorker(self, ch)
            w.is_fallback = ch in self.fallbacks
            self.workers[ch.id] = w
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
            await self.give_up(rows, "channel no longer configured", attempts_extra=0,
                               reason="channel_removed")

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
                while time.monotonic() < deadline and any(w.in_flight
                                                          for w in self.workers.values()):
                    await asyncio.sleep(0.01)
        finally:
            self._closed = True
            for t in self._tasks:
                t.cancel()
            for w in self.workers.values():
                for t in list(w.tasks):
                    t.cancel()
            await asyncio.gather(*self._tasks, *(t for w in self.workers.values()
                                                 for t in w.tasks), return_exceptions=True)
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
        c = self.counters
        with Tx(self.db):
            c["received"] += len(alerts)
            kept, inhibited = self.inhibitor.exec(list(alerts), now)
            kept, silenced = self.silences.exec(kept, now)
            c["inhibited"] += len(inhibited)
            c["silenced"] += len(silenced)
            pairs: list[tuple[Alert, Channel]] = []
            unrouted: list[Alert] = []
            firing_to: dict[str, set[str]] = {}  # a resolve follows its firing in this batch
            for a in kept:
                channels = self._channels_for(a, firing_to, now)
                if not channels:
                    unrouted.append(a)
                    continue
                for ch in channels:
                    pairs.append((a, ch))
                    if a.status == "firing":
                        firing_to.setdefault(a.fingerprint, set()).add(ch.id)
            # Batch-wide: one nlog lookup and one grouping pass (see Grouper.add_many).
            dupes = self.dedup.known([(ch.id, a.fingerprint, a.status) for a, ch in pairs], now)
            todo = [(a, ch.id) for a, ch in pairs
                    if (ch.id, a.fingerprint, a.status) not in dupes]
            c["deduplicated"] += len(pairs) - len(todo)
            c["grouped"] += sum(self.grouper.add_many(todo, now))
        if unrouted:
            await self._dead_letter_unrouted(unrouted, now)
        assert self._flush_wake is not None
        self._flush_wake.set()

    async def _dead_letter_unrouted(self, alerts: list[Alert], now: float) -> None:
        """Alerts no channel takes are kept, not dropped: to the dead letters with reason
        ``no_route`` before submit returns (so before the alert log moves past them)."""
        records = []
        for a in alerts:
            tags = ",".join(self.router.tags_for(a)) or "none"
            self._unrouted_log.warning(
                ("unrouted", a.kind), "notify: no channel for %s/%s (tags %s): dead-lettered "
                "as no_route; add a channel with one of these tags or a catch-all URL",
                a.kind, a.severity, tags)
            records.append({"failed_at": now, "reason": "no_route", "channel": None,
                            "last_channel": None, "attempts": 0,
                            "error": f"no channel carries any of the tags {tags}",
                            "alerts": [a.to_dict()]})
        await self.dead.write(records)
        self.counters["unrouted"] += len(alerts)
        self._count_dead("no_route", len(alerts))

    def _count_dead(self, reason: str, n: int) -> None:
        self.counters["dead_lettered"] += n
        if self.on_dead_letter is not None:
            self.on_dead_letter(reason, n)

    def _channels_for(self, alert: Alert, firing_to: dict[str, set[str]] | None = None,
                      now: float = 0.0) -> list[Channel]:
        """``firing_to``: channels the firing alerts earlier in this batch are headed for
        (not yet in the group tables when the batch is grouped in one pass)."""
        if alert.status == "resolved":  # follow the firing alert, wherever it went
            prior = set(self.dedup.channels_of(alert.fingerprint, "firing"))
            prior.update(self.grouper.waiting_for(alert.fingerprint, "firing"))
            pending = firing_to.get(alert.fingerprint) if firing_to else None
            if pending:  # those the firing will be grouped for (not the deduplicated ones)
                keys = [(c, alert.fingerprint, "firing") for c in pending]
                prior.update(k[0] for k in set(keys) - self.dedup.known(keys, now))
            known = [self.channels[c] for c in prior if c in self.channels]
            if known:
                return known
        return self.router.route(alert)

    async def _wait_for_room(self) -> None:
        """Backpressure: with max_backlog rows waiting on disk, hold the caller (and so the
        alert-log commit) until channels drain; the backlog then waits in the alert log."""
        while True:
            count, at = self._backlog
            mono = time.monotonic()
            if mono - at > 1.0:
                count = self.outbox.count() + int(self.db.execute(
                    "SELECT COUNT(*) FROM group_members").fetchone()[0])
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
        """Every due group in one transaction, each stage over the whole list at once."""
        touched: set[str] = set()
        c = self.counters
        with Tx(self.db):
            taken = self.grouper.take_many(due, now)
            muted = iter(self.inhibitor.inhibited_many([a for g in taken for a in g], now))
            kept: list[tuple[str, list[Alert]]] = []
            for (cid, _gkey), alerts in zip(due, taken, strict=True):
                left = [a for a in alerts if not next(muted)]
                c["inhibited"] += len(alerts) - len(left)
                kept.append((cid, left))
            rows: list[tuple[str, str, list[Alert], str | None]] = []
            for (cid, gkey), (fresh, dupes) in zip(due, self.dedup.exec_many(kept, now),
                                                   strict=True):
                c["deduplicated"] += len(dupes)
                if not fresh:
                    continue
                target = cid if cid in self.channels else (
                    self.fallbacks[0].id if self.fallbacks else None)
                if target is None:  # channel removed and no fallback: handled by orphans
                    rows.append((cid, gkey, fresh, None))
                    continue
                rows.append((target, gkey, fresh, None if target == cid else cid))
                c["messages_queued"] += 1
                touched.add(target)
            self.outbox.enqueue_many(rows, now)
        for cid in touched:
            self.workers[cid].wake()

    # -- giving up --------------------------------------------------------------------------
    async def give_up(self, rows: list[OutboxRow], error: str, *, attempts_extra: int,
                      reason: str = "delivery_failed") -> None:
        """Rows that exhausted their channel: to the fallback once, then to the dead letters."""
        if not rows:
            return
        now = self.clock()
        dead: list[OutboxRow] = []
        moved: set[str] = set()
        with Tx(self.db):
            for r in rows:
                fb = next((f for f in self.fallbacks if f.id != r.channel), None)
                if r.origin is None and fb is not None:
                    self.outbox.move(r, fb.id, now)
                    self.counters["fallback"] += 1
                    moved.add(fb.id)
                    log.warning("notify: %s gave up on a message after %d attempt(s) (%s); "
                                "sending it to the fallback %s", self._name(r.channel),
                                r.attempts + attempts_extra, error, fb.name)
                else:
                    dead.append(r)
        for cid in moved:
            self.workers[cid].wake()
        if not dead:
            return
        records = [{"failed_at": now, "reason": reason, "channel": self._name(r.home),
                    "last_channel": self._name(r.channel), "attempts": r.attempts +
                    attempts_extra, "error": error, "alerts": [a.to_dict() for a in r.alerts]}
                   for r in dead]
        # Write the dead letters before forgetting the rows: a crash in between duplicates a
        # dead letter, never loses one.
        await self.dead.write(records)
        with Tx(self.db):
            for r in dead:
                self.dedup.mark(r.home, [(a.fingerprint, a.status) for a in r.alerts], "dead",
                                now)
            self.outbox.remove(r.id for r in dead)
        if self.shared_log is not None:
            self.shared_log.publish([(r.home, a.fingerprint, a.status, "dead") for r in dead
                                     for a in r.alerts], now)
        self._count_dead(reason, sum(len(r["alerts"]) for r in records))
        log.error("notify: %d message(s) for %s dead-lettered (%s)", len(dead),
                  self._name(dead[0].home), error)

    def sent_later(self, worker: ChannelWorker, batch: list[OutboxRow],
                   groups: list[list[Alert]]) -> None:
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
        marks = [(r.home, a.fingerprint, a.status, "fallback" if r.origin else "sent")
                 for _worker, batch, groups in done
                 for r, g in zip(batch, groups, strict=True) for a in g]
        with Tx(self.db):
            self.dedup.mark_many(marks, now)
            self.outbox.remove(r.id for _worker, batch, _groups in done for r in batch)
            for worker, batch, groups in done:
                if worker.channel.fmt in AM_FORMATS:
                    self.firing.record(worker.channel.id, (
                        a for r, g in zip(batch, groups, strict=True) if r.origin is None
                        for a in g), now)
        if self.shared_log is not None:  # in the same loop turn: see sharedlog.py
            self.shared_log.publish(marks, now)
        for worker, batch, groups in done:
            worker.in_flight.difference_update(r.id for r in batch)
            worker.wake()
            self.counters["messages_sent"] += 1
            self.counters["alerts_delivered"] += sum(len(g) for g in groups)
            self.channel_counters[worker.channel.name]["sent"] += 1

    def alerts_of(self, row: OutboxRow) -> list[Alert]:
        """A row's alerts, decoded once for all channels: a group flushed to five channels
        is five rows with the same payload. Read-only: the lists are shared."""
        alerts = self._decoded.get(row.payload)
        if alerts is None:
            alerts = self._decoded[row.payload] = row.alerts
            if len(self._decoded) > 2048:
                self._decoded.popitem(last=False)
        return alerts

    def render(self, batch: list[OutboxRow], groups: list[list[Alert]],
               channel: Channel) -> Message:
        """Render once per (alerts, format, size limit): channels of one format share it."""
        if channel.fmt in AM_FORMATS:  # time-dependent (endsAt), and per channel
            return self._render_am(batch, groups, channel)
        key = (tuple((a.fingerprint, a.status) for g in groups for a in g), len(groups),
               channel.fmt, channel.max_body_len)
        msg = self._render_cache.get(key)
        if msg is None:
            if len(groups) == 1:
                msg = self.renderer.render_group(groups[0], channel.fmt, channel.max_body_len)
            else:
                msg = self.renderer.render_digest(groups, channel.fmt, channel.max_body_len)
            self._render_cache[key] = msg
            if len(self._render_cache) > 2048:
                self._render_cache.popitem(last=False)
        return msg

    def _render_am(self, batch: list[OutboxRow], groups: list[list[Alert]],
                   channel: Channel) -> Message:
        """Alertmanager JSON: a list of postable alerts (``alertmanager://``) or the webhook
        payload (``alertmanager-webhook``). A resolve's startsAt is its firing's, when this
        channel sent that firing; a firing alert whose resolve this channel already sent
        (a retry can make them cross) is left out, so it cannot fire again."""
        alerts = [a for g in groups for a in g]
        starts = self.firing.starts(channel.id, (a.fingerprint for a in alerts
                                                  if a.status == "resolved"))
        title = self.renderer.summary(alerts) if alerts else ""
        if channel.fmt == WEBHOOK_FORMAT:
            payload: Any = am_payloads.webhook_payload(
                alerts, receiver=channel.name,
                group_key=f"{channel.id}:" + ",".join(dict.fromkeys(r.gkey for r in batch)),
                group_by=self.settings.group_by, external_url=channel.external_url,
                generator_url=channel.generator_url, starts=starts)
        else:
            gone = self.firing.resolve_sent(channel.id, (a.fingerprint for a in alerts
                                                         if a.status == "firing"))
            ends = self.clock() + 4 * channel.resend
            payload = [am_payloads.postable_alert(
                a, ends_at=a.event_time if a.status == "resolved" else ends,
                starts_at=starts.get(a.fingerprint), generator_url=channel.generator_url)
                for a in alerts if not (a.status == "firing" and a.fingerprint in gone)]
        return Message(title, orjson.dumps(payload).decode(),
                       notify_type_for(alerts) if alerts else "info")

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
        due = self.firing.due(ch.id, now, resend=ch.resend, resend_for=resend_for,
                              limit=limit)
        if not due:
            return False
        ends = now + 4 * ch.resend
        body = orjson.dumps([am_payloads.postable_alert(a, ends_at=ends, starts_at=starts,
                                                        generator_url=ch.generator_url)
                             for a, starts in due]).decode()
        started = time.monotonic()
        result = await worker.sender.send(Message(f"{len(due)} firing alerts", body,
                                                  notify_type_for([a for a, _ in due])))
        if self.on_delivery is not None:
            self.on_delivery(ch.name, "sent" if result.ok else "failed",
                             time.monotonic() - started)
        if not result.ok:
            self.counters["resend_failures"] += 1
            self._resend_log.warning(("resend", ch.id), "notify: re-sending %d firing "
                                     "alert(s) to %s failed (%s); trying again in %gs",
                                     len(due), ch.name, result.error, ch.resend)
            with Tx(self.db):  # not again before the next interval
                self.firing.resent(ch.id, (a.fingerprint for a, _ in due), now)
            return False
        with Tx(self.db):
            self.firing.resent(ch.id, (a.fingerprint for a, _ in due), now)
        self.counters["resent"] += len(due)
        return len(due) >= limit

    def _name(self, channel_id: str) -> str:
        ch = self.channels.get(channel_id)
        return ch.name if ch else f"removed channel {channel_id}"

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
                "queued": self.outbox.count(w.channel.id) if self._started and not
                self._closed else 0,
                "paused": w.paused_until > self.clock(), "in_flight": len(w.in_flight)}
        return out
