"""Judging from columns (decode/frames.py, DetectorEngine.process_frame) against Events.

A batch is read into columns only when every record is one the per-record decoder takes as
it is; an engine judges it from the columns only when its detectors all say, as a column
expression, which records can matter to them. Both must change nothing a user sees: the same
alerts, in the same order for each key, and the same dead letters, on streams with records
out of order, late, broken and forged. The reference is the per-event path
(``STREAMPROC_COLUMNS=0``, the same Judge)."""

from __future__ import annotations

import random
import re
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.config import parse_config
from streamproc.contracts import get_contract
from streamproc.decode import RawRecord, RecordDecoder
from streamproc.decode.frames import FrameReader, _times
from streamproc.detectors import REGISTRY
from streamproc.detectors.base import Detector
from streamproc.events import MAX_EPOCH, Event
from streamproc.pipeline.runtime import Judge
from streamproc.traffic import generate

pytest.importorskip("numpy")

AUTH = get_contract("auth-logs")
GOOD = [
    orjson.dumps(
        {
            "timestamp": f"2026-03-01T10:{m:02d}:{s:02d}Z",
            "username": f"u{i % 7}",
            "ip_address": f"10.0.0.{i % 5}",
            "success": i % 3 != 0,
            "country": "NL",
            "service": "vpn",
            "attempt": i,
            "score": 0.5,
        }
    )
    for i, (m, s) in enumerate((m, s) for m in range(3) for s in range(0, 60, 7))
]


def _reader() -> FrameReader:
    return FrameReader(AUTH, 1 << 20)


def test_a_clean_batch_is_read_into_columns_with_the_decoders_times() -> None:
    frame = _reader().read(GOOD)
    assert frame is not None and len(frame) == len(GOOD)
    decoder = RecordDecoder(AUTH)
    events = [decoder.decode(v) for v in GOOD]
    assert all(type(e) is Event for e in events)
    assert frame.ts.tolist() == [e.ts for e in events]  # type: ignore[union-attr]
    assert frame.column("success") == [e.data["success"] for e in events]  # type: ignore[union-attr]
    # a contract field absent from every record, and another field of every record
    assert frame.column("user_agent") == [None] * len(GOOD)  # type: ignore[union-attr]
    assert frame.column("attempt") == [e.data["attempt"] for e in events]  # type: ignore[union-attr]


def test_a_value_of_a_row_is_the_columns_value_in_frames_and_batches() -> None:
    from streamproc.detectors.columns import EventBatch, FrameBatch

    batch = _with(3, GOOD[3].replace(b',"country":"NL"', b""))  # one record without a field
    frame = _reader().read(batch)
    assert frame is not None
    decoder = RecordDecoder(AUTH)
    events = [decoder.decode(v) for v in batch]
    positions = [0, 3, 5, 9]  # the rows an engine judges (the late ones left out)
    frame_batch = FrameBatch(
        frame, positions, lambda rows: [events[i] for i in rows], "auth-logs", 0, list
    )
    event_batch = EventBatch([events[i] for i in positions])  # type: ignore[misc]
    names = ["username", "country", "attempt", "user_agent", "no_such_field"]
    fresh = FrameBatch(
        frame, positions, lambda rows: [events[i] for i in rows], "auth-logs", 0, list
    )
    values = [[fresh.value(n, i) for i in range(len(positions))] for n in names]
    assert [[frame.value(n, p) for p in positions] for n in names] == values
    for b in (frame_batch, event_batch):  # read before and after the column is built
        assert [[b.value(n, i) for i in range(len(positions))] for n in names] == values
        assert [b.column(n) for n in names] == values
        assert [[b.value(n, i) for i in range(len(positions))] for n in names] == values
    assert values[1] == ["NL", None, "NL", "NL"] and values[3] == [None] * 4


def _with(i: int, record: bytes) -> list[bytes]:
    batch = list(GOOD)
    batch[i] = record
    return batch


DECLINED = {
    "a key repeated (orjson keeps the last value; the decoder refuses it)": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"success":false}'
    ),
    "a lone surrogate": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a\\ud800",'
        b'"ip_address":"1.2.3.4","success":true}'
    ),
    "a NaN": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"score":NaN}'
    ),
    "a leap second (read back, it is another time)": (
        b'{"timestamp":"2026-03-01T23:59:60Z","username":"a","ip_address":"1.2.3.4","success":true}'
    ),
    "a time with a sign": (
        b'{"timestamp":"+2026-03-01T10:00:0Z","username":"a","ip_address":"1.2.3.4","success":true}'
    ),
    "a key repeated in a nested object": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"geo":{"c":"NL","c":"BE"}}'
    ),
    "a list holding an object and a scalar": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"tags":[{"c":"NL"},1]}'
    ),
    "a list holding a list": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"tags":[[1]]}'
    ),
    "a key repeated in an object of a list": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"tags":[{"c":"NL"},{"c":"NL","c":"BE"}]}'
    ),
    "a key repeated in an object of a list in an object": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a","ip_address":"1.2.3.4",'
        b'"success":true,"geo":{"all":[{"c":{"x":1,"x":2}}]}}'
    ),
    "an object where a contract field is due": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":{"name":"a"},'
        b'"ip_address":"1.2.3.4","success":true}'
    ),
    "a number where a string is due": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":7,"ip_address":"1.2.3.4","success":true}'
    ),
    "a string where a bool is due": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":"false"}'
    ),
    "a required field empty": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"","ip_address":"1.2.3.4","success":true}'
    ),
    "a required field missing": (
        b'{"timestamp":"2026-03-01T10:00:00Z","ip_address":"1.2.3.4","success":true}'
    ),
    "another time format": (
        b'{"timestamp":"2026-03-01 10:00:00+00:00","username":"a",'
        b'"ip_address":"1.2.3.4","success":true}'
    ),
    "an offset of 24 hours": (
        b'{"timestamp":"2026-03-01T10:00:00+24:00","username":"a",'
        b'"ip_address":"1.2.3.4","success":true}'
    ),
    "a time that is no date": (
        b'{"timestamp":"2026-02-30T10:00:00Z","username":"a","ip_address":"1.2.3.4","success":true}'
    ),
    "a time before 1970": (
        b'{"timestamp":-1,"username":"a","ip_address":"1.2.3.4","success":true}'
    ),
    "not JSON": (b'{"timestamp":"2026-03-01T10:00:00Z","username":"a"'),
    "two records on one line": GOOD[0] + b"\n" + GOOD[1],
    "an empty record": b"",
    "an array": b"[1,2]",
    "an integer beyond 64 bits": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,'
        b'"n":111111111111111111111111111111}'
    ),
    "invalid UTF-8": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a\xff",'
        b'"ip_address":"1.2.3.4","success":true}'
    ),
}


@pytest.mark.parametrize("why", sorted(DECLINED))
def test_a_batch_with_a_record_the_decoder_would_coerce_or_refuse_is_not_read(why: str) -> None:
    assert _reader().read(_with(3, DECLINED[why])) is None


TAKEN = {
    "an epoch time": (
        b'{"timestamp":1772359200,"username":"a","ip_address":"1.2.3.4","success":true}'
    ),
    "epoch milliseconds": (
        b'{"timestamp":1772359200123,"username":"a","ip_address":"1.2.3.4","success":true}'
    ),
    "a time with an offset": (
        b'{"timestamp":"2026-03-01T10:00:00.25-05:30","username":"a",'
        b'"ip_address":"1.2.3.4","success":true}'
    ),
    "a nested value": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"geo":{"c":"NL","at":{"lat":1.5,"n":[]}}}'
    ),
    "a list of objects": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a","ip_address":"1.2.3.4",'
        b'"success":true,"tags":[{"c":"NL","at":{"n":[1,null]}},{"d":null},{}]}'
    ),
    "an object null": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"geo":null}'
    ),
    "a list of scalars": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"tags":["a",1,null,true]}'
    ),
    "an empty object": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"geo":{}}'
    ),
    "an explicit null in an optional field": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"country":null}'
    ),
    "escapes": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a\\u00e9\\"b",'
        b'"ip_address":"1.2.3.4","success":true}'
    ),
    "spaces after colons and commas (as Python's json.dumps writes)": (
        b'{ "timestamp": "2026-03-01T10:00:00Z", "username": "a",'
        b' "ip_address": "1.2.3.4", "success": false }'
    ),
    "an integer in a number field, a float in an extra one": (
        b'{"timestamp":"2026-03-01T10:00:00Z","username":"a",'
        b'"ip_address":"1.2.3.4","success":true,"score":3}'
    ),
}


@pytest.mark.parametrize("what", sorted(TAKEN))
def test_records_the_decoder_takes_as_they_are_are_read_as_it_reads_them(what: str) -> None:
    batch = _with(3, TAKEN[what])
    frame = _reader().read(batch)
    assert frame is not None
    decoder = RecordDecoder(AUTH)
    events = [decoder.decode(v) for v in batch]
    assert all(type(e) is Event for e in events)
    assert frame.ts.tolist() == [e.ts for e in events]  # type: ignore[union-attr]
    names = {"username", "ip_address", "success", "country", "user_agent", "geo", "tags"}
    for name in sorted(names.union(*(e.data for e in events))):  # type: ignore[union-attr]
        assert frame.column(name) == [e.data.get(name) for e in events]  # type: ignore[union-attr]
        assert [frame.value(name, i) for i in range(len(batch))] == frame.column(name)
    assert [frame.row(i) for i in range(len(batch))] == [e.data for e in events]  # type: ignore[union-attr]


def test_keys_are_counted_where_whitespace_or_a_string_holds_a_colon() -> None:
    """The repeated-key check counts the keys written: a quote no odd run of backslashes
    escapes, then a colon, whitespace at most between; a colon in a string is none."""
    spaced = (
        b'{"timestamp":"2026-03-01T10:00:00Z","username" :"a","ip_address"\t\n:"1.2.3.4",'
        b'"success":true,"message":"sshd: \\" : {\\"user\\":\\"x\\"} : ok",'
        b'"path":"C:\\\\","service":"\\\\\\":"}'
    )
    batch = _with(3, spaced)
    frame = _reader().read(batch)
    assert frame is not None
    decoder = RecordDecoder(AUTH)
    assert [frame.row(i) for i in range(len(batch))] == [decoder.decode(v).data for v in batch]  # type: ignore[union-attr]
    # the same with a key repeated, however it is written, is left to the decoder
    for repeated in (b',"username":"b"}', b',"username" :"b"}', b',"username"\r\n:"b"}'):
        assert _reader().read(_with(3, spaced[:-1] + repeated)) is None


def test_fields_first_seen_in_a_later_batch_are_learned() -> None:
    reader = _reader()
    assert reader.read(GOOD) is not None
    later = [v[:-1] + b',"region":"eu-west-1","retries":2}' for v in GOOD]
    frame = reader.read(later)
    assert frame is not None
    assert frame.column("region") == ["eu-west-1"] * len(later)
    assert frame.column("retries") == [2] * len(later)


def _read_as_decoded(reader: FrameReader, batch: list[bytes], names: tuple[str, ...]) -> bool:
    """Read ``batch``: if a frame comes back, every record is an Event of the decoder's whose
    fields are the frame's row, and the columns ``names`` are the Events'. Whether it did."""
    frame = reader.read(batch)
    if frame is None:
        return False
    events = [RecordDecoder(AUTH).decode(v) for v in batch]
    assert all(type(e) is Event for e in events)
    assert [frame.row(i) for i in range(len(batch))] == [e.data for e in events]  # type: ignore[union-attr]
    for name in names:
        assert frame.column(name) == [e.data.get(name) for e in events]  # type: ignore[union-attr]
    return True


def test_batches_of_changing_shapes_are_read_as_the_decoder_reads_them() -> None:
    """A field in every record for a while, then in some, then in none, then back: each
    batch read holds every record as the decoder reads it (whichever Struct read it)."""
    reader = _reader()
    rng = random.Random(5)
    read = 0
    for batch_no in range(40):
        share = (1.0, 0.5, 0.0, 1.0)[batch_no // 10]
        batch = []
        for v in GOOD:
            data = orjson.loads(v)
            if rng.random() >= share:
                del data["country"]
            if batch_no % 7 == 3:
                data["region"] = "eu"
            batch.append(orjson.dumps(data))
        read += _read_as_decoded(reader, batch, ("country",))
    assert read == 40


def test_objects_that_may_be_null_and_lists_of_objects_are_read_as_the_decoder_reads_them() -> None:
    """CloudTrail's shapes: an object in some records, null or absent in others (its fields
    varying); lists of objects, empty, null or absent; an object in a list in an object.
    Every batch is read, every record as the decoder reads it, whichever Struct read it."""
    reader = _reader()
    decoder = RecordDecoder(AUTH)
    rng = random.Random(11)
    read = 0
    for batch_no in range(30):
        batch = []
        for v in GOOD:
            data = orjson.loads(v)
            pick = rng.random()
            if batch_no < 10 or pick < 0.4:
                params: Any = {"bucket": "b", "key": {"name": "k", "version": rng.randint(1, 9)}}
                if pick < 0.2:
                    params["acl"] = [{"grantee": "a", "perm": ["read"]}, {"grantee": None}]
            elif pick < 0.8:
                params = None
            else:
                params = "absent"
            if params != "absent":
                data["requestParameters"] = params
            data["resources"] = [
                [{"type": "AWS::S3::Object", "ARN": "arn:b/k"}, {"type": "x", "extra": {"n": 1}}],
                [],
                None,
                [{"ARN": "arn:c"}],
            ][rng.randrange(4) if batch_no >= 5 else 1]
            data["identity"] = {"type": "IAMUser", "session": {"attrs": [{"k": "mfa"}] * 2}}
            batch.append(orjson.dumps(data))
        read += _read_as_decoded(reader, batch, ("requestParameters", "resources", "identity"))
    assert read == 30
    # the same with a key repeated in an object of a list, or in an object that others hold
    # null, is left to the decoder
    for twice in (b'"resources":[{"ARN":"a","ARN":"b"}]', b'"requestParameters":{"k":1,"k":2}'):
        record = GOOD[0][:-1] + b"," + twice + b"}"
        assert reader.read([*batch[:3], record, *batch[3:]]) is None
        assert type(decoder.decode(record)) is not Event


@pytest.mark.parametrize(
    "values",
    [
        [1, [], None, ["a", 2]],
        [None, [], [{"a": 1}], None, [], [{"b": [{"c": None}]}]],
        [None, {"a": 1}, None, {"b": {"c": [1]}}],
    ],
    ids=["a scalar, then lists", "null, then lists of objects", "null, then objects"],
)
def test_a_field_whose_kind_shows_batch_by_batch_is_read_every_time(values: list[Any]) -> None:
    """A field seen null or an empty list only is typed by what it holds next; a scalar
    field that then holds lists holds both. Each batch is read as the decoder reads it."""
    reader = _reader()
    for value in values:
        batch = [v[:-1] + b',"extra":' + orjson.dumps(value) + b"}" for v in GOOD]
        assert _read_as_decoded(reader, batch, ("extra",)), value


def _proto(rng: random.Random, depth: int = 1) -> Any:
    """A JSON value of any shape: scalars, objects, lists of values of any kinds or of
    objects of one shape, nested."""
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return rng.choice([None, 1, 2.5, "x", True, "", -3])
    names = ["a", "b", "c", "d.e", "tags"]
    if roll < 0.6:
        return {rng.choice(names): _proto(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if roll < 0.8:
        return [_proto(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    # a list of objects of one shape (records vary which keys each holds)
    return [{rng.choice(names): _proto(rng, depth + 1) for _ in range(rng.randint(1, 3))}]


def _like(rng: random.Random, proto: Any, item: bool = False) -> Any:
    """A value of ``proto``'s kind as records vary it: an object with some of its keys or
    null (not an ``item`` of a list), a list of its items' kinds (or null)."""
    if type(proto) is dict:
        if rng.random() < 0.15 and not item:
            return None
        return {k: _like(rng, v) for k, v in proto.items() if rng.random() < 0.8}
    if type(proto) is list:
        if rng.random() < 0.1 or not proto:
            return None if proto and rng.random() < 0.5 else []
        return [_like(rng, rng.choice(proto), True) for _ in range(rng.randint(0, 3))]
    return proto if proto is None or rng.random() < 0.5 else type(proto)()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_records_of_any_nested_shape_are_read_as_the_decoder_reads_them_or_declined(
    seed: int,
) -> None:
    """Producer-like streams of nested records: each field keeps a shape that its records
    vary (keys left out, objects null, lists of objects of several lengths); in some batches
    a record holding a value of another kind, or a key repeated inside an object. Every
    batch read holds every record exactly as the decoder reads it; a batch holding a record
    it refuses is not read."""
    rng = random.Random(seed)
    decoder = RecordDecoder(AUTH)
    read = nulls = listed = 0
    for batch_no in range(200):
        if batch_no % 5 == 0:  # a binding's stream: its fields' shapes, a reader of its own
            reader = _reader()
            shapes = {n: _proto(rng) for n in rng.sample(["req", "res", "id", "list"], 3)}
        batch = []
        odd = rng.randrange(len(GOOD)) if rng.random() < 0.2 else -1
        twice = rng.randrange(len(GOOD)) if rng.random() < 0.3 else -1
        for i, v in enumerate(GOOD):
            data = orjson.loads(v)
            data.update((n, _like(rng, p)) for n, p in shapes.items() if rng.random() < 0.8)
            if i == odd:  # a value of any kind where the stream has another
                data[rng.choice(list(shapes))] = _proto(rng)
            raw = orjson.dumps(data)
            inner = [m.start() + 1 for m in re.finditer(rb'\{"', raw) if m.start()]
            if i == twice and inner:  # a key repeated in an object
                at = rng.choice(inner)
                key = raw[at : raw.index(b'"', at + 1) + 1]
                raw = raw[:at] + key + b":0," + raw[at:]
            batch.append(raw)
        refused = any(type(decoder.decode(v)) is not Event for v in batch)
        got = _read_as_decoded(reader, batch, tuple(shapes)) if not refused else False
        assert not refused or reader.read(batch) is None
        read += got
        nulls += got and any(b":null" in v for v in batch)
        listed += got and any(  # a field of a record holding a list of objects with keys
            type(value) is list and any(type(item) is dict and item for item in value)
            for v in batch
            for name, value in orjson.loads(v).items()
            if name in shapes
        )
    assert read >= 10 and nulls >= 5 and listed >= 3, (read, nulls, listed)


def test_a_stream_of_ever_new_field_names_is_left_to_the_decoder() -> None:
    """Other field names are learned up to MAX_EXTRA_FIELDS; a batch with more is judged
    per event, and a batch of known fields is still read."""
    from streamproc.decode.frames import MAX_EXTRA_FIELDS

    reader = _reader()
    hostile = [
        v[:-1] + b"," + b",".join(b'"k%d_%d":1' % (i, j) for j in range(40)) + b"}"
        for i, v in enumerate(GOOD)
    ]
    assert reader.read(hostile) is None
    assert reader.read(hostile) is None
    assert len(reader._extras) == MAX_EXTRA_FIELDS
    assert reader.read([v[:-1] + b',"k0_0":2}' for v in GOOD]) is not None


def test_a_record_over_the_size_limit_is_not_read() -> None:
    assert FrameReader(AUTH, 100).read(GOOD) is None


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["username", "success", "country", "x", "timestamp", "ip_address"]),
            _SCALARS,
        ),
        max_size=4,
    ),
    st.integers(0, len(GOOD) - 1),
)
def test_whatever_a_frame_takes_the_decoder_takes_as_it_is(
    changes: list[tuple[str, Any]], at: int
) -> None:
    """Change fields of one record: if the batch is still read, every record decodes to an
    Event with the frame's time and the frame's contract values."""
    data = orjson.loads(GOOD[at])
    for name, value in changes:
        data[name] = value
    try:
        record = orjson.dumps(data)
    except TypeError:  # an integer orjson cannot write
        return
    batch = _with(at, record)
    frame = _reader().read(batch)
    if frame is None:
        return
    decoder = RecordDecoder(AUTH)
    events = [decoder.decode(v) for v in batch]
    assert all(type(e) is Event for e in events)
    assert frame.ts.tolist() == [e.ts for e in events]  # type: ignore[union-attr]
    for name in ("username", "ip_address", "success", "country"):
        assert frame.column(name) == [e.data.get(name) for e in events]  # type: ignore[union-attr]


# keys another field may take (a repeated key now and then), and values of every kind: most
# of them scalars a frame may hold, some it must not
_KEYS = ["x", "n", "é", "a b", "country", "user_agent", "x", "n", "é", "success"]
_JSON_VALUES = [
    '"a"',
    '""',
    '"a\\"b"',
    '"\\u00e9"',
    '"x\\":y"',
    '"é"',
    '"NL"',
    "true",
    "false",
    "null",
    "0",
    "-0",
    "1.0",
    "1e2",
    "0.1",
    "3",
    "-7",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e400",
    '"\\ud800"',
    "{}",
    "[1]",
    "[]",
    '{"c":null}',
    '{"c":{"d":[{"e":1}]}}',
    '[{"c":1}]',
    '[{"c":1,"c":2}]',
    '[{}, {"c":"a"}]',
    '[{"a":[{"b":null}]}]',
    "[[1]]",
    '[{"c":1},2]',
    "[null]",
]


@st.composite
def _raw_records(draw: Any) -> bytes:
    """An auth record written by hand: fields added (a key repeated now and then), any JSON
    value in them, whitespace where JSON allows it (and once in a while before a colon)."""
    pairs = [
        ('"timestamp"', draw(st.sampled_from(['"2026-03-01T10:00:00Z"'] * 9 + ['"2026-3-1"']))),
        ('"username"', '"u"'),
        ('"ip_address"', '"10.0.0.1"'),
        ('"success"', "true"),
    ]
    for _ in range(draw(st.integers(1, 2))):
        pairs.insert(
            draw(st.integers(0, len(pairs))),
            (f'"{draw(st.sampled_from(_KEYS))}"', draw(st.sampled_from(_JSON_VALUES))),
        )
    space = st.sampled_from([""] * 30 + [" ", "\n", "\t"])
    body = ",".join(f"{draw(space)}{k}{draw(space)}:{draw(space)}{v}" for k, v in pairs)
    return ("{" + body + draw(space) + "}").encode()


@settings(max_examples=500, deadline=None)
@given(st.lists(_raw_records(), min_size=1, max_size=2), st.integers(0, len(GOOD) - 1))
def test_a_frame_holds_every_record_exactly_as_the_decoder_reads_it(
    records: list[bytes], at: int
) -> None:
    """Records written by hand among clean ones: if the batch is read, every record decodes
    to an Event whose time is the frame's and whose fields are the frame's row, all of them
    (the other fields too)."""
    batch = list(GOOD)
    batch[at : at + len(records)] = records
    reader = _reader()
    frame = reader.read(batch)
    if frame is None:
        return
    decoder = RecordDecoder(AUTH)
    events = [decoder.decode(v) for v in batch]
    assert all(type(e) is Event for e in events), [getattr(e, "reason", "") for e in events]
    assert frame.ts.tolist() == [e.ts for e in events]  # type: ignore[union-attr]
    for i, e in enumerate(events):
        row = frame.row(i)  # type: ignore[union-attr]
        assert row == e.data
        assert [type(v) for v in row.values()] == [type(e.data[k]) for k in row]  # 1 is not 1.0
        for name in ("username", "success", "country", "x"):
            assert frame.column(name)[i] == e.data.get(name)  # type: ignore[union-attr]


# -- the engine: columns against Events ---------------------------------------------------

COLUMN_KINDS = sorted(
    k for k, cls in REGISTRY.items() if cls.column_prefilter is not Detector.column_prefilter
)
READS_COLUMNS = sorted(k for k, cls in REGISTRY.items() if cls.reads_columns)


def test_the_built_ins_that_judge_from_columns() -> None:
    assert {
        "brute_force",
        "password_spray",
        "distributed_brute_force",
        "sql_injection",
        "pipeline_failed",
        "deployment",
        "ticket_created",
    } <= set(COLUMN_KINDS)
    assert {"host_silent", "rate_abuse", "unusual_login"} <= set(READS_COLUMNS)
    assert {"metric_threshold", "compromise_suspected"} <= set(COLUMN_KINDS)


def _config(family: str, kinds: set[str], keyed_by: str | None = None) -> Any:
    off = {
        k: {"enabled": False}
        for k, cls in REGISTRY.items()
        if cls.family == family and k not in kinds
    }
    topic = get_contract(family).kafka_topic
    binding: dict[str, Any] = {"topic": topic, "family": family, "detectors": off}
    if keyed_by is not None:
        binding["keyed_by"] = keyed_by
    return parse_config({"topics": [binding]}, file=None)


def _as(ts_format: str, stamp: str) -> str:
    """A "...Z" time in the stream's own format (the late and forged ones are written so)."""
    return stamp[:-1] + ".250Z" if ts_format == "iso_ms" else stamp


def _stream(
    scenario: str, family: str, n: int, seed: int, trouble: bool, ts_format: str = "iso"
) -> list[RawRecord]:
    """The scenario's records of ``family`` on 3 partitions; with ``trouble``: neighbours
    swapped (out of order), records an hour or two behind (late), a forged time two days
    ahead (a jump) and now and then a broken record."""
    topic = get_contract(family).kafka_topic
    rng = random.Random(seed)
    offsets: dict[int, int] = {}
    out: list[RawRecord] = []
    for fam, key, value in generate(scenario, n, seed=seed, ts_format=ts_format).merged_bytes():
        if fam != family:
            continue
        partition = zlib.crc32(key or b"") % 3
        if trouble:
            roll = rng.random()
            if roll < 0.004:
                data = orjson.loads(value)
                data["timestamp"] = _as(ts_format, "2020-01-01T00:00:00Z")
                value = orjson.dumps(data)
            elif roll < 0.0045:
                data = orjson.loads(value)
                data["timestamp"] = _as(ts_format, "2099-01-01T00:00:00Z")  # forged: a jump
                value = orjson.dumps(data)
            elif roll < 0.005:
                value = value[: len(value) // 2]
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        out.append(RawRecord(value, topic, partition, offset, key))
        if (
            trouble
            and rng.random() < 0.05
            and len(out) >= 2
            and out[-1].partition == out[-2].partition
        ):
            a, b = out[-2], out[-1]
            out[-2] = RawRecord(b.value, a.topic, a.partition, a.offset, b.key)
            out[-1] = RawRecord(a.value, b.topic, b.partition, b.offset, a.key)
    return out


def _judge(
    config: Any,
    records: list[RawRecord],
    batch: int,
    columns: bool,
    monkeypatch: pytest.MonkeyPatch,
    live: bool = False,
) -> tuple[list[Any], list[Any], Judge]:
    """Judge ``records`` a partition's run at a time; ``live``: with a wall clock (the
    ``future`` rule) and ``now`` moving on by a second a call, as the runtime judges."""
    monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
    wall = [1_900_000_000.0]  # 2030: the generated streams are in 2026; 2099 is the future
    judge = Judge(config, partitioned=True, clock=(lambda: wall[0]) if live else None)
    alerts: list[Any] = []
    dead: list[Any] = []
    # each batch one partition's run, as a Kafka fetch brings them
    by_partition: dict[int, list[RawRecord]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    rounds = max(len(v) for v in by_partition.values())
    for i in range(0, rounds, batch):
        for partition in sorted(by_partition):
            chunk = by_partition[partition][i : i + batch]
            if chunk:
                wall[0] += 1.0
                out, dls = judge.judge(chunk, "kafka", wall[0] if live else None)
                alerts.extend(out)
                dead.extend(dls)
    alerts.extend(judge.finish())
    dead.extend(judge.final_dead)
    return alerts, dead, judge


def _alert_rows(alerts: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            a.kind,
            a.status,
            a.fingerprint,
            a.event_time,
            a.severity,
            a.title,
            orjson.dumps(a.evidence, option=orjson.OPT_SORT_KEYS),
        )
        for a in alerts
    ]


def _dead_rows(dead: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((d.reason, d.topic, d.partition, d.offset, d.detail) for d in dead)


CASES = [
    ("auth", "auth-logs", {"brute_force"}),
    ("auth", "auth-logs", {"brute_force", "password_spray", "distributed_brute_force"}),
    ("api", "api-access-logs", {"sql_injection"}),
    ("api", "api-access-logs", {"sql_injection", "rate_abuse"}),
    ("hosts", "host-metrics", {"host_silent"}),
    ("hosts", "host-metrics", {"host_silent", "metric_threshold"}),
    (
        "auth",
        "auth-logs",
        {
            "brute_force",
            "password_spray",
            "distributed_brute_force",
            "unusual_login",
            "compromise_suspected",
        },
    ),
    ("auth", "auth-logs", {"compromise_suspected"}),  # its own private brute_force
    ("cicd", "cicd-events", {"pipeline_failed", "deployment"}),
    ("tickets", "support-tickets", {"ticket_created"}),
]


@pytest.mark.parametrize("trouble", [False, True], ids=["clean", "late-forged-broken"])
@pytest.mark.parametrize(
    ("scenario", "family", "kinds"), CASES, ids=[f"{c[0]}-{'+'.join(sorted(c[2]))}" for c in CASES]
)
def test_judging_from_columns_gives_what_judging_events_gives(
    scenario: str, family: str, kinds: set[str], trouble: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _stream(scenario, family, 16000, seed=5, trouble=trouble)
    config = _config(family, kinds)
    want_alerts, want_dead, _ = _judge(config, records, 600, False, monkeypatch)
    got_alerts, got_dead, judge = _judge(config, records, 600, True, monkeypatch)
    assert want_alerts, "the stream raises alerts"
    assert _alert_rows(got_alerts) == _alert_rows(want_alerts)
    assert _dead_rows(got_dead) == _dead_rows(want_dead)
    if trouble:
        assert {d.reason for d in want_dead} >= {"late", "not_json"}
    reader = judge.frames[get_contract(family).kafka_topic]
    assert reader is not None
    batches = -(-len(records) // 600)
    # the columns judged most batches (not the first of each partition: it starts the
    # partition's stream time; with trouble, not those holding a broken or forged record)
    assert reader.declined < batches / (2 if trouble else 8)
    # (late records are judged from columns too: only broken and forged ones are not)
    assert judge.frame_batches >= batches / (4 if trouble else 1.5)
    assert judge.frame_strays == 0


@pytest.mark.parametrize(
    ("scenario", "family", "kinds"),
    [CASES[1], CASES[5], CASES[6]],
    ids=["auth", "hosts", "auth-all"],
)
def test_live_judging_from_columns_gives_what_judging_events_gives(
    scenario: str, family: str, kinds: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a wall clock and ``now``: the forged records are from the future now."""
    records = _stream(scenario, family, 12000, seed=8, trouble=True)
    config = _config(family, kinds)
    want_alerts, want_dead, _ = _judge(config, records, 600, False, monkeypatch, live=True)
    got_alerts, got_dead, judge = _judge(config, records, 600, True, monkeypatch, live=True)
    assert _alert_rows(got_alerts) == _alert_rows(want_alerts)
    assert _dead_rows(got_dead) == _dead_rows(want_dead)
    assert {d.reason for d in want_dead} >= {"late", "future", "not_json"}
    assert judge.frame_batches > 0


@pytest.mark.parametrize("columns", [True, False])
def test_a_fetch_of_several_partitions_is_judged_the_same_given_its_runs(
    columns: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kafka fetch hands the judge its records and the same records as runs of one
    partition each: sorted into tasks a run at a time, the outcome is the record-at-a-time
    sort's."""
    monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
    records = _stream("auth", "auth-logs", 12000, seed=6, trouble=True)
    config = _config("auth-logs", {"brute_force", "password_spray", "unusual_login"})
    by_partition: dict[int, list[RawRecord]] = {}
    for r in records:
        by_partition.setdefault(r.partition, []).append(r)
    outcomes = []
    for with_runs in (True, False):
        judge = Judge(config, partitioned=True)
        alerts: list[Any] = []
        dead: list[Any] = []
        for i in range(0, max(map(len, by_partition.values())), 700):
            runs = [run[i : i + 700] for run in by_partition.values() if run[i : i + 700]]
            fetched = [r for run in runs for r in run]
            out, dls = judge.judge(fetched, "kafka", None, runs if with_runs else None)
            alerts.extend(out)
            dead.extend(dls)
        alerts.extend(judge.finish())
        dead.extend(judge.final_dead)
        outcomes.append((_alert_rows(alerts), _dead_rows(dead), judge.frame_batches))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] and outcomes[0][1]
    assert (outcomes[0][2] > 0) == columns


@pytest.mark.parametrize("keyed_by", [None, "username"])
@pytest.mark.parametrize("trouble", [False, True])
def test_the_copies_a_binding_re_keys_are_the_same_from_columns(
    trouble: bool, keyed_by: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auth-logs is keyed by username; password_spray counts by ip_address, so every
    record is also shipped, re-keyed, to a repartition topic. Judged from columns, the
    copies are written around the records as they came: decoded, each is the copy the
    per-event path ships (same topic, key, time, fields and origin, in the same order)."""
    from streamproc.pipeline.repartition import decode

    records = _stream("auth", "auth-logs", 8000, seed=8, trouble=trouble)
    config = _config("auth-logs", {"brute_force", "password_spray"}, keyed_by)
    shipped = []
    for columns in (True, False):
        monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
        judge = Judge(config, partitioned=True, repartition=True)
        assert judge.repartition_targets
        copies = []
        for i in range(0, len(records), 600):
            judge.judge(records[i : i + 600], "kafka")
            copies += [(t, k, decode(v)) for t, k, v in judge.take_outbox()]
        shipped.append((copies, judge.frame_batches))
    (from_columns, framed), (per_event, _) = shipped
    assert framed > 0
    assert len(from_columns) == len(per_event) > 0
    assert from_columns == per_event


@pytest.mark.parametrize("trouble", [False, True], ids=["clean", "late-forged-broken"])
def test_times_in_milliseconds_are_judged_from_columns_as_events(
    trouble: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JavaScript's and Java's "...:SS.fffZ": the columns take them, with the same alerts and
    dead letters."""
    scenario, family, kinds = CASES[6]
    records = _stream(scenario, family, 12000, seed=11, trouble=trouble, ts_format="iso_ms")
    assert b"." in orjson.loads(records[0].value)["timestamp"].encode()
    config = _config(family, kinds)
    want_alerts, want_dead, _ = _judge(config, records, 600, False, monkeypatch)
    got_alerts, got_dead, judge = _judge(config, records, 600, True, monkeypatch)
    assert want_alerts, "the stream raises alerts"
    assert _alert_rows(got_alerts) == _alert_rows(want_alerts)
    assert _dead_rows(got_dead) == _dead_rows(want_dead)
    assert judge.frame_batches >= -(-len(records) // 600) / (4 if trouble else 1.5)


def test_an_engine_with_a_detector_that_reads_no_columns_judges_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = _stream("tickets", "support-tickets", 3000, seed=3, trouble=False)
    config = _config("support-tickets", {"ticket_created", "sla_breach"})
    assert not REGISTRY["sla_breach"].reads_columns
    monkeypatch.setenv("STREAMPROC_COLUMNS", "1")
    judge = Judge(config, partitioned=True)
    for i in range(0, len(records), 500):
        judge.judge(records[i : i + 500], "kafka")
    assert judge.engines and all(not e.takes_frames() for e in judge.engines.values())
    reader = judge.frames["support-tickets"]
    assert reader is not None and reader.declined == 0  # never asked to read


# compromise_suspected's column prefilter is narrower than its prefilter on purpose (only the
# pairs brute_force fired for), as is sql_injection's (only the endpoints ``match`` names
# something in): the differential tests above are their check, and the tests below
NARROWER = {"compromise_suspected", "sql_injection"}


@pytest.mark.parametrize("kind", [k for k in COLUMN_KINDS if k not in NARROWER])
def test_a_column_prefilter_selects_what_the_prefilter_passes(kind: str) -> None:
    """On a family's generated records: every record the Python prefilter passes, the
    column expression selects (it may select more, never less)."""
    cls = REGISTRY[kind]
    scenario = {
        "auth-logs": "auth",
        "api-access-logs": "api",
        "cicd-events": "cicd",
        "support-tickets": "tickets",
        "host-metrics": "hosts",
        "business-metrics": "business",
    }[cls.family]
    values = [
        v for fam, _, v in generate(scenario, 4000, seed=2).merged_bytes() if fam == cls.family
    ]
    contract = get_contract(cls.family)
    decoder = RecordDecoder(contract)
    reader = FrameReader(contract, 1 << 20)
    detector = cls()
    checked = 0
    for i in range(0, len(values), 500):
        chunk = values[i : i + 500]
        frame = reader.read(chunk)
        if frame is None:
            continue
        events = [decoder.decode(v) for v in chunk]
        predicate = detector.prefilter()
        expr = detector.column_prefilter()
        if predicate is None or expr is None:
            continue
        passed = [predicate(e.data) for e in events]  # type: ignore[union-attr]
        selected = set(frame.where(expr))
        assert all(i in selected for i, p in enumerate(passed) if p)
        checked += 1
    assert checked, f"no batch of {cls.family} was read into columns"


def test_sql_injection_selects_the_records_whose_endpoint_matches() -> None:
    """On the api stream with its injected attacks: the column prefilter selects exactly the
    records whose endpoint ``match`` names something in, the only ones ``process`` does
    anything with; the ordinary suspicious ones ("?q=running+shoes") stay out."""
    from streamproc.detectors.sql_injection import match, suspicious

    values = [
        v for fam, _, v in generate("api", 6000, seed=2).merged_bytes() if fam == "api-access-logs"
    ]
    reader = FrameReader(get_contract("api-access-logs"), 1 << 20)
    detector = REGISTRY["sql_injection"]()
    matched = passed = 0
    for i in range(0, len(values), 500):
        frame = reader.read(values[i : i + 500])
        assert frame is not None
        endpoints = [orjson.loads(v)["endpoint"] for v in values[i : i + 500]]
        want = [j for j, e in enumerate(endpoints) if match(e)]
        assert frame.where(detector.column_prefilter()) == want
        matched += len(want)
        passed += sum(map(suspicious, endpoints))
    assert 0 < matched < passed


_ENDPOINT_TEXT = st.text(alphabet="ab/-*'\" %;(#`\\|+\t\n\r\x00\x0b\x7fé€", max_size=8)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_ENDPOINT_TEXT, st.text(max_size=8)), max_size=12))
def test_suspicious_rows_are_the_endpoints_suspicious_passes(endpoints: list[str]) -> None:
    """Read as one array of bytes (ASCII: the batch's endpoints joined), or one at a time:
    the same endpoints as ``suspicious`` passes, "--" and "/*" never found across two."""
    from streamproc.detectors.sql_injection import suspicious, suspicious_rows

    assert suspicious_rows(endpoints) == [i for i, e in enumerate(endpoints) if suspicious(e)]


def _parsed(stamps: list[Any]) -> list[float | None]:
    """Each stamp as parse_timestamp reads it, None where it refuses it."""
    from streamproc.events import CoercionError, parse_timestamp

    want: list[float | None] = []
    for s in stamps:
        try:
            want.append(parse_timestamp(s))
        except (CoercionError, ValueError):
            want.append(None)
    return want


def _stamp(*ranges: tuple[int, int]) -> st.SearchStrategy[str]:
    """``YYYY-MM-DDTHH:MM:SSZ`` of year, month, day, hour, minute and second in ``ranges``."""
    return st.builds(
        lambda y, mo, d, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
        *(st.integers(lo, hi) for lo, hi in ranges),
    )


# every field a little past what it can be
_STAMP = _stamp((0, 9999), (0, 13), (0, 32), (0, 25), (0, 61), (0, 61))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(_STAMP, st.text(alphabet="0123456789-T:Z ", min_size=20, max_size=20)),
        min_size=1,
        max_size=5,
    )
)
def test_times_read_from_columns_are_parse_timestamps_or_refused(stamps: list[str]) -> None:
    """Any 20-character time: the columns read it as parse_timestamp does, or not at all
    (never a time the decoder refuses, never another time)."""
    got = _times(stamps)
    want = _parsed(stamps)
    if got is None:
        return
    assert list(got) == want


@st.composite
def _fractional_stamps(draw: Any) -> list[str]:
    """A column of times with one number of fraction digits, some bent out of shape."""
    places = draw(st.integers(1, 9))
    digits = st.text(alphabet="0123456789", min_size=places, max_size=places)
    bent = st.text(alphabet="0123456789.Z:-T_ \u0663", min_size=places, max_size=places)
    stamps = draw(
        st.lists(
            st.builds(
                lambda whole, frac: whole[:-1] + "." + frac + "Z",
                _STAMP,
                st.one_of(digits, digits, digits, bent),
            ),
            min_size=1,
            max_size=6,
        )
    )
    return stamps


@settings(max_examples=300, deadline=None)
@given(_fractional_stamps())
def test_times_with_fractions_read_from_columns_are_parse_timestamps_or_refused(
    stamps: list[str],
) -> None:
    """Times with a fraction of a second (one width in the column): the columns read each
    as the very float parse_timestamp gives, or refuse the column."""
    got = _times(stamps)
    want = _parsed(stamps)
    if got is None:
        return
    assert list(got) == want


_REAL_STAMP = _stamp((1970, 2200), (1, 12), (1, 28), (0, 23), (0, 59), (0, 59))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda whole, frac: whole if frac is None else whole[:-1] + "." + frac + "Z",
            _REAL_STAMP,
            st.one_of(st.none(), st.text(alphabet="0123456789", min_size=1, max_size=9)),
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.text(alphabet="0123456789.Z:-T_ ", min_size=20, max_size=30), max_size=2),
)
def test_times_of_several_widths_are_read_a_width_at_a_time(
    stamps: list[str], bent: list[str]
) -> None:
    """Go and Java drop a fraction's trailing zeros: a column mixes widths (none to nine
    digits). Real times are all read, each as parse_timestamp reads it; with a bent one
    among them, the column is read the same or refused."""
    got = _times(stamps)
    assert got is not None
    assert list(got) == _parsed(stamps)
    mixed = stamps + bent
    got = _times(mixed)
    if got is not None:
        assert list(got) == _parsed(mixed)


@settings(max_examples=300, deadline=None)
@given(
    _STAMP,
    st.lists(
        st.builds(
            lambda h, m, s: f"T{h:02d}:{m:02d}:{s:02d}Z",
            st.integers(0, 25),
            st.integers(0, 61),
            st.integers(0, 61),
        ),
        min_size=2,
        max_size=6,
    ),
)
def test_times_of_one_date_are_parse_timestamps_or_refused(date: str, times: list[str]) -> None:
    """A batch of one date (the common case, read with the date's days computed once)."""
    stamps = [date[:10] + t for t in times]
    got = _times(stamps)
    want = _parsed(stamps)
    if got is None:
        assert None in want
        return
    assert list(got) == want


_ZONES = st.one_of(
    st.just("Z"),
    st.builds(
        lambda sign, h, m, colon: f"{sign}{h:02d}{':' if colon else ''}{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 25),
        st.integers(0, 59),  # (Python takes "+0060" for an hour: left to parse_timestamp)
        st.booleans(),
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda whole, frac, zone: whole[:-1] + ("" if frac is None else "." + frac) + zone,
            st.one_of(
                _REAL_STAMP, st.sampled_from(["1970-01-01T00:59:59Z", "9999-12-31T23:59:59Z"])
            ),
            st.one_of(st.none(), st.text(alphabet="0123456789", min_size=1, max_size=9)),
            _ZONES,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_times_with_an_offset_are_parse_timestamps_or_refused(stamps: list[str]) -> None:
    """nginx's $time_iso8601 and Python's isoformat() write an offset (±HH:MM, or ±HHMM):
    each read as parse_timestamp reads it; refused only for a time it would not take (an
    hour or minute of the offset out of range, a time before 1970 or past MAX_EPOCH)."""
    got = _times(stamps)
    want = _parsed(stamps)
    if got is None:
        # (the last second in range with a fraction, even .0, is left to parse_timestamp)
        assert None in want or max(want) >= MAX_EPOCH, stamps  # type: ignore[type-var]
    else:
        assert list(got) == want


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.integers(0, 10**19 // 1000).map(lambda v: v * 1000 + 7),
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(0, 2.6e11),
            st.sampled_from([0, -0.0, 1e11, 1e14, 1e17, 99999999999, 253402300799, 2.534023008e11]),
            st.sampled_from(["2026-03-01T10:00:00Z", "2026-03-01T10:00:00.5+01:00"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_epoch_times_are_parse_timestamps_or_refused(stamps: list[Any]) -> None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, ints or floats, among
    texts or not: each read as parse_timestamp reads it, refused only where it refuses one."""
    got = _times(stamps)
    want = _parsed(stamps)
    if got is None:
        assert None in want, stamps
    else:
        assert [repr(v) for v in got.tolist()] == [repr(v) for v in want]


def test_times_with_milliseconds_are_read() -> None:
    from streamproc.events import parse_timestamp

    stamps = [
        "1970-01-01T00:00:00.001Z",
        "2024-02-29T23:59:59.999Z",
        "2026-03-01T00:00:15.438Z",
        "9999-12-31T23:59:58.500Z",
    ]
    got = _times(stamps)
    assert got is not None and list(got) == [parse_timestamp(s) for s in stamps]
    micro = [s[:-1] + "123Z" for s in stamps]
    got = _times(micro)
    assert got is not None and list(got) == [parse_timestamp(s) for s in micro]
    zero = ["2026-03-01T00:00:15.000Z", "1970-01-01T00:00:00.000Z", stamps[2]]
    got = _times(zero)
    assert got is not None and list(got) == [parse_timestamp(s) for s in zero]
    # widths that differ are read a width at a time
    mixed = [stamps[0], micro[0], "2026-03-01T00:00:15Z", "2026-03-01T00:00:15.4Z"]
    got = _times(mixed)
    assert got is not None and list(got) == [parse_timestamp(s) for s in mixed]


def test_times_of_real_dates_are_read() -> None:
    from streamproc.events import parse_timestamp

    stamps = [
        "1970-01-01T00:00:00Z",
        "2024-02-29T23:59:59Z",
        "2100-12-31T12:00:00Z",
        "9999-12-31T23:58:59Z",
        "2026-03-01T10:00:00Z",
    ]
    got = _times(stamps)
    assert got is not None and list(got) == [parse_timestamp(s) for s in stamps]
    for bad in (
        "2023-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-03-01T24:00:00Z",
        "2026-03-01T23:59:60Z",
        "1969-12-31T23:59:59Z",
        "2026-03-01 10:00:00Z",
    ):
        assert _times(stamps + [bad]) is None, bad


def test_how_batches_were_judged_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamproc.ops.metrics import Metrics

    records = _stream("auth", "auth-logs", 6000, seed=4, trouble=False)
    config = _config("auth-logs", {"brute_force"})
    monkeypatch.setenv("STREAMPROC_COLUMNS", "1")
    metrics = Metrics(process_metrics=False)
    judge = Judge(config, metrics=metrics, partitioned=True)
    for i in range(0, len(records), 1500):
        judge.judge(records[i : i + 1500], "kafka")

    def count(path: str) -> float:
        return (
            metrics.registry.get_sample_value(
                "streamproc_batches_judged_total", {"binding": "auth-logs", "path": path}
            )
            or 0.0
        )

    assert count("columns") == judge.frame_batches > 0
    assert count("events") > 0  # the first batch of each partition starts its stream time


def test_judging_from_columns_is_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamproc.decode.frames import columns_enabled

    monkeypatch.delenv("STREAMPROC_COLUMNS", raising=False)
    assert columns_enabled()
    assert any(r is not None for r in Judge(_config("auth-logs", {"brute_force"})).frames.values())
    monkeypatch.setenv("STREAMPROC_COLUMNS", "0")
    assert not columns_enabled()
    assert all(r is None for r in Judge(_config("auth-logs", {"brute_force"})).frames.values())


def test_a_column_with_a_fraction_past_the_last_second_in_range_is_left_to_the_decoder() -> None:
    assert _times(["9999-12-31T23:59:59.5Z"]) is None
    assert _times(["9999-12-31T23:59:59.000001Z", "2026-01-01T00:00:00.000001Z"]) is None
    assert _times(["9999-12-31T23:59:59Z"]) is not None  # the last second itself is in range
    assert _times(["9999-12-31T23:58:59.5Z"]) is not None


def test_a_batch_with_a_time_past_max_epoch_dead_letters_it_as_a_year_10000_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the runtime's Judge, columns on: the record is refused for its time, with the
    reason a time of the year 10000 gets, and the records around it are judged. (A stream in
    the last hour of the range: for the frame, the time is no jump to leave to the decoder.)"""
    monkeypatch.setenv("STREAMPROC_COLUMNS", "1")
    config = _config("auth-logs", {"brute_force"})

    def batch(first: int, stamp: str | None = None) -> list[RawRecord]:
        rows = [
            {
                "timestamp": f"9999-12-31T23:{i // 60:02d}:{i % 60:02d}.250Z",
                "username": f"u{i % 7}",
                "ip_address": "10.0.0.1",
                "success": True,
            }
            for i in range(first, first + 300)
        ]
        if stamp is not None:
            rows[150]["timestamp"] = stamp
        return [RawRecord(orjson.dumps(r), "auth-logs", 0, first + i) for i, r in enumerate(rows)]

    def dead(stamp: str) -> list[tuple[str, int]]:
        judge = Judge(config, partitioned=True)
        assert judge.judge(batch(0), "kafka", None)[1] == []
        judge.judge(batch(300), "kafka", None)
        assert judge.frame_batches == 1  # a clean batch after the first is judged from columns
        _, dls = judge.judge(batch(600, stamp), "kafka", None)
        return [(d.reason, d.offset) for d in dls]

    assert dead("9999-12-31T23:59:59.5Z") == dead("10000-01-01T00:00:00.5Z")
    assert dead("9999-12-31T23:59:59.5Z") == [("bad_timestamp", 750)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(allow_nan=False), st.integers(-10, 10)), max_size=8),
    st.floats(-5, 5),
)
def test_metric_threshold_calls_a_column_calm_only_when_no_value_is_over(
    values: list[Any], level: float
) -> None:
    from streamproc.detectors.metric_threshold import _calm, _over

    if _calm(values, level):
        assert not any(_over(values, level))


def test_metric_threshold_selects_every_sample_of_a_host_over_a_level_and_none_else() -> None:
    """A frame's number column holds no NaN (the reader declines the batch), so its largest
    value says whether any is over a level: a calm batch selects nothing, one host over a
    level (with other samples lacking that metric) selects that host's every sample."""
    contract = get_contract("host-metrics")

    def sample(i: int, host: str, cpu: float | None) -> bytes:
        record: dict[str, Any] = {"timestamp": f"2026-03-01T12:00:{i:02d}Z", "host": host}
        if cpu is not None:
            record["cpu_percent"] = cpu
        return orjson.dumps({**record, "memory_percent": 10.0})

    calm = [sample(i, f"h{i % 3}", 10.0 + i) for i in range(30)]
    hot = calm[:10] + [sample(10, "h2", 99.0)] + [sample(i, "h1", None) for i in range(11, 30)]
    nan = [*calm[:29], calm[29].replace(b"39.0", b"NaN")]
    detector = REGISTRY["metric_threshold"]()
    reader = FrameReader(contract, 1 << 20)
    assert reader.read(nan) is None
    calm_frame, hot_frame = reader.read(calm), reader.read(hot)
    assert calm_frame is not None and hot_frame is not None
    assert calm_frame.where(detector.column_prefilter()) == []
    assert hot_frame.where(detector.column_prefilter()) == [2, 5, 8, 10]


def test_numpy_is_imported_in_a_thread_while_a_worker_waits() -> None:
    """The first batch read into columns should not pay numpy's import: the runtime starts
    it in a thread of its own while the consumer group joins."""
    import subprocess
    import sys

    code = (
        "import sys, threading\n"
        "from streamproc.decode.frames import import_numpy_meanwhile\n"
        "assert 'numpy' not in sys.modules\n"
        "before = set(threading.enumerate())\n"
        "import_numpy_meanwhile()\n"
        "(thread,) = set(threading.enumerate()) - before\n"
        "assert thread.daemon\n"
        "thread.join(60)\n"
        "assert 'numpy' in sys.modules\n"
        "import_numpy_meanwhile()\n"  # imported: no second thread
        "assert threading.active_count() == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_stream_of_ever_new_nested_names_stops_being_learnt_then_is_looked_at_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Objects whose keys never repeat (a pod name as a key) fill the fields learnt: from
    then on a batch is left to the decoder without parsing it first, one in 64 aside."""
    import types

    from streamproc.decode import frames

    parsed: list[bytes] = []

    def loads(value: bytes) -> Any:
        parsed.append(value)
        return orjson.loads(value)

    monkeypatch.setattr(
        frames, "orjson", types.SimpleNamespace(loads=loads, JSONDecodeError=orjson.JSONDecodeError)
    )
    reader = _reader()
    batches = 0
    for batch_no in range(300):
        batch = [
            v[:-1] + b',"labels":{"pod-%d-%d":"x"}}' % (batch_no, i) for i, v in enumerate(GOOD)
        ]
        if reader.read(batch) is None:
            batches += 1
    learning = len(parsed) // len(GOOD)  # batches parsed to learn from
    assert batches > 250 and learning < 60, (batches, learning)
    assert reader.read(GOOD) is not None  # a batch read: learning resumes
    assert reader.read([v[:-1] + b',"region":"eu"}' for v in GOOD]) is not None


def test_the_event_time_is_typed_to_take_a_number_once_one_is_seen_there_only() -> None:
    """msgspec reads text faster than a union: a number in another text field (a record the
    decoder refuses) leaves the event time typed as text."""
    reader = _reader()
    assert reader.read(_with(3, DECLINED["a number where a string is due"])) is None
    assert reader.read(GOOD) is not None and not reader._epoch_times
    assert reader.read(_with(3, TAKEN["an epoch time"])) is not None and reader._epoch_times
