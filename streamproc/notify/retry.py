"""Retry: exponential backoff with jitter, bounded by attempts and by age. ``retry``.

    attempt   1    2      3          4                    5 ...
    delay        1s  ~2s     ~4s          ~8s                  ... capped at max_delay
                (each delay drawn from [d/2, d]: "equal jitter", so many channels failing
                 together do not retry in lock step, yet the delay still grows)

A message whose attempts reach ``max_attempts``, or whose age reaches ``max_age``, stops
retrying on its channel: it moves to the fallback channel, and from there to the dead letters.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .settings import RetrySettings
from .stage import Batch, Sent
from .store import Tx

if TYPE_CHECKING:
    from .channels import Channel
    from .dedup import Dedup
    from .deliver import Hooks
    from .outbox import Outbox, OutboxRow
    from .ratelimit import Pacing
    from .sharedlog import SharedNotificationLog
    from .undelivered import DeadLetters

log = logging.getLogger("streamproc.notify")


@dataclass(slots=True)
class RetryPolicy:
    settings: RetrySettings
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        s = self.settings
        base = min(s.max_delay, s.initial * s.multiplier ** max(0, failures - 1))
        return self.rng.uniform(base / 2, base)

    def exhausted(self, attempts: int, created: float, now: float) -> bool:
        s = self.settings
        return attempts >= s.max_attempts or now - created >= s.max_age


class GiveUp:
    """Rows that exhausted their channel: to the fallback once, then to the dead letters."""

    def __init__(
        self,
        db: sqlite3.Connection,
        outbox: Outbox,
        dedup: Dedup,
        dead: DeadLetters,
        *,
        fallbacks: list[Channel],
        channels: dict[str, Channel],
        counters: Counter[str],
        hooks: Hooks,
        clock: Callable[[], float],
        wake: Callable[[str], None],
        shared_log: SharedNotificationLog | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.dedup = dedup
        self.dead = dead
        self.fallbacks = fallbacks
        self.channels = channels
        self.counters = counters
        self.hooks = hooks
        self.clock = clock
        self.wake = wake
        self.shared_log = shared_log

    def name(self, channel_id: str) -> str:
        ch = self.channels.get(channel_id)
        return ch.name if ch else f"removed channel {channel_id}"

    def count_dead(self, reason: str, n: int) -> None:
        self.counters["dead_lettered"] += n
        if self.hooks.on_dead_letter is not None:
            self.hooks.on_dead_letter(reason, n)

    async def __call__(
        self,
        rows: list[OutboxRow],
        error: str,
        *,
        attempts_extra: int,
        reason: str = "delivery_failed",
    ) -> None:
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
                    log.warning(
                        "notify: %s gave up on a message after %d attempt(s) (%s); "
                        "sending it to the fallback %s",
                        self.name(r.channel),
                        r.attempts + attempts_extra,
                        error,
                        fb.name,
                    )
                else:
                    dead.append(r)
        for cid in moved:
            self.wake(cid)
        if not dead:
            return
        records: list[dict[str, Any]] = [
            {
                "failed_at": now,
                "reason": reason,
                "channel": self.name(r.home),
                "last_channel": self.name(r.channel),
                "attempts": r.attempts + attempts_extra,
                "error": error,
                "alerts": [a.to_dict() for a in r.alerts],
            }
            for r in dead
        ]
        # Write the dead letters before forgetting the rows: a crash in between duplicates a
        # dead letter, never loses one.
        await self.dead.write(records)
        with Tx(self.db):
            for r in dead:
                self.dedup.mark(r.home, [(a.fingerprint, a.status) for a in r.alerts], "dead", now)
            self.outbox.remove(r.id for r in dead)
        if self.shared_log is not None:
            self.shared_log.publish(
                [(r.home, a.fingerprint, a.status, "dead") for r in dead for a in r.alerts], now
            )
        self.count_dead(reason, sum(len(r["alerts"]) for r in records))
        log.error(
            "notify: %d message(s) for %s dead-lettered (%s)",
            len(dead),
            self.name(dead[0].home),
            error,
        )


class RetryStage:
    """``retry``: act on each send's answer. Delivered units go on (to the notification
    log); a 429 pauses the channel (its Retry-After, else the backoff) and empties its
    bucket; any other failure backs off. Rows out of attempts or age go to ``GiveUp``."""

    name = "retry"

    def __init__(
        self,
        channel: Channel,
        pacing: Pacing,
        policy: RetryPolicy,
        *,
        outbox: Outbox,
        db: sqlite3.Connection,
        give_up: GiveUp,
        channel_counts: Counter[str],
        clock: Callable[[], float],
    ) -> None:
        self.channel = channel
        self.pacing = pacing
        self.policy = policy
        self.outbox = outbox
        self.db = db
        self.give_up = give_up
        self.channel_counts = channel_counts
        self.clock = clock

    async def run(self, batch: Batch[Sent]) -> Batch[Sent]:
        delivered: list[Sent] = []
        for sent in batch.items:
            if sent.result.ok:
                self.pacing.failures = 0
                delivered.append(sent)
            else:
                await self._failed(sent, batch)
        return batch.next(delivered)

    async def _failed(self, sent: Sent, batch: Batch[Sent]) -> None:
        ch, pacing, result = self.channel, self.pacing, sent.result
        now = self.clock()
        batch.counts["send_failures"] += 1
        self.channel_counts["failed"] += 1
        exhausted: list[OutboxRow] = []
        if result.status == 429:
            batch.counts["rate_limited"] += 1
            pause = (
                result.retry_after
                if result.retry_after is not None
                else self.policy.delay(pacing.failures + 1)
            )
            pacing.paused_until = max(pacing.paused_until, now + pause)
            pacing.bucket.drain(now)
            log.warning("notify: %s answered 429; pausing it for %.1fs", ch.name, pause)
            with Tx(self.db):
                for r in sent.rows:
                    self.outbox.failed(
                        r, error="HTTP 429 (rate limited)", next_at=pacing.paused_until, count=False
                    )
                    if now - r.created >= self.policy.settings.max_age:
                        exhausted.append(r)
            await self.give_up(exhausted, "HTTP 429 (rate limited)", attempts_extra=0)
            return
        pacing.failures += 1
        delay = self.policy.delay(pacing.failures)
        pacing.paused_until = max(pacing.paused_until, now + delay)
        log.warning(
            "notify: delivery to %s failed (%s); retrying in %.1fs", ch.name, result.error, delay
        )
        with Tx(self.db):
            for r in sent.rows:
                self.outbox.failed(r, error=result.error, next_at=now + delay)
                if self.policy.exhausted(r.attempts + 1, r.created, now):
                    exhausted.append(r)
        await self.give_up(exhausted, result.error, attempts_extra=1)
