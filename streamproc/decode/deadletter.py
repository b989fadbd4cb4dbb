"""The DeadLetter record: what could not be processed, why, and where it came from."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

# Every reason a record can be dead-lettered. Metrics are labelled with these, so keep the set
# closed and small.
REASONS = (
    "empty",  # zero-length payload
    "too_large",  # over max_record_bytes, or its repartitioned copy over a Kafka record
    "not_utf8",  # payload bytes are not UTF-8
    "not_json",  # not parseable JSON (NaN and Infinity included: they are not JSON)
    "too_deep",  # nesting deeper than the JSON parser allows
    "not_object",  # JSON, but an array, string, number or null at top level
    "missing_field",  # a required contract field is absent or null
    "wrong_type",  # a field has a type its contract does not allow
    "invalid_value",  # a field is outside its enum
    "bad_timestamp",  # the timestamp is not ISO 8601 or epoch, or out of range
    "not_access_log",  # a text line that is not an nginx/Apache combined or common log line
    "no_match",  # a text line that its binding's line format (regex, sshd, syslog)
    # does not match
    "match_timeout",  # a text line a user's regex did not finish within its time budget
    "late",  # event time behind the watermark (max event time - allowed lateness)
    "future",  # live: event time more than max_future_skew ahead of the clock
    "time_jump",  # a jump of event time that later records did not confirm
    "duplicate_field",  # a JSON object repeats a key (which one is meant is not clear)
    "unbound_topic",  # the record's topic matches no binding
)

# A dead letter copies what it cannot trust: the key and the detail are cut to these many
# bytes (the payload is cut by ``encode`` to what its sink can hold).
KEY_KEEP = 1024
DETAIL_KEEP = 1024
# The most one encoded dead letter may weigh (one Kafka record under the producer's default
# 1 MiB request limit, one line of a dead-letter file).
MAX_DEAD_LETTER_BYTES = 1024 * 1024


@dataclass(slots=True)
class DeadLetter:
    reason: str
    detail: str
    raw: bytes
    topic: str = ""
    partition: int = 0
    offset: int = -1
    key: bytes | None = None
    family: str | None = None
    at: float = field(default_factory=time.time)

    def to_dict(self, max_raw: int | None = None) -> dict[str, Any]:
        """The dead letter as plain data. With ``max_raw``, a longer payload keeps only its
        first ``max_raw`` bytes, and says so: ``raw_truncated``, its full length
        (``raw_bytes``) and the SHA-256 of the whole (``raw_sha256``)."""
        raw = self.raw
        cut = max_raw is not None and len(raw) > max_raw
        key = self.key
        out = {
            "reason": self.reason,
            "detail": self.detail
            if len(self.detail) <= DETAIL_KEEP
            else self.detail[:DETAIL_KEEP] + f"...[cut {len(self.detail) - DETAIL_KEEP} chars]",
            "family": self.family,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "key_b64": None if key is None else base64.b64encode(key[:KEY_KEEP]).decode(),
            "raw_b64": base64.b64encode(raw[:max_raw] if cut else raw).decode(),
            "raw_bytes": len(raw),
            "dead_lettered_at": self.at,
        }
        if key is not None and len(key) > KEY_KEEP:
            out["key_truncated"] = True
            out["key_bytes"] = len(key)
            out["key_sha256"] = hashlib.sha256(key).hexdigest()
        if cut:
            out["raw_truncated"] = True
            out["raw_sha256"] = hashlib.sha256(raw).hexdigest()
        return out

    def encode(self, max_bytes: int | None = None) -> bytes:
        """The dead letter as JSON of at most ``max_bytes`` bytes (when that is at least a few
        hundred): the whole payload when it fits, else as long a prefix as fits (base64 makes
        3 bytes 4)."""
        # the envelope (detail, key, source) is bounded: well below 4 KiB plus the topic name
        if max_bytes is None or _b64_len(len(self.raw)) + 4096 + 6 * len(self.topic) <= max_bytes:
            return orjson.dumps(self.to_dict())
        whole = orjson.dumps(self.to_dict())
        if len(whole) <= max_bytes:
            return whole
        envelope = len(orjson.dumps(self.to_dict(max_raw=0)))
        keep = max(0, (max_bytes - envelope) // 4 * 3)
        return orjson.dumps(self.to_dict(max_raw=keep))

    def minimal(self, why: str) -> dict[str, Any]:
        """What is left to say when even a cut dead letter could not be written: where the
        record was, why it was dead-lettered, its length and hash, and why no payload."""
        return {
            "reason": self.reason,
            "detail": self.detail[:DETAIL_KEEP],
            "family": self.family,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "key_b64": None,
            "raw_b64": "",
            "raw_bytes": len(self.raw),
            "raw_truncated": True,
            "raw_sha256": hashlib.sha256(self.raw).hexdigest(),
            "sink_error": why,
            "dead_lettered_at": self.at,
        }


def _b64_len(n: int) -> int:
    return (n + 2) // 3 * 4
