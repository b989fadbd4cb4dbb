"""Dead letters: messages that failed on their channel and on the fallback. Last stage.

Given a ``dead_letter`` callback (the runtime passes one that produces to the Kafka topic
``<application_id>.alerts.dlq``) each record goes there; without one, or when it raises, records
are appended to ``state_dir/notify-dead-letters.jsonl``. A record holds the full alerts, so
it can be replayed: ``{"failed_at", "reason", "channel", "attempts", "error", "alerts"}``.
``reason`` is ``delivery_failed`` (the channel and the fallback gave up), ``channel_removed``
(queued for a channel no longer configured) or ``no_route`` (no channel carries any of the
alert's tags).

One record must fit one Kafka record, or one line of the file (1 MiB, like every dead
letter): ``encode_to_fit`` splits a record whose alerts (a digest of many) would not into
several, each with the same envelope and a part of the alerts, in order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from ..decode.deadletter import DETAIL_KEEP, MAX_DEAD_LETTER_BYTES
from ..storage.files import open_private, private_dir

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
            except Exception as exc:  # noqa: BLE001 (the file is the last resort: never lose the record)
                log.error(
                    "dead-letter callback failed (%s); writing %d record(s) to %s",
                    type(exc).__name__,
                    len(records),
                    self.path,
                )
        self.append_file(records)

    def append_file(self, records: list[dict[str, Any]]) -> None:
        private_dir(self.path.parent)
        with open_private(self.path, "ab") as fh:
            for r in records:
                for line in encode_to_fit(r, MAX_DEAD_LETTER_BYTES - 1):
                    fh.write(line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_file(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line]


def encode_to_fit(record: dict[str, Any], max_bytes: int) -> list[bytes]:
    """``record`` as JSON, split into as many records as it takes for each to weigh at most
    ``max_bytes``: the alerts are shared out, the envelope repeated. An alert that cannot fit
    alone (its cap is above ``max_bytes``) keeps only what identifies it."""
    encoded = orjson.dumps(record, default=str)
    alerts = record.get("alerts") or []
    if len(encoded) <= max_bytes:
        return [encoded]
    if len(alerts) > 1:
        half = len(alerts) // 2
        return encode_to_fit({**record, "alerts": alerts[:half]}, max_bytes) + encode_to_fit(
            {**record, "alerts": alerts[half:]}, max_bytes
        )
    keep = ("kind", "severity", "status", "fingerprint", "event_time", "family")
    bare = [{k: a.get(k) for k in keep} | {"truncated": ["*"]} for a in alerts]
    encoded = orjson.dumps({**record, "alerts": bare}, default=str)
    if len(encoded) > max_bytes:  # the envelope itself: an error text of any length
        record = {
            k: f"{v[:DETAIL_KEEP]}...[cut {len(v) - DETAIL_KEEP} chars]"
            if type(v) is str and len(v) > DETAIL_KEEP
            else v
            for k, v in record.items()
        }
        encoded = orjson.dumps({**record, "alerts": bare}, default=str)
    return [encoded]
