"""Dead letters: messages that failed on their channel and on the fallback. Last stage.

Given a ``dead_letter`` callback (the runtime passes one that produces to the Kafka topic
``<application_id>.alerts.dlq``) each record goes there; without one, or when it raises,
records are appended to ``state_dir/notify-dead-letters.jsonl``. A record holds the full alerts, so
it can be replayed: ``{"failed_at", "channel", "attempts", "error", "origin", "alerts"}``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("streamproc.notify")

DeadLetterCallback = Callable[[list[dict[str, Any]]], Awaitable[None]]
FILE_NAME = "notify-dead-letters.jsonl"


class DeadLetters:
    def __init__(self, state_dir: Path, callback: DeadLetterCallback | None = None) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self.callback = callback

    async def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self.callback is not None:
            try:
                await self.callback(records)
                return
            except Exception as exc:  # the file is the last resort; never lose the record
                log.error("dead-letter callback failed (%s); writing %d record(s) to %s",
                          type(exc).__name__, len(records), self.path)
        self.append_file(records)

    def append_file(self, records: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as fh:
            for r in records:
                fh.write(orjson.dumps(r, default=str) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_file(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line]
