"""Log formats, the rate limit for repeated errors, and redaction of secrets in log output."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from streamproc.ops.logs import RateLimitedLog, setup_logging
from streamproc.ops.redact import clear_secrets


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h in handlers:
        for f in [f for f in h.filters if type(f).__name__ == "RedactingFilter"]:
            h.removeFilter(f)
    root.setLevel(level)
    clear_secrets()


def test_text_format_is_one_readable_line(root_restored: None) -> None:
    out = io.StringIO()
    setup_logging("INFO", "text", stream=out)
    logging.getLogger("streamproc.test").warning("consumer lag %d on %s", 12, "auth-logs")
    line = out.getvalue().strip()
    assert line.endswith("WARNING streamproc.test: consumer lag 12 on auth-logs")


def test_json_format_is_one_object_per_line_with_extra_fields(root_restored: None) -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", stream=out)
    log = logging.getLogger("streamproc.test")
    log.info("alert %s", "brute_force", extra={"topic": "auth-logs", "partition": 3})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    first, second = orjson.loads(lines[0]), orjson.loads(lines[1])
    assert first["msg"] == "alert brute_force" and first["level"] == "INFO"
    assert first["topic"] == "auth-logs" and first["partition"] == 3
    assert first["logger"] == "streamproc.test" and first["ts"].endswith("+00:00")
    assert "ValueError: boom" in second["exc"]


def test_debug_is_hidden_at_info_level(root_restored: None) -> None:
    out = io.StringIO()
    setup_logging("INFO", "text", stream=out)
    logging.getLogger("streamproc.test").debug("noise")
    assert out.getvalue() == ""


def test_setup_logging_twice_keeps_one_handler(root_restored: None) -> None:
    out = io.StringIO()
    setup_logging("INFO", "text", stream=out)
    setup_logging("INFO", "text", stream=out)
    logging.getLogger("streamproc.test").error("once")
    assert out.getvalue().count("once") == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _capture() -> tuple[logging.Logger, list[str]]:
    logger = logging.getLogger("streamproc.test.ratelimit")
    logger.propagate = False
    logger.handlers.clear()
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger.addHandler(ListHandler())
    logger.setLevel(logging.DEBUG)
    return logger, lines


def test_repeated_error_is_logged_once_per_interval_and_reports_the_suppressed_count() -> None:
    logger, lines = _capture()
    clock = FakeClock()
    limited = RateLimitedLog(logger, per_key_interval=10.0, clock=clock)
    for _ in range(50):
        limited.error("decode:auth-logs", "bad record on %s", "auth-logs")
        clock.now += 0.1
    assert lines == ["bad record on auth-logs"]
    assert limited.suppressed_total == 49
    clock.now += 10
    limited.error("decode:auth-logs", "bad record on %s", "auth-logs")
    assert len(lines) == 2
    assert lines[1].startswith("bad record on auth-logs (49 similar suppressed in the last")


def test_rate_limit_is_per_key() -> None:
    logger, lines = _capture()
    limited = RateLimitedLog(logger, per_key_interval=10.0, clock=FakeClock())
    limited.warning("a", "first a")
    limited.warning("b", "first b")
    limited.warning("a", "second a")
    assert lines == ["first a", "first b"]


def test_flush_reports_keys_with_pending_suppressed_messages() -> None:
    logger, lines = _capture()
    limited = RateLimitedLog(logger, per_key_interval=10.0, clock=FakeClock())
    limited.error("k", "x")
    limited.error("k", "x")
    limited.error("k", "x")
    assert limited.flush() == 1
    assert lines[-1].startswith("2 similar messages suppressed")
    assert limited.flush() == 0


def test_rate_limiter_tracks_a_bounded_number_of_keys() -> None:
    logger, _ = _capture()
    limited = RateLimitedLog(logger, per_key_interval=10.0, max_keys=100, clock=FakeClock())
    for i in range(10_000):
        limited.error(i, "distinct %d", i)
    assert len(limited._keys) == 100


def test_suppressed_messages_feed_a_counter_callback() -> None:
    logger, _ = _capture()
    seen: list[int] = []
    limited = RateLimitedLog(
        logger, per_key_interval=10.0, clock=FakeClock(), on_suppressed=seen.append
    )
    for _ in range(4):
        limited.error("k", "x")
    assert sum(seen) == 3
