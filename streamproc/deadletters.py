"""Dead-letter destinations: Kafka ``<topic>.dlq`` topics, or a JSONL file.

Every dead letter carries the original bytes (base64), where it came from and why. The sink
must be durable before the source offsets of its batch are committed: a record that could not
be processed is never silently dropped. Repeated reasons are logged at a bounded rate.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from .decode import DeadLetter
from .files import open_private, private_dir
from .logs import RateLimitedLog

log = logging.getLogger(__name__)


def _bounded_log() -> RateLimitedLog:
    """At most one line per (topic, reason) every 10 s, with a count of the rest."""
    return RateLimitedLog(log, per_key_interval=10.0)


def _report(limited: RateLimitedLog, dl: DeadLetter) -> None:
    limited.warning((dl.topic, dl.reason), "dead letter from %s[%d]@%d: %s: %s", dl.topic,
                    dl.partition, dl.offset, dl.reason, dl.detail)


class KafkaDeadLetters:
    def __init__(self, producer: AIOKafkaProducer, suffix: str = ".dlq") -> None:
        self.producer = producer
        self.suffix = suffix
        self.bounded = _bounded_log()
        self.count = 0

    async def write(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        futures = []
        for dl in dead:
            _report(self.bounded, dl)
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
            private_dir(self.path.parent)
        self.bounded = _bounded_log()
        self.count = 0

    async def write(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        with open_private(self.path, "ab") as f:
            for dl in dead:
                _report(self.bounded, dl)
                f.write(orjson.dumps(dl.to_dict()) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.count += len(dead)
