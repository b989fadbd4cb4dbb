"""ISO 8601 times read through the per-minute cache give exactly what parsing the whole
string gives, on the first read and on every later one, at the edges of the accepted range
too; and the per-endpoint cache of SQL injection signatures hands out lists nobody shares."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from streamproc.detectors.sql_injection import match
from streamproc.events import CoercionError, parse_timestamp


def reference(text: str) -> float:
    """The whole string parsed by datetime alone (naive means UTC)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-27T00:00:07Z",
        "2026-02-27T00:00:59Z",
        "2026-02-27T23:59:00Z",
        "2026-02-27T00:00:07+05:30",
        "2026-02-27T00:00:07-07:00",
        "2026-02-27T00:00:07",
        "2026-02-27 00:00:07",
        "2026-02-27T00:00:07.000Z",
        "2026-02-27T00:00:07+05:30:15",  # a zone with seconds: the minute is not whole
        "1970-01-01T00:00:00Z",
        "1970-01-01T05:00:59+05:00",
        "9999-12-31T23:59:59Z",
    ],
)
def test_a_time_read_through_the_minute_cache_equals_the_whole_string_parsed(text: str) -> None:
    expected = reference(text)
    # the first read fills the caches, the later ones are served from them
    assert [parse_timestamp(text) for _ in range(3)] == [expected] * 3
    # a neighbour in the same minute is served from the cache too, and is exact
    neighbour = text[:17] + "33" + text[19:]
    assert parse_timestamp(neighbour) == reference(neighbour)


@pytest.mark.parametrize(
    "text",
    [
        "1969-12-31T23:59:59Z",  # one second before the epoch
        "1970-01-01T04:59:59+05:00",  # the same instant, with an offset
        "9999-12-31T23:59:59-00:01",  # one minute after the last second accepted
        "2026-02-27T00:00:60Z",  # no leap seconds
        "2026-02-30T00:00:07Z",
        "2026-02-27T00:00:7Z",
    ],
)
def test_a_time_out_of_range_or_malformed_is_rejected_every_time(text: str) -> None:
    # a valid time in the same minute first, so the cache holds that minute
    try:
        parse_timestamp(text[:17] + "00" + text[19:])
    except CoercionError:
        pass
    for _ in range(2):
        with pytest.raises(CoercionError) as exc:
            parse_timestamp(text)
        assert exc.value.reason == "bad_timestamp"


def test_fractions_are_added_to_the_whole_second() -> None:
    assert parse_timestamp("2026-02-27T00:00:07.250Z") == reference("2026-02-27T00:00:07Z") + 0.25
    assert (
        parse_timestamp("2026-02-27T00:00:07.5+01:00")
        == reference("2026-02-27T00:00:07+01:00") + 0.5
    )


def test_cached_sql_injection_matches_are_new_lists_each_time() -> None:
    endpoint = "/search?q=1' OR '1'='1"
    first = match(endpoint)
    assert first
    first.append("changed by a caller")
    assert match(endpoint) == first[:-1]
    assert match("/api/v1/search?q=running+shoes") == []


def test_a_column_of_new_minutes_is_read_as_parse_timestamp_reads_each_value() -> None:
    """A batch's minutes are mostly new to the cache (a live stream moves on): they are
    learnt once per batch, and every value still parses as ``parse_timestamp`` says, across
    cache clears, impossible dates, leap seconds and the end of the range."""
    from streamproc.events import parse_timestamps

    base = 1_780_000_000
    column = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 61 * i)) for i in range(5000)]
    column[7] = "2026-02-30T00:00:00Z"  # no such day
    column[8] = "2026-01-01T00:00:60Z"  # a leap second
    column[9] = "9999-12-31T23:59:59Z"
    column[10] = "2026-01-01T00:0x:00Z"
    epochs, failed = parse_timestamps(column)
    for i, value in enumerate(column):
        try:
            want = parse_timestamp(value)
        except CoercionError:
            assert i in failed
            continue
        assert i not in failed and epochs[i] == want, value
