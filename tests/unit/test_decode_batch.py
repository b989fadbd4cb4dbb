"""BatchDecoder against RecordDecoder: the same Events and the same dead letters, always.

RecordDecoder, a record at a time, is the specification; a batch decoded column-wise must give
exactly its Events (family, data with its key order, ts, coordinates, in record order) and its
dead letters (reason, detail, payload, coordinates, key), for generated streams of every
family and every timestamp format, and for batches where hypothesis mutates some records in
every way a producer gets a record wrong.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.contracts import builtin_contracts, get_contract
from streamproc.decode import DeadLetter, RecordDecoder
from streamproc.decode.batch import MIN_BATCH, BatchDecoder
from streamproc.decode.mapping import FieldMapping
from streamproc.events import MAX_EPOCH, Event, parse_timestamp
from streamproc.traffic import TS_FORMATS, generate

FAMILIES = sorted(builtin_contracts())
DIFF = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ECS_AUTH = {
    "timestamp": "@timestamp",
    "username": ["user.name", "user.id"],
    "ip_address": "source.ip",
    "success": {"path": "event.outcome", "map": {"success": True, "failure": False}},
}


def _reference(
    decoder: RecordDecoder,
    values: list[bytes],
    topic: str,
    partition: int,
    offsets: list[int],
    keys: list[bytes | None],
) -> tuple[list[Event], list[DeadLetter]]:
    events: list[Event] = []
    dead: list[DeadLetter] = []
    for value, offset, key in zip(values, offsets, keys, strict=True):
        out = decoder.decode(value, topic, partition, offset, key)
        (events if isinstance(out, Event) else dead).append(out)  # type: ignore[arg-type]
    return events, dead


def _event(ev: Event) -> tuple[Any, ...]:
    # types too: 5 == 5.0, but a number field holds a float
    return (
        ev.family,
        type(ev.ts),
        ev.ts,
        [(k, type(v), v) for k, v in ev.data.items()],
        ev.topic,
        ev.partition,
        ev.offset,
    )


def _dead(dl: DeadLetter) -> tuple[Any, ...]:
    return (dl.reason, dl.detail, dl.raw, dl.topic, dl.partition, dl.offset, dl.key, dl.family)


def assert_same_as_record_decoder(
    batch: BatchDecoder,
    values: list[bytes],
    topic: str = "t",
    partition: int = 3,
    first_offset: int = 100,
) -> tuple[list[Event], list[DeadLetter]]:
    offsets = list(range(first_offset, first_offset + len(values)))
    keys: list[bytes | None] = [
        None if i % 3 == 0 else f"k{i}".encode() for i in range(len(values))
    ]
    reference = RecordDecoder(
        batch.contract,
        fmt=batch.record.fmt,
        mapping=batch.record.mapping,
        max_record_bytes=batch.record.max_record_bytes,
        max_depth=batch.record.max_depth,
    )
    want_events, want_dead = _reference(reference, values, topic, partition, offsets, keys)
    events, dead = batch.decode_batch(values, topic, partition, offsets, keys)
    assert [_event(e) for e in events] == [_event(e) for e in want_events]
    assert [_dead(d) for d in dead] == [_dead(d) for d in want_dead]
    # the first offset alone means consecutive offsets
    again = batch.decode_batch(values, topic, partition, first_offset, keys)
    assert [_event(e) for e in again[0]] == [_event(e) for e in want_events]
    return events, dead


@functools.cache
def _stream(family: str, ts_format: str) -> list[bytes]:
    traffic = generate(family, 1500, seed=11, ts_format=ts_format)
    return [value for _, value in traffic.encoded(family)]


# -- generated streams ----------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("ts_format", TS_FORMATS)
def test_generated_stream_decodes_column_wise_to_the_record_decoders_events(
    family: str, ts_format: str
) -> None:
    batch = BatchDecoder(get_contract(family))
    values = _stream(family, ts_format)
    for start in range(0, len(values), 500):
        events, dead = assert_same_as_record_decoder(
            batch, values[start : start + 500], first_offset=start
        )
        assert not dead
    if ts_format == "iso":
        # clean, flat, exactly typed records: none of them needed a record-at-a-time decode
        assert batch.one_by_one == 0


def test_mixed_stream_in_fetch_sized_batches_matches_record_decoder() -> None:
    traffic = generate("mixed", 6000, seed=5)
    by_family: dict[str, list[bytes]] = {}
    for family, _, value in traffic.merged_bytes():
        by_family.setdefault(family, []).append(value)
    for family, values in by_family.items():
        batch = BatchDecoder(get_contract(family))
        for start in range(0, len(values), 1000):
            assert_same_as_record_decoder(batch, values[start : start + 1000])


def test_small_batches_are_decoded_a_record_at_a_time_with_the_same_result() -> None:
    batch = BatchDecoder(get_contract("auth-logs"))
    values = _stream("auth-logs", "iso")[: MIN_BATCH - 1] + [b"{", b""]
    events, dead = assert_same_as_record_decoder(batch, values)
    assert [d.reason for d in dead] == ["not_json", "empty"]


# -- one bad record among good ones ---------------------------------------------------------

GOOD = _stream("auth-logs", "iso")[:40]


def _with(bad: bytes, at: int = 17) -> list[bytes]:
    return GOOD[:at] + [bad] + GOOD[at:]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"", "empty"),
        (b"not json", "not_json"),
        (b'{"timestamp": NaN}', "not_json"),
        (b"\xff\xfe{}", "not_utf8"),
        (b'[{"username": "a"}]', "not_object"),
        (b'"a string"', "not_object"),
        (b"null", "not_object"),
        (b"[" * 80 + b"]" * 80, "too_deep"),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","username":"b",'
            b'"ip_address":"1.2.3.4","success":true}',
            "duplicate_field",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username" :"a","username":"b",'
            b'"ip_address":"1.2.3.4","success":true}',
            "duplicate_field",
        ),
        # a key repeated in a nested object, in an object of a list; an object nested past
        # max_depth
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"geo":{"city":"x","city":"y"}}',
            "duplicate_field",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"hops":[{"n":1},{"n":2,"n":3}]}',
            "duplicate_field",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"deep":' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"}",
            "too_deep",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","ip_address":"1.2.3.4","success":true}',
            "missing_field",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"","ip_address":"1.2.3.4",'
            b'"success":true}',
            "missing_field",
        ),
        (b'{"timestamp":"","username":"a","ip_address":"1.2.3.4","success":true}', "missing_field"),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":"maybe"}',
            "wrong_type",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":["a"],"ip_address":"1.2.3.4",'
            b'"success":true}',
            "wrong_type",
        ),
        (
            b'{"timestamp":"yesterday","username":"a","ip_address":"1.2.3.4","success":true}',
            "bad_timestamp",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:61Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true}',
            "bad_timestamp",
        ),
        (
            b'{"timestamp":"2026-01-01T00:00X00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true}',
            "bad_timestamp",
        ),
        (
            b'{"timestamp":true,"username":"a","ip_address":"1.2.3.4","success":true}',
            "bad_timestamp",
        ),
        (
            b'{"timestamp":1e300,"username":"a","ip_address":"1.2.3.4","success":true}',
            "bad_timestamp",
        ),
    ],
)
def test_one_bad_record_in_a_batch_gets_the_record_decoders_dead_letter(
    bad: bytes, reason: str
) -> None:
    batch = BatchDecoder(get_contract("auth-logs"))
    events, dead = assert_same_as_record_decoder(batch, _with(bad))
    assert [d.reason for d in dead] == [reason]
    assert dead[0].offset == 117 and dead[0].raw == bad
    assert len(events) == len(GOOD)


@pytest.mark.parametrize(
    ("odd", "column_wise"),
    [
        # values RecordDecoder coerces: decoded by RecordDecoder itself
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":7,"ip_address":"1.2.3.4","success":1}',
            False,
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":"failure"}',
            False,
        ),
        # nested values whose keys the byte count cannot vouch for, in a record orjson would
        # write otherwise (a space): a '":' inside a string
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"geo": {"note":"say \\":\\" twice"}}',
            False,
        ),
        # the same as orjson writes it: its writing vouches for its keys
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"geo":{"note":"say \\":\\" twice"}}',
            True,
        ),
        # nested, written otherwise (an escaped slash, a float's exponent): keys counted
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"geo":{"url":"a\\/b","n":1e3}}',
            True,
        ),
        # nested values (depth within max_depth, keys counted at every level), whitespace,
        # escaped quotes and other timestamp shapes: taken column-wise
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"geo":{"country":"NL","city":{"name":"Delft"}},"tags":["x","y"]}',
            True,
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true,"hops":[{"at":"a","n":1},{"at":"b","n":[2,{"k":3}]}]}',
            True,
        ),
        (
            b'{"timestamp" : "2026-01-01T00:00:00Z", "username" : "a", "ip_address" : "1.2.3.4",'
            b' "success" : true}',
            True,
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00Z","username":"a \\"quoted\\" name",'
            b'"ip_address":"1.2.3.4","success":true}',
            True,
        ),
        (
            b'{"timestamp":"2026-01-01T00:00:00.250+02:00","username":"a","ip_address":"::1",'
            b'"success":false}',
            True,
        ),
        (
            b'{"timestamp":1767225600123,"username":"a","ip_address":"1.2.3.4","success":false}',
            True,
        ),
        (b'{"timestamp":"1767225600","username":"a","ip_address":"1.2.3.4","success":false}', True),
        (
            b'  {"timestamp":"2026-01-01T00:00:00Z","username":"a","ip_address":"1.2.3.4",'
            b'"success":true}\n',
            True,
        ),
    ],
)
def test_an_unusual_but_valid_record_decodes_as_record_decoder_does(
    odd: bytes, column_wise: bool
) -> None:
    batch = BatchDecoder(get_contract("auth-logs"))
    events, dead = assert_same_as_record_decoder(batch, _with(odd))
    assert not dead and len(events) == len(GOOD) + 1
    assert (batch.one_by_one == 0) is column_wise


def test_a_record_over_max_record_bytes_is_too_large_though_it_parses() -> None:
    batch = BatchDecoder(get_contract("auth-logs"), max_record_bytes=300)
    big = orjson.dumps({**orjson.loads(GOOD[0]), "user_agent": "x" * 400})
    events, dead = assert_same_as_record_decoder(batch, _with(big))
    assert [d.reason for d in dead] == ["too_large"]


def test_enum_values_outside_the_enum_as_given_go_through_record_decoder() -> None:
    batch = BatchDecoder(get_contract("support-tickets"))
    values = _stream("support-tickets", "iso")[:30]
    first = orjson.loads(values[0])
    shouting = orjson.dumps({**first, "event": "CREATED"})
    unknown = orjson.dumps({**first, "event": "reopened"})
    events, dead = assert_same_as_record_decoder(batch, values + [shouting, unknown])
    assert events[-1].data["event"] == "created"
    assert [d.reason for d in dead] == ["invalid_value"]


def test_a_value_outside_the_enum_is_caught_beside_a_value_of_the_wrong_type() -> None:
    batch = BatchDecoder(get_contract("support-tickets"))
    values = _stream("support-tickets", "iso")[:30]
    first = orjson.loads(values[0])
    wrong_type = orjson.dumps({**first, "event": False})
    outside = orjson.dumps({**first, "event": "x" * 100})
    events, dead = assert_same_as_record_decoder(batch, [wrong_type, outside] + values)
    assert [d.reason for d in dead] == ["wrong_type", "invalid_value"]
    assert len(events) == len(values)
    # beside a list or an object, which no set holds
    listed = orjson.dumps({**first, "event": ["created"]})
    nested = orjson.dumps({**first, "event": {"name": "created"}})
    events, dead = assert_same_as_record_decoder(batch, [listed, outside, nested] + values)
    assert [d.reason for d in dead] == ["wrong_type", "invalid_value", "wrong_type"]
    assert len(events) == len(values)


def test_records_that_cut_each_other_in_a_joined_parse_keep_their_own_reasons() -> None:
    # joined as [a,b,c] these would parse as two objects; each alone is not even JSON
    batch = BatchDecoder(get_contract("auth-logs"))
    values = GOOD[:10] + [b'{"a":"', b'","b":1}', b'{"c":1},{"d":2}'] + GOOD[10:20]
    events, dead = assert_same_as_record_decoder(batch, values)
    assert [d.reason for d in dead] == ["not_json", "not_json", "not_json"]


# -- bindings the column checks do not take -------------------------------------------------


def test_access_log_lines_decode_as_record_decoder_does() -> None:
    batch = BatchDecoder(get_contract("api-access-logs"), fmt="combined")
    lines = [
        b'203.0.113.9 - alice [10/Oct/2026:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 2326 '
        b'"-" "curl/8"',
        b'198.51.100.2 - - [10/Oct/2026:13:55:37 +0000] "POST /login HTTP/1.1" 401 12',
        b"garbage line",
        b'{"timestamp":"2026-10-10T13:55:38Z","method":"GET","endpoint":"/","status_code":200,'
        b'"ip_address":"1.2.3.4"}',
    ] * 4
    events, dead = assert_same_as_record_decoder(batch, lines)
    assert len(events) == 12 and {d.reason for d in dead} == {"not_access_log"}


@pytest.mark.parametrize(
    "record",
    [
        {
            "@timestamp": "2026-01-01T00:00:00Z",
            "user": {"name": "ann"},
            "source": {"ip": "10.0.0.1"},
            "event": {"outcome": "failure"},
        },
        {
            "@timestamp": "2026-01-01T00:00:01Z",
            "user.name": "bob",
            "source.ip": "10.0.0.2",
            "event.outcome": "SUCCESS",
        },
        {
            "@timestamp": "2026-01-01T00:00:02Z",
            "user": {"id": 42},
            "source": {"ip": "10.0.0.3"},
            "event": {"outcome": "unknown"},
        },
        {
            "@timestamp": "2026-01-01T00:00:03Z",
            "source": {"ip": "10.0.0.4"},
            "event": {"outcome": "success"},
        },
    ],
)
def test_ecs_mapped_binding_decodes_as_record_decoder_does(record: dict[str, Any]) -> None:
    batch = BatchDecoder(
        get_contract("auth-logs"), mapping=FieldMapping(ECS_AUTH, where="test.fields")
    )
    assert_same_as_record_decoder(batch, [orjson.dumps(record)] * 12 + GOOD[:5])


def _filebeat(i: int, outcome: str) -> bytes:
    """An auth event as Filebeat's system module ships it to Kafka: nested ECS, a list, a
    millisecond timestamp."""
    return orjson.dumps(
        {
            "@timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.{i * 7 % 1000:03d}Z",
            "event": {"outcome": outcome, "category": ["authentication"], "module": "system"},
            "user": {"name": f"user{i % 5}"},
            "source": {"ip": f"10.0.0.{i % 7}", "geo": {"country_iso_code": "NL"}},
            "host": {"hostname": "bastion-1", "os": {"family": "debian"}},
            "agent": {"type": "filebeat", "version": "8.14.0"},
            "tags": ["beats_input_codec_plain_applied"],
            "message": f"Failed password for user{i % 5} from 10.0.0.{i % 7} port 22 ssh2",
        }
    )


def test_a_nested_ecs_batch_is_decoded_column_wise_as_record_decoder_decodes_it() -> None:
    """Filebeat's nested records through a field mapping: parsed, depth and keys checked,
    mapped a record at a time, then fields and times checked column-wise; each record the
    Event RecordDecoder makes. A record the checks cannot take is RecordDecoder's alone."""
    batch = BatchDecoder(
        get_contract("auth-logs"), mapping=FieldMapping(ECS_AUTH, where="test.fields")
    )
    values = [_filebeat(i, "failure" if i % 4 else "success") for i in range(40)]
    events, dead = assert_same_as_record_decoder(batch, values)
    assert not dead and len(events) == 40 and batch.one_by_one == 0
    assert events[1].data["username"] == "user1" and events[1].data["success"] is False
    assert events[1].data["agent"] == {"type": "filebeat", "version": "8.14.0"}
    # a key repeated deep inside one record, an outcome the map does not know, a user of
    # another type: RecordDecoder's, each (its dead letter, or its coercion to the type)
    values[5] = values[5].replace(b'"module":"system"', b'"module":"system","module":"x"')
    values[9] = values[9].replace(b'"failure"', b'"FAILED"')
    values[12] = values[12].replace(b'"name":"user2"', b'"name":12')
    before = batch.one_by_one
    events, dead = assert_same_as_record_decoder(batch, values)
    assert [d.reason for d in dead] == ["duplicate_field"]
    assert [type(e.data["username"]) for e in events if e.offset == 112] == [str]
    assert batch.one_by_one - before == 2 * 3  # (decode_batch runs twice above)


# -- hypothesis: every way of getting a record wrong, mixed into clean batches -------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", " ", "true", "FAILURE", "42", "4.5", "created", "Created"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
TIMESTAMPS = st.one_of(
    st.sampled_from(
        [
            "2026-03-01T10:00:00Z",
            "2026-03-01T10:00:59Z",
            "2026-03-01T10:00:60Z",
            "2026-03-01T10:00:00.5Z",
            "2026-03-01 10:00:00",
            "2026-03-01T10:00:00+05:30",
            "1772359200",
            "1772359200000",
            "01/Mar/2026:10:00:00 +0000",
            "Sun, 01 Mar 2026 10:00:00 GMT",
            "",
            " ",
            "2026-13-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
        ]
    ),
    st.integers(-10, 2**62),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)


def _dumps(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record)
    except TypeError:  # an integer beyond 64 bits: written as Python's json writes it
        return json.dumps(record).encode()


@st.composite
def mutated(draw: st.DrawFn, family: str) -> bytes:
    """A clean record of ``family``, changed in one of the ways producers get records wrong."""
    clean = _stream(family, draw(st.sampled_from(TS_FORMATS)))
    value = clean[draw(st.integers(0, len(clean) - 1))]
    record = orjson.loads(value)
    names = list(get_contract(family).fields) + list(record)
    name = draw(st.sampled_from(names))
    how = draw(
        st.sampled_from(
            [
                "keep",
                "type",
                "drop",
                "timestamp",
                "repeat",
                "spaces",
                "nested",
                "bytes",
                "cut",
                "array",
                "escape",
                "wrap",
                "number_text",
                "big",
            ]
        )
    )
    if how == "keep":
        return value
    if how == "type":
        record[name] = draw(SCALARS)
    elif how == "drop":
        record.pop(name, None)
    elif how == "timestamp":
        record["timestamp"] = draw(TIMESTAMPS)
    elif how == "nested":
        record[name] = draw(VALUES)
    elif (
        how == "number_text"
        and isinstance(record.get(name), int | float)
        and not isinstance(record.get(name), bool)
    ):
        record[name] = str(record[name])
    elif how == "escape":
        record[name] = f'say "{record.get(name)}"'
    elif how == "big":
        record[name] = "x" * draw(st.sampled_from([100, 5000, 70_000]))
    out = _dumps(record)
    if how == "repeat":
        again = _dumps({name: draw(SCALARS)})[1:-1]
        out = out[:-1] + b"," + again + b"}"
    elif how == "spaces":
        out = out.replace(b'":', b'" :', draw(st.integers(1, 3)))
    elif how == "bytes":
        at = draw(st.integers(0, len(out)))
        out = out[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"}", b'"'])) + out[at:]
    elif how == "cut":
        out = out[: draw(st.integers(0, len(out) - 1))]
    elif how == "array":
        out = b"[" + out + b"]"
    elif how == "wrap":
        out = b" \t" + out + b"\r\n"
    return out


@st.composite
def batches(draw: st.DrawFn, family: str) -> list[bytes]:
    clean = _stream(family, "iso")
    start = draw(st.integers(0, len(clean) - 40))
    values = list(clean[start : start + draw(st.integers(MIN_BATCH, 40))])
    for _ in range(draw(st.integers(0, 4))):
        values.insert(draw(st.integers(0, len(values))), draw(mutated(family)))
    return values


@pytest.mark.parametrize("family", FAMILIES)
@DIFF
@given(data=st.data())
def test_batches_with_mutated_records_decode_exactly_as_record_decoder(
    family: str, data: st.DataObject
) -> None:
    limit = data.draw(st.sampled_from([1024 * 1024 - 8192, 2048]))
    batch = BatchDecoder(get_contract(family), max_record_bytes=limit)
    assert_same_as_record_decoder(batch, data.draw(batches(family)))


@DIFF
@given(data=st.data())
def test_ecs_batches_with_mutated_records_decode_exactly_as_record_decoder(
    data: st.DataObject,
) -> None:
    batch = BatchDecoder(
        get_contract("auth-logs"), mapping=FieldMapping(ECS_AUTH, where="test.fields")
    )
    values = [
        _dumps(
            {
                "@timestamp": "2026-01-01T00:00:00Z",
                data.draw(st.sampled_from(["user", "user.name"])): data.draw(VALUES),
                "source": {"ip": data.draw(SCALARS)},
                "event.outcome": data.draw(SCALARS),
            }
        )
        for _ in range(data.draw(st.integers(MIN_BATCH, 16)))
    ]
    assert_same_as_record_decoder(batch, values)


def test_a_tombstone_among_records_is_an_empty_payload() -> None:
    batch = BatchDecoder(get_contract("auth-logs"))
    values: list[bytes | None] = [*GOOD[:12], None, *GOOD[12:20]]
    events, dead = batch.decode_batch(values, "t", 0, 0, [b"k"] * len(values))
    assert len(events) == 20
    assert [(d.reason, d.raw, d.offset, d.key) for d in dead] == [("empty", b"", 12, b"k")]


# -- the runtime's Judge: a fetch decoded per task gives what record-at-a-time judging gives


def _fetch(partitions: int) -> list[Any]:
    """A mixed stream with some broken records, spread over partitions by key (interleaved,
    as a fetch of several partitions or an MQTT binding's devices arrive)."""
    from streamproc.decode import RawRecord

    traffic = generate("mixed", 4000, seed=3)
    out = []
    for i, (family, key, value) in enumerate(traffic.merged_bytes()):
        if i % 97 == 0:
            value = value[:-9]  # cut: not JSON
        elif i % 89 == 0:
            value = value.replace(b'"timestamp":"', b'"timestamp":"x', 1)
        partition = sum(key or b"") % partitions
        out.append(RawRecord(value, get_contract(family).kafka_topic, partition, i, key))
    out.insert(50, RawRecord(GOOD[0], "unbound-topic", 0, 10_000, b"k"))
    return out


@pytest.mark.parametrize("partitioned", [True, False])
def test_judge_decoding_per_task_gives_the_alerts_and_dead_letters_of_one_record_at_a_time(
    partitioned: bool,
) -> None:
    from streamproc.config import load_config
    from streamproc.pipeline.runtime import Judge

    records = _fetch(partitions=3)

    def run(batch: int) -> tuple[list[Any], list[Any], Any]:
        judge = Judge(load_config(None), partitioned=partitioned)
        alerts: list[Any] = []
        dead: list[Any] = []
        for i in range(0, len(records), batch):
            out, dls = judge.judge(records[i : i + batch], "kafka")
            alerts += out
            dead += dls
        alerts += judge.finish()
        return (
            [(a.kind, a.status, a.fingerprint, a.event_time) for a in alerts],
            [_dead(d) for d in dead],
            judge.stats,
        )

    one_alerts, one_dead, one_stats = run(1)
    alerts, dead, stats = run(1000)
    assert sorted(alerts) == sorted(one_alerts) and len(alerts) > 20
    # each partition's dead letters in arrival order; across tasks, per task
    for tp in {(d[3], d[4]) for d in one_dead}:
        assert [d for d in dead if (d[3], d[4]) == tp] == [
            d for d in one_dead if (d[3], d[4]) == tp
        ]
    assert sorted(dead) == sorted(one_dead)
    assert {d[0] for d in dead} == {"not_json", "bad_timestamp", "unbound_topic"}
    assert (stats.records_in, stats.events, stats.dead_letters, stats.dead_by_reason) == (
        one_stats.records_in,
        one_stats.events,
        one_stats.dead_letters,
        one_stats.dead_by_reason,
    )


def test_unparsable_records_first_last_and_side_by_side_keep_their_places() -> None:
    batch = BatchDecoder(get_contract("auth-logs"))
    values = [b"{", *GOOD[:10], b"x", b"", b"[1,", *GOOD[10:20], b"}"]
    events, dead = assert_same_as_record_decoder(batch, values)
    assert [d.offset - 100 for d in dead] == [0, 11, 12, 13, 24]
    assert [e.offset - 100 for e in events] == [*range(1, 11), *range(14, 24)]


def test_access_log_times_take_the_range_of_every_other_time() -> None:
    """From 1970 to the last second of the year 9999 (MAX_EPOCH), as an ISO 8601 time in a
    JSON record; past 1e11 s, a number is read as milliseconds, so that is no limit here."""
    decoder = RecordDecoder(get_contract("api-access-logs"), fmt="combined")

    def line(when: str) -> bytes:
        return f'203.0.113.9 - - [{when}] "GET / HTTP/1.1" 200 1 "-" "curl/8"'.encode()

    late = decoder.decode(line("01/Jan/6000:00:00:00 +0000"))
    assert type(late) is Event and late.ts == parse_timestamp("6000-01-01T00:00:00Z")
    last = decoder.decode(line("31/Dec/9999:23:59:59 +0000"))
    assert type(last) is Event and last.ts == MAX_EPOCH
    for when in ("31/Dec/9999:23:59:59 -0100", "31/Dec/1969:23:59:59 +0000"):
        out = decoder.decode(line(when))
        assert type(out) is DeadLetter and out.reason == "bad_timestamp", when
        assert "out of range" in out.detail


# -- repartitioned records (streamproc's own envelope) --------------------------------------

_OTHER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([-(2**63) - 1, -(2**63), 2**63 - 1, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(0, 3), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=3),
)


# values that RecordDecoder takes, or refuses, for a reason a fast path could overlook
_NEAR_MISSES = st.sampled_from(
    [0, 5, 1772323619, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, -1.5, 0.0, -0.0, 1e300]
    + [float("nan"), float("inf"), True, False, "1.5", "7", ""]
)


@functools.cache
def _good_events() -> list[tuple[bytes, Event]]:
    decoder = RecordDecoder(get_contract("auth-logs"))
    out = [(record, decoder.decode(record, "auth", 2, 7)) for record in GOOD]
    return [(record, event) for record, event in out if isinstance(event, Event)]


@st.composite
def _repartitioned(draw: st.DrawFn) -> bytes:
    """An envelope as streamproc writes it, or one with a part changed, dropped or cut."""
    from streamproc.pipeline.repartition import encode, encode_raw

    record, event = draw(st.sampled_from(_good_events()))
    how = draw(st.integers(0, 4))
    if how == 0:
        return encode(event)
    if how == 1:
        return encode_raw(event.ts, record, "auth", draw(st.integers(-(2**63), 2**64 - 1)), 7)
    if how == 2:  # damaged bytes
        raw = encode(event)
        cut = draw(st.integers(0, len(raw)))
        return raw[:cut] + draw(st.sampled_from([b"", b"}", b"x", b" "]))
    doc: dict[str, Any] = {"ts": event.ts, "data": event.data, "src": ["auth", 2, 7]}
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        part = draw(st.sampled_from(["ts", "data", "src", "src0", "src1", "src2", "drop"]))
        if part == "drop":
            doc.pop(draw(st.sampled_from(sorted(doc))), None)
        elif part.startswith("src") and part != "src":
            if type(doc.get("src")) is list and len(doc["src"]) == 3:
                doc["src"][int(part[3])] = draw(st.one_of(_NEAR_MISSES, _OTHER_VALUES))
        else:
            doc[part] = draw(
                st.one_of(_NEAR_MISSES, _OTHER_VALUES, st.just("abc"), st.just(["auth", 2]))
            )
    # json, not orjson: NaN, Infinity and integers beyond 64 bits written as Python writes
    # them (orjson refuses to)
    return json.dumps(doc).encode()


@DIFF
@given(st.lists(_repartitioned(), min_size=MIN_BATCH, max_size=24))
def test_repartitioned_batches_decode_exactly_as_record_decoder(values: list[bytes]) -> None:
    batch = BatchDecoder(get_contract("auth-logs"), fmt="internal")
    events, dead = assert_same_as_record_decoder(batch, values)
    assert len(events) + len(dead) == len(values)


def test_repartitioned_records_as_streamproc_writes_them_are_taken_in_one_pass() -> None:
    from streamproc.pipeline.repartition import encode_raw

    batch = BatchDecoder(get_contract("auth-logs"), fmt="internal")
    values = [encode_raw(1.5 + i, record, "auth", 1, i) for i, record in enumerate(GOOD[:20])]
    events, dead = assert_same_as_record_decoder(batch, values)
    assert (len(events), dead, batch.one_by_one) == (20, [], 0)
    # the original coordinates, not the repartition topic's
    assert [(e.topic, e.partition, e.offset) for e in events] == [("auth", 1, i) for i in range(20)]


def test_a_batch_of_mostly_unparsable_envelopes_keeps_each_records_reason() -> None:
    from streamproc.pipeline.repartition import encode_raw

    batch = BatchDecoder(get_contract("auth-logs"), fmt="internal")
    values = [
        encode_raw(1.5, record, "auth", 1, i) if i % 5 == 4 else b'{"ts": 1.5, "data": {'
        for i, record in enumerate(GOOD)
    ]
    events, dead = assert_same_as_record_decoder(batch, values)
    assert (len(events), len(dead)) == (8, 32)
    assert {d.reason for d in dead} == {"not_json"}


# -- RecordDecoder.vouched: a frame's record made an Event without the frame's own checks ---


@pytest.mark.parametrize("family", FAMILIES)
def test_a_vouched_record_is_the_event_decode_makes(family: str) -> None:
    decoder = RecordDecoder(get_contract(family))
    numbers = [f.name for f in get_contract(family).fields.values() if f.type == "number"]
    checked = 0
    for i, value in enumerate(_stream(family, "iso")[:300]):
        record = orjson.loads(value)
        for name in numbers:  # an integer in a number field: made a float, as decode does
            if isinstance(record.get(name), float):
                record[name] = round(record[name])
        value = orjson.dumps(record)
        want = decoder.decode(value, "t", 1, i)
        if not isinstance(want, Event):
            continue
        got = decoder.vouched(value, want.ts, "t", 1, i)
        assert got is not None and _event(got) == _event(want)
        checked += 1
    assert checked >= 250


def test_a_vouched_record_whose_fields_fail_their_checks_is_left_to_decode() -> None:
    decoder = RecordDecoder(get_contract("host-metrics"))
    record = orjson.loads(_stream("host-metrics", "iso")[0])
    for value in ("high", None, True):
        record["cpu_percent"] = value
        if value is None:
            del record["host"]  # a required field missing
        raw = orjson.dumps(record)
        assert decoder.vouched(raw, 1.0, "t", 0, 0) is None
        assert isinstance(decoder.decode(raw, "t", 0, 0), DeadLetter)
    # a mapped binding's: the mapped record is checked (no user.name nor user.id: no username)
    mapped = RecordDecoder(get_contract("auth-logs"), mapping=FieldMapping(ECS_AUTH))
    assert mapped.vouched(GOOD[0], 1.0, "t", 0, 0) is None
    assert isinstance(mapped.decode(GOOD[0], "t", 0, 0), DeadLetter)


def test_a_vouched_mapped_record_is_the_event_decode_makes() -> None:
    """The mapping applied to the record parsed, as decode applies it: nested and flattened
    ECS, a value mapped, a candidate path taken when the first is absent, the rest kept."""
    mapped = RecordDecoder(get_contract("auth-logs"), mapping=FieldMapping(ECS_AUTH))
    checked = 0
    for i, value in enumerate(GOOD):
        r = orjson.loads(value)
        user = {"name": r["username"]} if i % 3 else {"id": r["username"], "roles": ["a", "b"]}
        nested = {
            "@timestamp": r["timestamp"],
            "user": user,
            "source": {"ip": r["ip_address"], "geo": {"country_iso_code": "DE"}},
            "event": {"outcome": "success" if r["success"] else "FAILURE"},
            "message": f"login {i}",
        }
        flat = {
            "@timestamp": r["timestamp"],
            **{f"user.{k}": v for k, v in user.items()},
            "source.ip": r["ip_address"],
            "event.outcome": "Success" if r["success"] else "failure",
        }
        for record in (nested, flat):
            raw = orjson.dumps(record)
            want = mapped.decode(raw, "t", 1, i)
            assert isinstance(want, Event)
            got = mapped.vouched(raw, want.ts, "t", 1, i)
            assert got is not None and _event(got) == _event(want)
            assert got.data["success"] is r["success"] and got.data["username"] == r["username"]
            checked += 1
    assert checked == 2 * len(GOOD)
