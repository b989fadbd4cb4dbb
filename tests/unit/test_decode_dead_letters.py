"""Every kind of bad record lands in the dead-letter path with a specific reason, and good
records around it are still processed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamproc.config import parse_config_text
from streamproc.contracts import get_contract
from streamproc.decode import RawRecord, RecordDecoder
from streamproc.decode.deadletter import REASONS
from streamproc.pipeline.runtime import Judge

GOOD = {
    "timestamp": "2026-11-01T10:00:00Z",
    "username": "alice",
    "ip_address": "198.51.100.7",
    "success": True,
}


def good(**changes: object) -> bytes:
    record = dict(GOOD)
    for k, v in changes.items():
        if v is _DROP:
            record.pop(k)
        else:
            record[k] = v
    return orjson.dumps(record)


_DROP = object()

BAD_RECORDS = [
    ("empty payload", b"", "empty"),
    ("invalid utf-8", b'{"username": "\xff\xfe"}', "not_utf8"),
    ("latin-1 bytes", '{"username": "J\xfcrgen"}'.encode("latin-1"), "not_utf8"),
    ("not json", b"user alice logged in", "not_json"),
    ("truncated json", good()[:-5], "not_json"),
    (
        "NaN literal",
        b'{"timestamp": NaN, "username": "a", "ip_address": "1", "success": true}',
        "not_json",
    ),
    ("Infinity literal", b'{"cpu": Infinity}', "not_json"),
    ("array", b"[1, 2, 3]", "not_object"),
    ("string", b'"hello"', "not_object"),
    ("null", b"null", "not_object"),
    ("number", b"42", "not_object"),
    ("2 MiB record", b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'"}', "too_large"),
    ("10,000-deep nesting", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "too_deep"),
    ("10,000-deep arrays", b"[" * 10_000 + b"]" * 10_000, "too_deep"),
    ("missing username", good(username=_DROP), "missing_field"),
    ("missing timestamp", good(timestamp=_DROP), "missing_field"),
    ("null ip_address", good(ip_address=None), "missing_field"),
    ("empty username", good(username=""), "missing_field"),
    ("success is an object", good(success={"value": True}), "wrong_type"),
    ("success is 'maybe'", good(success="maybe"), "wrong_type"),
    ("username is a list", good(username=["alice"]), "wrong_type"),
    ("timestamp is a bool", good(timestamp=True), "bad_timestamp"),
    ("timestamp is an object", good(timestamp={"s": 1}), "bad_timestamp"),
    ("timestamp unparsable", good(timestamp="yesterday at noon"), "bad_timestamp"),
    ("timestamp NaN string", good(timestamp="NaN"), "bad_timestamp"),
    ("timestamp negative", good(timestamp=-5), "bad_timestamp"),
    ("timestamp out of range", good(timestamp="99999-01-01T00:00:00Z"), "bad_timestamp"),
]


@pytest.mark.parametrize("what,raw,reason", BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_bad_record_is_dead_lettered_with_a_specific_reason(
    what: str, raw: bytes, reason: str
) -> None:
    decoder = RecordDecoder(get_contract("auth-logs"))
    out = decoder.decode(raw, "auth-logs", 2, 77, b"k")
    assert out.__class__.__name__ == "DeadLetter", what
    assert out.reason == reason
    assert out.reason in REASONS
    d = out.to_dict()
    assert d["source"] == {"topic": "auth-logs", "partition": 2, "offset": 77}
    import base64

    assert base64.b64decode(d["raw_b64"]) == raw
    assert d["detail"]


def test_at_least_fifteen_kinds_of_bad_record_are_covered() -> None:
    assert len(BAD_RECORDS) >= 15
    assert len({r for _, _, r in BAD_RECORDS}) >= 9


def test_good_records_around_bad_ones_are_still_processed() -> None:
    judge = Judge(parse_config_text(""))
    records = []
    for i, (_, raw, _) in enumerate(BAD_RECORDS):
        records.append(RawRecord(good(timestamp=1_790_000_000 + i), "auth-logs", 0, 2 * i))
        records.append(RawRecord(raw, "auth-logs", 0, 2 * i + 1))
    alerts, dead = judge.judge(records, "kafka")
    assert judge.stats.events == len(BAD_RECORDS)
    assert [d.offset for d in dead] == [2 * i + 1 for i in range(len(BAD_RECORDS))]
    assert [d.reason for d in dead] == [r for _, _, r in BAD_RECORDS]


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2026-11-01T10:00:00Z", 1793527200.0),
        ("2026-11-01T11:00:00+01:00", 1793527200.0),
        ("2026-11-01T10:00:00.250Z", 1793527200.25),
        ("2026-11-01 10:00:00", 1793527200.0),
        (1793527200, 1793527200.0),
        (1793527200.5, 1793527200.5),
        (1793527200000, 1793527200.0),
        ("1793527200000", 1793527200.0),
        ("1793527200", 1793527200.0),
        ("2026-11-01T10:00:00.123456789Z", 1793527200.123456),  # Go / nanoseconds
        ("2026-11-01T10:00:00+0000", 1793527200.0),
        ("2026-11-01 10:00:00,000", 1793527200.0),  # Python logging
        ("01/Nov/2026:11:00:00 +0100", 1793527200.0),  # nginx $time_local in JSON logs
        ("Sun, 01 Nov 2026 10:00:00 GMT", 1793527200.0),  # RFC 2822 / HTTP date
    ],
)
def test_timestamp_accepts_iso8601_epoch_seconds_and_milliseconds(
    value: object, expected: float
) -> None:
    decoder = RecordDecoder(get_contract("auth-logs"))
    out = decoder.decode(good(timestamp=value))
    assert out.ts == pytest.approx(expected)


def test_value_coercion_accepts_common_spellings() -> None:
    decoder = RecordDecoder(get_contract("auth-logs"))
    assert decoder.decode(good(success="false")).data["success"] is False
    assert decoder.decode(good(success="FAILURE")).data["success"] is False
    assert decoder.decode(good(success=1)).data["success"] is True
    api = RecordDecoder(get_contract("api-access-logs"))
    ev = api.decode(
        orjson.dumps(
            {
                "timestamp": 1,
                "endpoint": "/",
                "method": "GET",
                "status_code": "404",
                "ip_address": "::1",
            }
        )
    )
    assert ev.data["status_code"] == 404


def test_unknown_topic_is_dead_lettered_not_dropped() -> None:
    judge = Judge(parse_config_text(""))
    _, dead = judge.judge([RawRecord(good(), "some-other-topic", 0, 5)], "kafka")
    assert [d.reason for d in dead] == ["unbound_topic"]


def test_enum_violations_are_invalid_value() -> None:
    decoder = RecordDecoder(get_contract("cicd-events"))
    out = decoder.decode(orjson.dumps({"timestamp": 1, "type": "release"}))
    assert out.reason == "invalid_value"
    ok = decoder.decode(orjson.dumps({"timestamp": 1, "type": "Pipeline"}))
    assert ok.data["type"] == "pipeline"


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=30,
)


def _plain_keys(value: Any) -> int:
    if type(value) is dict:
        return len(value) + sum(map(_plain_keys, value.values()))
    if type(value) is list:
        return sum(map(_plain_keys, value))
    return 0


def _plain_depth(value: Any) -> int:
    """An object or a list is one level more than its deepest child object or list; a
    scalar on its own is depth 1."""
    if type(value) not in (dict, list):
        return 1
    children = value.values() if type(value) is dict else value
    return 1 + max((_plain_depth(c) for c in children if type(c) in (dict, list)), default=0)


@given(_JSON, st.integers(0, 8))
def test_keys_within_counts_every_objects_keys_up_to_the_depth_limit(
    value: Any, limit: int
) -> None:
    from streamproc.decode.records import keys_within

    expected = _plain_keys(value) if _plain_depth(value) <= limit else -1
    assert keys_within(value, limit) == expected
