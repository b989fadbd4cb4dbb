"""Logging: human-readable or JSON lines, secrets redacted, repeated errors rate-limited.

``setup_logging(level, fmt)`` installs one stderr handler on the root logger with a
``RedactingFilter`` (masks secrets in the message and its arguments, so every formatter sees
clean text) and a formatter that redacts its final output too (tracebacks, ``extra`` fields).

``RateLimitedLog`` keeps a poison stream from flooding the log: the first message per key is
logged, repeats within ``per_key_interval`` are counted, and the next message after the
interval says how many were suppressed::

    limited = RateLimitedLog(log, per_key_interval=10.0)
    limited.warning(("decode", topic), "dead-lettered a record of %s: %s", topic, reason)
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from .redact import redact_text

# LogRecord attributes that are not "extra" fields.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class RedactingFilter(logging.Filter):
    """Masks secrets in ``record.msg % record.args`` (and in string ``extra`` values) before
    any formatter runs. Install on handlers: a filter on a logger does not see records that
    propagate from child loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a bad format string must not lose the record)
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact_text(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact_text(value))
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO 8601), level, logger, msg, any ``extra`` fields,
    and ``exc`` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        text = orjson.dumps(out, default=str).decode()
        return redact_text(text)


def make_handler(fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A stream handler with the redaction filter and the chosen formatter."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._streamproc = True  # type: ignore[attr-defined]
    return handler


def setup_logging(
    level: str | int = "INFO", fmt: str = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger: one redacting handler (replacing one we installed before),
    and a redaction filter on every other handler already there. Returns our handler."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_streamproc", False):
            root.removeHandler(old)
        elif not any(isinstance(f, RedactingFilter) for f in old.filters):
            old.addFilter(RedactingFilter())
    handler = make_handler(fmt, stream)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    # Libraries that log every request or reconnect at INFO would drown ours.
    for noisy in ("aiokafka", "kafka", "urllib3", "apprise", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler


class RateLimitedLog:
    """Log a message at most once per key per ``per_key_interval`` seconds.

    Suppressed messages are counted; the next message for that key carries
    ``(N similar suppressed in the last S s)``, and ``flush()`` reports keys whose count was
    never carried. At most ``max_keys`` keys are tracked (least recently used dropped) so a
    stream of distinct keys cannot grow memory.
    """

    def __init__(
        self,
        logger: logging.Logger,
        per_key_interval: float = 10.0,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        on_suppressed: Callable[[int], None] | None = None,
    ) -> None:
        self.logger = logger
        self.interval = per_key_interval
        self.max_keys = max_keys
        self.clock = clock
        self.on_suppressed = on_suppressed  # e.g. metrics.log_messages_suppressed.inc
        # key -> [time of the last emitted message, suppressed since then]
        self._keys: OrderedDict[Hashable, list[float]] = OrderedDict()
        self.suppressed_total = 0

    def log(self, level: int, key: Hashable, msg: str, *args: Any, **kwargs: Any) -> bool:
        """Log unless ``key`` was logged within the interval; True when it was logged."""
        now = self.clock()
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            self.suppressed_total += 1
            if self.on_suppressed is not None:
                self.on_suppressed(1)
            return False
        if entry is not None and entry[1]:
            msg = f"{msg} (%d similar suppressed in the last %.0f s)"
            args = (*args, int(entry[1]), now - entry[0])
        self._keys[key] = [now, 0]
        self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        self.logger.log(level, msg, *args, **kwargs)
        return True

    def debug(self, key: Hashable, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.DEBUG, key, msg, *args, **kwargs)

    def info(self, key: Hashable, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.INFO, key, msg, *args, **kwargs)

    def warning(self, key: Hashable, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.WARNING, key, msg, *args, **kwargs)

    def error(self, key: Hashable, msg: str, *args: Any, **kwargs: Any) -> bool:
        return self.log(logging.ERROR, key, msg, *args, **kwargs)

    def exception(self, key: Hashable, msg: str, *args: Any, **kwargs: Any) -> bool:
        kwargs.setdefault("exc_info", True)
        return self.log(logging.ERROR, key, msg, *args, **kwargs)

    def flush(self, level: int = logging.WARNING) -> int:
        """Report every key with suppressed messages not yet reported; returns how many."""
        now = self.clock()
        reported = 0
        for key, entry in self._keys.items():
            if entry[1]:
                self.logger.log(
                    level,
                    "%d similar messages suppressed in the last %.0f s (key %s)",
                    int(entry[1]),
                    now - entry[0],
                    key,
                )
                entry[0], entry[1] = now, 0
                reported += 1
        return reported
