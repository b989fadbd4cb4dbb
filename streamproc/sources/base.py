"""The Source interface shared by Kafka, MQTT and file sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..decode import RawRecord


@dataclass(slots=True)
class Batch:
    records: list[RawRecord]
    # What to acknowledge once the batch is durably handled: Kafka (topic, partition) -> next
    # offset, or MQTT message ids. Opaque to everything but the source that made it.
    ack: Any = None
    received_at: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


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
