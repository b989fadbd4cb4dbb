"""Kafka source: a consumer-group member that reads existing topics in batches.

Commit protocol (at-least-once). For each batch, in this order:

1. ``getmany`` returns records; the source remembers, per partition, the offset after the last
   record (nothing is committed yet, auto-commit is off).
2. The runtime decodes and judges the batch; detector state changes in memory.
3. The runtime appends the batch's alerts to the alert log and its dead letters to the
   ``<topic>.dlq`` topics, and waits for the broker's acknowledgement of every one.
4. ``commit(batch)`` commits the remembered offsets for the partitions still assigned.

What a crash at each step leaves behind:

- during 1-2: nothing was written; the group re-delivers the batch from the last committed
  offset to whoever owns the partitions next.
- during 3: some alerts or dead letters may be written, the offsets are not: the batch is read
  again, and its alerts are appended again with the same fingerprints. Delivery deduplicates
  by fingerprint and status against its notification log, so no channel sees one twice.
- between 3 and 4 (or 4 fails): as above: re-read, re-appended, deduplicated downstream.
- after 4: the batch is done.

Rebalances: ``on_partitions_revoked`` waits for the batch in progress to finish steps 2-4
before the partitions are handed over, so a new owner starts exactly where this one stopped.
The lock that makes this so is held from the end of ``getmany`` until after ``commit``.

Exclusive (the embedded broker, private to this process): nobody else can join the group, so
the source takes every partition of its topics itself instead of joining, and runs the same
assignment hooks (restore) before its first fetch is judged. It still commits to its group,
so a restart resumes where it stopped. A group join waits for other members first (Tansu
holds a JoinGroup for half the session timeout, 5 s by default; Kafka holds a new group's
first join for ``group.initial.rebalance.delay.ms``, 3 s): a member known to be alone need
not wait for anyone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaConnectionError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

from ..config import KafkaConfig
from ..ops.backoff import Backoff
from .base import Batch
from .kafka_records import install, light_records

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for the batch in progress (if any) to be judged and made durable, then let the
        # hooks checkpoint and commit the revoked partitions before anyone else gets them.
        async with self.source.batch_lock:
            if revoked:
                log.info("partitions revoked: %s", _fmt_tps(revoked))
            for hook in self.source.revoke_hooks:
                await hook(list(revoked))
            for tp in revoked:
                self.source._next.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # aiokafka may already fetch for the new partitions while this runs: holding the batch
        # lock keeps their records from being judged before their state is restored, and the
        # seek floor (see ``seek``) drops records fetched from before the restored position.
        async with self.source.batch_lock:
            if assigned:
                log.info("partitions assigned: %s", _fmt_tps(assigned))
            for hook in self.source.assign_hooks:
                await hook(list(assigned))


def _fmt_tps(tps: Any) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))


class KafkaSource:
    """Reads ``topics`` (names) or ``pattern`` (a regex) as member of ``group_id``."""

    def __init__(
        self,
        cfg: KafkaConfig,
        *,
        topics: list[str] | None = None,
        pattern: str | None = None,
        group_id: str | None = None,
        max_records: int | None = None,
        name: str = "kafka",
        start_retries: int | None = None,
        exclusive: bool = False,
    ) -> None:
        if not topics and not pattern:
            raise ValueError("KafkaSource needs topics or a pattern")
        self.cfg = cfg
        self.name = name
        self.topics = list(topics or [])
        self.pattern = pattern
        self.group_id = group_id or cfg.group_id
        self.max_records = max_records or cfg.max_poll_records
        self.start_retries = start_retries
        # the only member there can be (see the module doc); with a pattern it still joins,
        # so that topics created later are found
        self.exclusive = exclusive and not pattern
        self.consumer: AIOKafkaConsumer | None = None
        self.batch_lock = asyncio.Lock()
        self.revoke_hooks: list[Any] = []
        self.assign_hooks: list[Any] = []
        self.connected = False
        # per partition, the next offset to judge: guards against re-fetched records
        self._next: dict[TopicPartition, int] = {}
        # the partitions of the batch handed out and not done yet (see ``behind``)
        self._in_progress: set[TopicPartition] = set()

    async def start(self) -> None:
        backoff = Backoff()
        install()  # records as KafkaRecords (see kafka_records.py)
        while True:
            consumer = AIOKafkaConsumer(
                **self.cfg.client_kwargs(),
                group_id=self.group_id,
                client_id=self.cfg.client_id,
                enable_auto_commit=False,
                auto_offset_reset=self.cfg.auto_offset_reset,
                max_poll_records=self.max_records,
                session_timeout_ms=self.cfg.session_timeout_ms,
                heartbeat_interval_ms=max(1000, self.cfg.session_timeout_ms // 3),
                fetch_max_wait_ms=100,
                max_partition_fetch_bytes=4 * 1024 * 1024,
                value_deserializer=light_records,
            )
            try:
                await consumer.start()
            except (KafkaConnectionError, KafkaError, OSError) as exc:
                await _quiet_stop(consumer)
                if self.start_retries is not None and backoff.attempt >= self.start_retries:
                    from ..errors import SourceError

                    raise SourceError(
                        f"cannot reach Kafka at {self.cfg.bootstrap_servers}: {type(exc).__name__}"
                    ) from None
                log.warning(
                    "Kafka at %s is not reachable (%s); retrying in %.1fs (attempt %d)",
                    self.cfg.bootstrap_servers,
                    type(exc).__name__,
                    backoff.delay,
                    backoff.attempt + 1,
                )
                await backoff.wait()
                continue
            break
        listener = _Rebalance(self)
        self.consumer = consumer
        if self.exclusive:
            await self._assign_all(listener)
        elif self.pattern:
            consumer.subscribe(pattern=self.pattern, listener=listener)
        else:
            consumer.subscribe(topics=self.topics, listener=listener)
        self.connected = True
        what = f"pattern {self.pattern!r}" if self.pattern else ", ".join(self.topics)
        log.info(
            "consuming %s from %s as %s %r",
            what,
            self.cfg.bootstrap_servers,
            "the only member of group" if self.exclusive else "group",
            self.group_id,
        )

    async def _assign_all(self, listener: _Rebalance) -> None:
        """Take every partition of the topics, then run the assignment hooks, as a group's
        assignment would (committed offsets are the group's)."""
        assert self.consumer is not None
        await listener.on_partitions_assigned(
            await assign_every_partition(self.consumer, self.topics)
        )

    async def next_batch(self, timeout: float = 1.0) -> Batch | None:
        assert self.consumer is not None, "start() first"
        data = await self.consumer.getmany(
            timeout_ms=int(timeout * 1000), max_records=self.max_records
        )
        if not data:
            return None
        # Held until commit(): a rebalance waits for this batch to be done.
        await self.batch_lock.acquire()
        records: list[Any] = []  # KafkaRecords (or ConsumerRecords), read as RawRecords
        runs: list[Any] = []
        offsets: dict[TopicPartition, int] = {}
        expected = self._next
        for tp, messages in data.items():
            if not messages:
                continue
            nxt = expected.get(tp)
            if nxt is not None and messages[0].offset < nxt:
                # Fetched before a seek (restore) or re-fetched after one: never judge an
                # offset twice, nor one that the restored state already holds.
                messages = [m for m in messages if m.offset >= nxt]
                if not messages:
                    continue
            expected[tp] = offsets[tp] = messages[-1].offset + 1
            # KafkaRecords carry what a RawRecord does (value, topic, partition, offset,
            # key): copying them would cost a tenth of the consume loop
            records.extend(messages)
            runs.append(messages)
        self._in_progress = set(offsets)
        return Batch(records, offsets, time.time(), runs=runs)

    async def commit(self, batch: Batch) -> None:
        """Commit the batch's offsets (``done`` releases it)."""
        await self.commit_offsets(batch.ack)

    async def commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        mine = {tp: off for tp, off in offsets.items() if tp in assigned}
        if mine:
            try:
                await self.consumer.commit(mine)
            except (
                CommitFailedError,
                RebalanceInProgressError,
                IllegalGenerationError,
                UnknownMemberIdError,
            ) as exc:
                # A rebalance is under way: these partitions are being revoked, and the revoke
                # hook checkpoints and commits them; the next owner resumes from the last
                # checkpoint either way.
                log.warning("commit skipped during a rebalance (%s)", type(exc).__name__)

    def done(self, batch: Batch) -> None:
        """The batch is judged and durable; a rebalance may proceed."""
        self._in_progress = set()
        if self.batch_lock.locked():
            self.batch_lock.release()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Resume ``tp`` at ``offset``; records below it that were already fetched are
        dropped (they are part of the restored state)."""
        assert self.consumer is not None
        self.consumer.seek(tp, offset)
        self._next[tp] = offset

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    def pause_partitions(self, tps: Iterable[TopicPartition]) -> None:
        if self.consumer is not None:
            self.consumer.pause(*tps)

    def resume_partitions(self, tps: Iterable[TopicPartition]) -> None:
        if self.consumer is not None:
            assigned = self.consumer.assignment()
            self.consumer.resume(*[tp for tp in tps if tp in assigned])

    def pause(self) -> None:
        """Stop fetching (memory guard); records stay in Kafka until ``resume``."""
        if self.consumer is not None:
            self.consumer.pause(*self.consumer.assignment())

    def resume(self) -> None:
        if self.consumer is not None:
            self.consumer.resume(*self.consumer.paused())

    def behind(self, topic: str, partition: int) -> bool:
        """Whether a partition assigned here may still have records for this worker that are
        not judged yet: in the batch in progress (handed out and not ``done``: their
        repartitioned copies are produced as the batch is made durable), fetched and waiting
        their turn, not fetched yet, or not known (no fetch response for it yet). A
        repartitioned task's merge waits for such a source however long it has been quiet (up
        to its limit): its records are on their way. (At the start
        of a backlog the loop can judge other partitions' batches for longer than the merge
        waits for a quiet source before this one's first batch is handed out; letting the
        others' hours through first would cut every window its records belong to.) False
        when not assigned here."""
        consumer = self.consumer
        if consumer is None:
            return False
        tp = TopicPartition(topic, partition)
        if tp not in consumer.assignment():
            return False
        if tp in self._in_progress:
            return True
        highwater = consumer.highwater(tp)
        if highwater is None:
            return True
        nxt = self._next.get(tp)
        if nxt is not None and nxt >= highwater:
            return False
        # (as caught_up: offsets no record is returned for are behind the position)
        position = self._position(tp)
        return position is None or position < highwater

    def caught_up(self, topic: str, partition: int) -> bool:
        """Whether an assigned partition has nothing left to read: every offset below the
        high watermark of its last fetch response is judged (what was produced since is new
        traffic). False when unknown (not assigned here, nothing fetched yet)."""
        known = self._progress(topic, partition)
        if known is None:
            return False
        nxt, highwater = known
        if nxt >= highwater:
            return True
        # offsets no record is returned for (a transaction's commit marker, records that
        # compaction removed): the consumer's position has moved past them
        position = self._position(TopicPartition(topic, partition))
        return position is not None and position >= highwater

    def _progress(self, topic: str, partition: int) -> tuple[int, int] | None:
        """(next offset to judge, high watermark of the last fetch) of an assigned partition;
        None when unknown (not assigned here, nothing fetched yet)."""
        consumer = self.consumer
        if consumer is None:
            return None
        tp = TopicPartition(topic, partition)
        nxt = self._next.get(tp)
        if nxt is None or tp not in consumer.assignment():
            return None
        highwater = consumer.highwater(tp)
        return None if highwater is None else (nxt, highwater)

    def _position(self, tp: TopicPartition) -> int | None:
        """The consumer's position without awaiting (``consumer.position`` is a coroutine)."""
        try:
            state = self.consumer._subscription.subscription.assignment.state_value(tp)  # type: ignore[union-attr]
            return state.position if state is not None else None
        except Exception:  # noqa: BLE001 - advisory: unknown means not caught up
            return None

    def partitions_for(self, topic: str) -> int:
        assert self.consumer is not None
        return len(self.consumer.partitions_for_topic(topic) or ()) or 1

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the high watermark, per assigned partition (best effort)."""
        if self.consumer is None:
            return {}
        out = {}
        for tp in self.consumer.assignment():
            try:
                high = self.consumer.highwater(tp)
                pos = self._position(tp)
                if high is not None and pos is not None:
                    out[(tp.topic, tp.partition)] = max(0, high - pos)
            except Exception:  # noqa: BLE001 - lag is advisory
                continue
        return out

    async def stop(self) -> None:
        consumer, self.consumer = self.consumer, None
        self.connected = False
        if consumer is not None:
            await _quiet_stop(consumer)


async def assign_every_partition(
    consumer: AIOKafkaConsumer, topics: list[str], timeout: float = 15.0
) -> list[TopicPartition]:
    """Assign ``consumer`` every partition of ``topics`` (the only member of its group: see
    the module doc); returns them."""
    deadline = time.monotonic() + timeout
    while missing := [t for t in topics if not consumer.partitions_for_topic(t)]:
        if time.monotonic() > deadline:
            from ..errors import SourceError

            raise SourceError(
                f"topics {', '.join(missing)} have no partitions after {timeout:.0f}s"
            )
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.05)
    tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))]
    consumer.assign(tps)
    return tps


async def _quiet_stop(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    except Exception as exc:  # noqa: BLE001 - stopping must not raise
        log.debug("consumer stop: %s", exc)
