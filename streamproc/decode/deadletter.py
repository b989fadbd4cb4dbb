"""The DeadLetter record: what could not be processed, why, and where it came from."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

# Every reason a record can be dead-lettered. Metrics are labelled with these, so keep the set
# closed and small.
REASONS = (
    "empty",          # zero-length payload
    "too_large",      # over max_record_bytes
    "not_utf8",       # payload bytes are not UTF-8
    "not_json",       # not parseable JSON (NaN and Infinity included: they are not JSON)
    "too_deep",       # nesting deeper than the JSON parser allows
    "not_object",     # JSON, but an array, string, number or null at top level
    "missing_field",  # a required contract field is absent or null
    "wrong_type",     # a field has a type its contract does not allow
    "invalid_value",  # a field is outside its enum
    "bad_timestamp",  # the timestamp is not ISO 8601 or epoch, or out of range
    "not_access_log", # a text line that is not an nginx/Apache combined or common log line
    "late",           # event time behind the watermark (max event time - allowed lateness)
    "future",         # live: event time more than max_future_skew ahead of the clock
    "time_jump",      # a jump of event time that later records did not confirm
    "duplicate_field",  # a JSON object repeats a key (which one is meant is not clear)
    "unbound_topic",  # the record's topic matches no binding
)


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "detail": self.detail,
            "family": self.family,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "key_b64": base64.b64encode(self.key).decode() if self.key is not None else None,
            "raw_b64": base64.b64encode(self.raw).decode(),
            "raw_bytes": len(self.raw),
            "dead_lettered_at": self.at,
        }
