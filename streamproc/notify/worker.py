"""One channel's worker: its outbox rows through ``rate limit -> deliver -> retry``.

    loop:  paused? no free send slot? no token?  ─► wait (or until woken)
           due rows (outbox) ─► rate limit ─► units ─┬─► task: deliver ─► retry ─► delivered
                                                     ├─► task: ...        (at most
                                                     └─► task: ...         max_in_flight)

A unit's rows stay "in flight" (not read again) from the moment it is planned until its
fate is written: a failure's retry time, or, for a delivery, the commit that ``delivered``
batches (until then a re-read would send it twice).

The worker owns what must outlive a reload (its pacing, its sender, the rows in flight) and
uses the stages it is given (``use``); it knows nothing else of the notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..alerts import Alert
from .channels import Channel
from .deliver import ChannelSender, DeliverStage
from .outbox import Outbox, OutboxRow
from .ratelimit import Pacing, RateLimitStage, TokenBucket
from .retry import RetryStage
from .stage import Batch, Sent, Stage, Unit
from .store import Tx

log = logging.getLogger("streamproc.notify")


async def wait_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for ``event`` at most ``timeout`` seconds.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for`` can swallow a
    cancellation that races with the event being set, and close() then hangs.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(None if timeout is None else max(0.0, timeout)):
            await event.wait()


@dataclass(slots=True)
class ChannelStages:
    """The delivering end of the pipeline, for one channel."""

    rate_limit: RateLimitStage
    deliver: DeliverStage
    retry: RetryStage

    def __iter__(self) -> Iterator[Stage[Any, Any]]:
        return iter((self.rate_limit, self.deliver, self.retry))


# (worker, rows, their alerts per row): hand a delivered unit to the notification log
Delivered = Callable[["ChannelWorker", list[OutboxRow], list[list[Alert]]], None]


class ChannelWorker:
    """Rate limit -> deliver -> retry (-> fallback -> dead letters), for one channel."""

    def __init__(
        self,
        channel: Channel,
        *,
        outbox: Outbox,
        db: sqlite3.Connection,
        clock: Callable[[], float],
        counters: Counter[str],
        delivered: Delivered,
    ) -> None:
        self.channel = channel
        self.outbox = outbox
        self.db = db
        self.clock = clock
        self.counters = counters  # the notifier's totals: stages' counts are added here
        self.delivered = delivered
        self.pacing = Pacing(TokenBucket(channel.rate, channel.burst))
        self.sender = ChannelSender(channel)
        self.in_flight: set[int] = set()
        self.wake_event = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.is_fallback = False
        self.stages: ChannelStages | None = None

    @property
    def bucket(self) -> TokenBucket:
        return self.pacing.bucket

    @property
    def paused_until(self) -> float:
        return self.pacing.paused_until

    @property
    def failures(self) -> int:
        return self.pacing.failures

    def use(self, stages: ChannelStages) -> None:
        """Deliver through these stages from now on (a reload hands in new ones)."""
        self.stages = stages

    def wake(self) -> None:
        self.wake_event.set()

    async def _sleep(self, seconds: float | None) -> None:
        await wait_event(self.wake_event, seconds)

    async def _run(self, stage: Stage[Any, Any], batch: Batch[Any]) -> Batch[Any]:
        try:
            return await stage.run(batch)
        finally:
            self.counters.update(batch.counts)
            batch.counts.clear()

    async def run(self) -> None:
        ch, pacing = self.channel, self.pacing
        while True:
            assert self.stages is not None, "ChannelWorker.use() before run()"
            self.wake_event.clear()
            now = self.clock()
            if pacing.paused_until > now:
                await self._sleep(min(pacing.paused_until - now, 5.0))
                continue
            free = self.sender.free
            if free <= 0:
                await self._sleep(1.0)
                continue
            if pacing.bucket.available(now) < 1:
                await self._sleep(pacing.bucket.wait_time(now))
                continue
            rate_limit = self.stages.rate_limit
            rows = self.outbox.due(
                ch.id, now, exclude=self.in_flight, limit=rate_limit.fetch_limit(now, free)
            )
            if not rows:
                nxt = self.outbox.next_due(ch.id, exclude=self.in_flight)
                await self._sleep(None if nxt is None else min(max(0.005, nxt - now), 5.0))
                continue
            units = await self._run(rate_limit, Batch(now, rows))
            for unit in units.items:
                self.in_flight.update(r.id for r in unit.rows)
                task = asyncio.create_task(self._deliver(Batch(now, [unit])))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            await asyncio.sleep(0)

    async def _deliver(self, batch: Batch[Unit]) -> None:
        rows = [r for unit in batch.items for r in unit.rows]
        committing = False
        try:
            assert self.stages is not None
            sent: Batch[Sent] = await self._run(self.stages.deliver, batch)
            # the retry stage in use when the answer came (a reload may have swapped it)
            delivered: Batch[Sent] = await self._run(self.stages.retry, sent)
            for d in delivered.items:
                self.delivered(self, d.rows, d.groups)
            committing = bool(delivered.items)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one message kill the channel; it stays in the outbox
            log.exception("notify: unexpected error delivering to %s", self.channel.name)
            with Tx(self.db):
                for r in rows:
                    self.outbox.failed(r, error="internal error", next_at=self.clock() + 5.0)
        finally:
            if not committing:  # else the rows stay "in flight" until their commit
                self.in_flight.difference_update(r.id for r in rows)
                self.wake()
