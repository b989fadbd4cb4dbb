"""Dead-letter destinations: Kafka ``<topic>.dlq`` topics, or a JSONL file.

Every dead letter carries the original bytes (base64), where it came from and why. The sink
must be durable before the source offsets of its batch are committed: a record that could not
be processed is never silently dropped. Repeated reasons are logged at a bounded rate.

A dead letter always fits its sink. Base64 makes a payload a third larger, so a 900 KB record
would not fit under the producer's 1 MiB request limit, and a record that cannot be
dead-lettered is one that can never be committed past. So a dead letter that would not fit
keeps a prefix of the payload with its full length and SHA-256 (``raw_truncated``,
``raw_bytes``, ``raw_sha256``). Should the broker still refuse one for size (its own limit
lower than ours), a minimal dead letter without the payload is written instead, with the
broker's answer in ``sink_error``, and counted (``oversize``). Both are counted per source
topic in ``streamproc_dead_letters_cut_total`` and ``streamproc_dead_letters_oversize_total``
when the sink is given the runtime's ``Metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from ..decode import DeadLetter
from ..decode.deadletter import MAX_DEAD_LETTER_BYTES
from ..ops.logs import RateLimitedLog
from ..pipeline.batches import DEFAULT_MAX_REQUEST_SIZE, RECORD_OVERHEAD, fit_key
from .files import open_private, private_dir

log = logging.getLogger(__name__)

_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)


def _bounded_log() -> RateLimitedLog:
    """At most one line per (topic, reason) every 10 s, with a count of the rest."""
    return RateLimitedLog(log, per_key_interval=10.0)


def _report(limited: RateLimitedLog, dl: DeadLetter) -> None:
    limited.warning(
        (dl.topic, dl.reason),
        "dead letter from %s[%d]@%d: %s: %s",
        dl.topic,
        dl.partition,
        dl.offset,
        dl.reason,
        dl.detail,
    )


class KafkaDeadLetters:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        suffix: str = ".dlq",
        *,
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
        metrics: Any = None,
    ) -> None:
        self.producer = producer
        self.suffix = suffix
        self.max_request_size = max_request_size
        self.metrics = metrics
        self.bounded = _bounded_log()
        self.count = 0
        self.cut = 0  # dead letters whose payload was cut to fit
        self.oversize = 0  # refused for size even so: written without the payload

    async def write(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        sends: list[tuple[DeadLetter, Any]] = []
        refused: list[tuple[DeadLetter, BaseException]] = []
        for dl in dead:
            _report(self.bounded, dl)
            key = None if dl.key is None else fit_key(dl.key)
            value = dl.encode(self.max_request_size - RECORD_OVERHEAD - len(key or b""))
            if _was_cut(value):
                self.cut += 1
                if self.metrics is not None:
                    self.metrics.dead_letters_cut.labels(dl.topic).inc()
            try:
                sends.append(
                    (
                        dl,
                        await self.producer.send(
                            self._topic(dl),
                            value,
                            key=key,
                            headers=[("reason", dl.reason.encode())],
                        ),
                    )
                )
            except _TOO_LARGE as exc:
                refused.append((dl, exc))
        results = await asyncio.gather(*(f for _, f in sends), return_exceptions=True)
        for (dl, _), result in zip(sends, results, strict=True):
            if isinstance(result, _TOO_LARGE):
                refused.append((dl, result))
            elif isinstance(result, BaseException):
                raise result
        if refused:
            await self._write_minimal(refused)
        self.count += len(dead)

    async def _write_minimal(self, refused: list[tuple[DeadLetter, BaseException]]) -> None:
        """Dead letters the producer or the broker refused for size, again without payload:
        a record that cannot be dead-lettered would stop its partition for good."""
        futures = []
        for dl, exc in refused:
            self.oversize += 1
            if self.metrics is not None:
                self.metrics.dead_letters_oversize.labels(dl.topic).inc()
            why = f"{type(exc).__name__}: the dead letter was refused for size"
            self.bounded.error(
                (dl.topic, "oversize"),
                "dead letter from %s[%d]@%d (%d bytes) "
                "refused for size (%s): written without its payload",
                dl.topic,
                dl.partition,
                dl.offset,
                len(dl.raw),
                type(exc).__name__,
            )
            futures.append(
                await self.producer.send(
                    self._topic(dl),
                    orjson.dumps(dl.minimal(why)),
                    headers=[("reason", dl.reason.encode())],
                )
            )
        await asyncio.gather(*futures)

    def _topic(self, dl: DeadLetter) -> str:
        return (dl.topic or "streamproc") + self.suffix


def _was_cut(encoded: bytes) -> bool:
    """Whether an encoded dead letter lost part of its payload (the last fields say so)."""
    return b'"raw_truncated":true' in encoded[-120:]


class FileDeadLetters:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_line_bytes: int = MAX_DEAD_LETTER_BYTES,
        metrics: Any = None,
    ) -> None:
        self.path = Path(path)
        if self.path.parent != Path(""):
            private_dir(self.path.parent)
        self.max_line_bytes = max_line_bytes
        self.metrics = metrics
        self.bounded = _bounded_log()
        self.count = 0
        self.cut = 0  # dead letters whose payload was cut to fit a line

    async def write(self, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        with open_private(self.path, "ab") as f:
            for dl in dead:
                _report(self.bounded, dl)
                line = dl.encode(self.max_line_bytes - 1)
                if _was_cut(line):
                    self.cut += 1
                    if self.metrics is not None:
                        self.metrics.dead_letters_cut.labels(dl.topic).inc()
                f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.count += len(dead)
