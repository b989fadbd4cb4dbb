"""A topic read as a table by every worker, as Kafka Streams reads a global table.

Silences and the shared notification log must reach every worker of a deployment, on every
machine, whichever partitions the consumer groups gave it. So each worker reads the whole
topic itself: a consumer with no group, assigned every partition, from the beginning (or
from where a local copy stopped), and then keeps following it.

    topic      [r0 r1 r2 ... rN]  <- any worker, the CLI
                  \\      start()     follow()
    worker k   apply(r0..rN) ----> caught up ----> apply(new records) ...

Records are applied in offset order within a partition, and a key always lands in one
partition, so the latest record of a key wins. The topic may hold every version of a key
(Tansu does not compact): ``apply`` must be correct on the full history.

"Caught up" does not trust end offsets (Tansu's ListOffsets answers the last batch's base
offset + 1 after a batched produce): a read that started after the moment of asking and came
back empty, with a timeout longer than two fetch waits, means everything acknowledged before
that moment has been applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from .config import KafkaConfig

log = logging.getLogger(__name__)

Apply = Callable[[list[Any]], None]  # ConsumerRecords of one read, in offset order per partition

_POLL_MS = 500  # > 2 * fetch_max_wait_ms + a round trip: an empty poll means "nothing more"


class TopicTable:
    def __init__(self, cfg: KafkaConfig, topic: str, apply: Apply, *, name: str,
                 start_at: Callable[[], dict[int, int]] | None = None) -> None:
        self.cfg = cfg
        self.topic = topic
        self.apply = apply
        self.name = name
        self.start_at = start_at  # partition -> next offset to read (None: the beginning)
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._empty_poll_started = 0.0  # monotonic start of the last poll that found nothing
        self.records = 0

    async def start(self, timeout: float = 60.0) -> None:
        """Assign every partition, read up to now, then keep following in the background."""
        consumer = AIOKafkaConsumer(**self.cfg.client_kwargs(), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=100,
                                    client_id=f"{self.cfg.client_id}-{self.name}")
        await consumer.start()
        self.consumer = consumer
        try:
            await self._assign_and_read(timeout)
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._follow(), name=f"table-{self.name}")

    async def _assign_and_read(self, timeout: float) -> None:
        consumer = self.consumer
        assert consumer is not None
        deadline = time.monotonic() + timeout
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                await asyncio.sleep(0.2)
        if not partitions:
            raise TimeoutError(f"topic {self.topic} has no partitions")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        known = self.start_at() if self.start_at is not None else {}
        fresh = [tp for tp in tps if tp.partition not in known]
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        for tp in tps:
            if tp.partition in known:
                consumer.seek(tp, known[tp.partition])
        await self.read_to_end(timeout=max(1.0, deadline - time.monotonic()))

    async def read_to_end(self, timeout: float = 60.0) -> None:
        """Apply every record there is now (used before following, and by one-shot readers)."""
        consumer = self.consumer
        assert consumer is not None
        deadline = time.monotonic() + timeout
        tps = sorted(consumer.assignment())
        # a lower bound of the end (exact on Kafka; on Tansu at most the last batch short of
        # it): an empty poll before reaching it only means the first fetch was not back yet
        floor = await consumer.end_offsets(tps)
        while time.monotonic() < deadline:
            if not await self._poll():
                positions = [await consumer.position(tp) for tp in tps]
                if all(p >= floor[tp] for p, tp in zip(positions, tps, strict=True)):
                    return
        log.warning("%s: still reading %s after %.0fs; going on with what was read",
                    self.name, self.topic, timeout)

    async def _poll(self) -> bool:
        assert self.consumer is not None
        started = time.monotonic()
        data = await self.consumer.getmany(timeout_ms=_POLL_MS)
        records = [r for batch in data.values() for r in batch]
        if not records:
            self._empty_poll_started = started
            return False
        self.records += len(records)
        self.apply(records)
        return True

    async def _follow(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._poll()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broker hiccup; keep following
                log.warning("%s: reading %s failed (%s); retrying in %.1fs", self.name,
                            self.topic, type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def caught_up(self, timeout: float = 10.0) -> bool:
        """Wait until every record acknowledged before this call has been applied."""
        asked = time.monotonic()
        while time.monotonic() - asked < timeout:
            if self._empty_poll_started > asked:
                return True
            await asyncio.sleep(0.05)
        log.warning("%s: not caught up with %s after %.0fs", self.name, self.topic, timeout)
        return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None
        if self.consumer is not None:
            try:
                await self.consumer.stop()
            except Exception:  # noqa: BLE001
                pass
            self.consumer = None
