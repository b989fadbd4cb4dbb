"""Dead-letter destinations: Kafka ``<topic>.dlq`` topics, or a JSONL file.

Every dead letter carries the original bytes (base64), where it came from and why. The sink
must be durable before the source offsets of its batch are committed: a record that could not
be processed is never silently dropped. Repeated reasons are logged at a bounded rate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from .decode import DeadLetter

log = logging.getLogger(__name__)


class BoundedLog:
    """At most one log line per (topic, reason) every ``interval`` seconds, with a count of
    what was suppressed in between."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def record(self, dl: DeadLetter) -> None:
        key = (dl.topic, dl.reason)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        extra = self._suppressed.pop(key, 0)
        more = f" (+{extra} more since the last report)" if extra else ""
        log.warning("dead letter from %s[%d]@%d: %s: %s%s", dl.topic, dl.partition, dl.offset,
                    dl.reason, dl.detail, more)


class KafkaDeadLetters:
    def __init__(self, producer: AIOKafkaProducer, suffix: str = ".dlq") -> None:
        self.producer = producer
        self.suffix = suffix
        self.bounded = BoundedLog()
        self.count = 0

    async def write(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        futures = []
        for dl in dead:
            self.bounded.record(dl)
            topic = (dl.topic or "streamproc") + self.suffix
            futures.append(await self.producer.send(
                topic, orjson.dumps(dl.to_dict()), key=dl.key,
                headers=[("reason", dl.reason.encode())]))
        await asyncio.gather(*futures)
        self.count += len(dead)


class FileDeadLetters:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.bounded = BoundedLog()
        self.count = 0

    async def write(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        with open(self.path, "ab") as f:
            for dl in dead:
                self.bounded.record(dl)
                f.write(orjson.dumps(dl.to_dict()) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.count += len(dead)
