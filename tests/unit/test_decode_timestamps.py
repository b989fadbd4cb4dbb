"""ISO 8601 times read through the per-minute cache give exactly what parsing the whole
string gives, on the first read and on every later one, at the edges of the accepted range
too; and the per-endpoint cache of SQL injection signatures hands out lists nobody shares."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _per_value(column: list[str]) -> tuple[list[float | None], list[int]]:
    want: list[float | None] = []
    failed: list[int] = []
    for i, value in enumerate(column):
        try:
            want.append(parse_timestamp(value))
        except (CoercionError, ValueError):
            want.append(None)
            failed.append(i)
    return want, failed


def _assert_column_reads_as_each_value(column: list[str]) -> None:
    from streamproc.events import parse_timestamps

    want, failed_each = _per_value(column)
    try:
        epochs, failed = parse_timestamps(column)
    except ValueError:  # parse_timestamp raised it for a value too: the same outcome
        assert None in want
        return
    assert sorted(failed) == failed_each
    for i, value in enumerate(column):
        if want[i] is not None:
            assert epochs[i] == want[i], value  # the same float, not merely close


def test_a_column_with_fractions_of_a_second_is_read_as_parse_timestamp_reads_each_value() -> None:
    """Milliseconds (JavaScript, Java), microseconds, Go's trimmed nanoseconds: the column
    is read at once, and each epoch is the very float parse_timestamp gives its value."""
    base = 1_780_000_000
    ms = [
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + 7 * i)) + f".{(i * 37) % 1000:03d}Z"
        for i in range(5000)
    ]
    assert any(v.endswith(".000Z") for v in ms)
    _assert_column_reads_as_each_value(ms)
    trimmed = [v[:-2] + "Z" if i % 3 else v[:-1] + "123456Z" for i, v in enumerate(ms)]
    _assert_column_reads_as_each_value(trimmed)
    odd = list(ms)
    odd[5] = "2026-01-01T00:00:07.1_2Z"  # float() takes it; parse_timestamp's scan does not
    odd[6] = "2026-01-01T00:00:07.\u0663Z"  # an Arabic-Indic digit: str.isdigit() says yes
    odd[7] = "2026-02-30T00:00:07.125Z"  # no such day
    odd[8] = "2026-01-01T00:00:60.5Z"  # a leap second
    odd[9] = "9999-12-31T23:59:59.999Z"
    odd[10] = "2026-01-01T00:00:07.Z"  # no digits
    _assert_column_reads_as_each_value(odd)


@given(
    st.lists(
        st.builds(
            lambda t, frac, tail: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + frac + tail,
            st.integers(0, 253402300799),
            st.one_of(
                st.just(""),
                st.from_regex(r"\.[0-9]{1,9}", fullmatch=True),
                st.text(alphabet="0123456789._\u0663\u00b2 +-", max_size=6).map(lambda s: "." + s),
            ),
            st.sampled_from(["Z", "Z", "Z", "+00:00", "z", ""]),
        ),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=300, deadline=None)
def test_any_column_of_times_reads_as_its_values_do(column: list[str]) -> None:
    _assert_column_reads_as_each_value(column)


def _reason(text: str) -> str:
    with pytest.raises(CoercionError) as exc:
        parse_timestamp(text)
    assert "out of range" in exc.value.detail or text.startswith("10000"), exc.value.detail
    return exc.value.reason


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59.5Z",
        "9999-12-31T23:59:59.000001Z",  # as a float, MAX_EPOCH itself: the text is later
        "9999-12-31T23:59:59.999999999Z",
        "9999-12-31T23:59:59.5+00:00",
        "9999-12-31T23:59:59.5",
        "9999-12-31 23:59:59.5Z",
        "9999-12-31T22:59:59.5-01:00",
        "9999-12-31T23:59:59,5Z",  # the other decimal sign: datetime reads it whole
        "99991231T235959.000001Z",  # the basic format
    ],
)
def test_a_time_past_max_epoch_by_a_fraction_is_out_of_range_as_a_year_10000_time_is(
    text: str,
) -> None:
    for _ in range(2):  # and again, with the caches filled
        assert _reason(text) == _reason("10000-01-01T00:00:00Z") == "bad_timestamp"


def test_the_last_second_in_range_and_fractions_before_it_are_taken() -> None:
    from streamproc.events import MAX_EPOCH

    assert parse_timestamp("9999-12-31T23:59:59Z") == MAX_EPOCH
    assert parse_timestamp("9999-12-31T23:59:59.000Z") == MAX_EPOCH
    assert parse_timestamp("9999-12-31T23:59:58.5Z") == MAX_EPOCH - 0.5
    assert parse_timestamp("9999-12-31T23:58:59.5Z") == MAX_EPOCH - 59.5


def test_a_column_with_a_fraction_past_max_epoch_refuses_it_as_each_value_is_refused() -> None:
    from streamproc.events import MAX_EPOCH, parse_timestamps

    parse_timestamp("9999-12-31T23:59:00Z")  # the last minute seen before, as a stream would
    column = ["9999-12-31T23:59:59.5Z", "9999-12-31T23:59:58.5Z", "2026-01-01T00:00:00.5Z"]
    for _ in range(2):
        epochs, failed = parse_timestamps(column)
        assert failed == [0]
        assert epochs[1:] == [MAX_EPOCH - 0.5, parse_timestamp(column[2])]
        assert parse_timestamps(column[:1] * 3)[1] == [0, 1, 2]
