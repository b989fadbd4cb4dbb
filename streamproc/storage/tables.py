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

"Caught up" does not trust end offsets (ListOffsets; Tansu's answer the last batch's base
offset + 1 after a batched produce). It uses the high watermark that comes back with every
fetch response, which is exact on Kafka and on Tansu: once a fetch *requested after* the
moment of asking has answered for every partition, and the records applied reach that
partition's high watermark, everything acknowledged before that moment has been applied.

    asked          request sent            response: hw = 7
      |-- > fetch wait --|-------------------|   applied up to 6 (next 7 >= hw): caught up

An empty table is caught up by its first fetch (about one fetch wait, 100 ms), not by a
poll timing out. (Before this, a read that came back empty after a poll of 500 ms was the
sign; it is kept as the fallback.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..config import KafkaConfig
from ..ops.backoff import Backoff

log = logging.getLogger(__name__)

Apply = Callable[[list[Any]], None]  # ConsumerRecords of one read, in offset order per partition

_FETCH_WAIT_MS = 100  # the most a broker holds a fetch that finds nothing
_POLL_MS = 500  # > 2 * fetch wait + a round trip: an empty poll means "nothing more"
_CHECK_MS = 20  # how often a catch-up looks at the fetch state


class TopicTable:
    def __init__(
        self,
        cfg: KafkaConfig,
        topic: str,
        apply: Apply,
        *,
        name: str,
        start_at: Callable[[], dict[int, int]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.topic = topic
        self.apply = apply
        self.name = name
        self.start_at = start_at  # partition -> next offset to read (None: the beginning)
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._empty_poll_started = 0.0  # monotonic start of the last poll that found nothing
        self._next: dict[TopicPartition, int] = {}  # next offset to apply, per partition
        self.records = 0
        # how the last catch-up ended: "high watermark", "empty poll" or "timeout"
        self.caught_up_by: str | None = None

    async def start(self, timeout: float = 60.0) -> None:
        """Assign every partition, read up to now, then keep following in the background."""
        consumer = AIOKafkaConsumer(
            **self.cfg.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=_FETCH_WAIT_MS,
            client_id=f"{self.cfg.client_id}-{self.name}",
        )
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
        for tp in tps:
            self._next[tp] = await consumer.position(tp)
        await self.read_to_end(timeout=max(1.0, deadline - time.monotonic()))

    async def read_to_end(self, timeout: float = 60.0) -> None:
        """Apply every record there is now (right after assigning, before following)."""
        assert self.consumer is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # the consumer was just assigned: every fetch it made was requested after that
            if self._at_high_watermark(0.0):
                self.caught_up_by = "high watermark"
                return
            await self._poll(_CHECK_MS)
        self.caught_up_by = "timeout"
        log.warning(
            "%s: still reading %s after %.0fs; going on with what was read",
            self.name,
            self.topic,
            timeout,
        )

    def _at_high_watermark(self, asked_ms: float) -> bool:
        """Every partition answered a fetch requested after ``asked_ms`` (wall clock, ms),
        and what was applied reaches the high watermark that fetch reported."""
        consumer = self.consumer
        if consumer is None or not self._next:
            return False
        for tp, nxt in self._next.items():
            highwater = consumer.highwater(tp)
            answered = consumer.last_poll_timestamp(tp)
            if highwater is None or answered is None or answered <= asked_ms or nxt < highwater:
                return False
        return True

    async def _poll(self, timeout_ms: int = _POLL_MS) -> bool:
        assert self.consumer is not None
        started = time.monotonic()
        data = await self.consumer.getmany(timeout_ms=timeout_ms)
        records = [r for batch in data.values() for r in batch]
        if not records:
            if timeout_ms >= _POLL_MS:
                self._empty_poll_started = started
            return False
        self.records += len(records)
        self.apply(records)
        for tp, batch in data.items():
            if batch:
                self._next[tp] = batch[-1].offset + 1
        return True

    async def _follow(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._poll()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broker hiccup; keep following
                log.warning(
                    "%s: reading %s failed (%s); retrying in %.1fs",
                    self.name,
                    self.topic,
                    type(exc).__name__,
                    backoff.delay,
                )
                await backoff.wait()

    async def caught_up(self, timeout: float = 10.0) -> bool:
        """Wait until every record acknowledged before this call has been applied."""
        asked = time.monotonic()
        # a response received more than a fetch wait (plus a margin) from now answers a
        # request sent after now
        asked_ms = time.time() * 1000 + _FETCH_WAIT_MS + 20
        while time.monotonic() - asked < timeout:
            if self._at_high_watermark(asked_ms):
                self.caught_up_by = "high watermark"
                return True
            if self._empty_poll_started > asked:
                self.caught_up_by = "empty poll"
                return True
            await asyncio.sleep(_CHECK_MS / 1000)
        self.caught_up_by = "timeout"
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
