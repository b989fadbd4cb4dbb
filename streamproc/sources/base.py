"""The Source interface shared by Kafka, MQTT and file sources."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..decode import RawRecord

# Where `streamproc agent` publishes each host's status and Last Will (agent.py): one topic a
# host under this prefix; an MQTT source reads them for the host-metrics binding.
STATUS_PREFIX = "streamproc/host-status/"


@dataclass(slots=True)
class Batch:
    records: list[RawRecord]
    # What to acknowledge once the batch is durably handled: Kafka (topic, partition) -> next
    # offset, or MQTT message ids. Opaque to everything but the source that made it.
    ack: Any = None
    received_at: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    # the records again as runs of one (topic, partition) each, in order, where the source
    # has them so (a Kafka fetch): the judge then sorts them into tasks a run at a time
    runs: list[list[RawRecord]] | None = None


class Source(Protocol):
    name: str

    async def start(self) -> None: ...

    async def next_batch(self, timeout: float) -> Batch | None:
        """The next batch, or None if nothing arrived within ``timeout`` seconds."""
        ...

    async def commit(self, batch: Batch) -> None:
        """Acknowledge a batch whose effects (alerts, dead letters, state) are durable."""
        ...

    def done(self, batch: Batch) -> None:
        """The runtime is finished with the batch, committed or not (always called)."""
        ...

    async def stop(self) -> None: ...


PartitionHook = Callable[[list[Any]], Awaitable[None]]


class PartitionedSource(Source, Protocol):
    """A source read through a consumer group (Kafka): what the runtime's Alignment and
    KafkaProgress use of it. Partitions are the consumer's ``TopicPartition`` objects."""

    batch_lock: asyncio.Lock  # held from next_batch() until the batch is done
    revoke_hooks: list[PartitionHook]  # awaited, under batch_lock, before partitions go
    assign_hooks: list[PartitionHook]  # awaited, under batch_lock, when partitions come

    def assignment(self) -> set[Any]:
        """The partitions assigned to this member now (empty before start)."""
        ...

    def pause_partitions(self, tps: Iterable[Any]) -> None: ...

    def resume_partitions(self, tps: Iterable[Any]) -> None: ...

    def seek(self, tp: Any, offset: int) -> None: ...

    def partitions_for(self, topic: str) -> int: ...

    async def commit_offsets(self, offsets: dict[Any, int]) -> None: ...
