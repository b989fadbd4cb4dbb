"""Judging a binding with a field mapping from columns (decode/frames.py, ``_Mapped``).

A frame of a mapped binding computes each mapped contract field from the source columns of
flat records; it must give, for every record, what ``FieldMapping.apply`` and the decoder's
checks give (the same value of the same type, the same fields present), or decline the batch.
The reference is the binding's RecordDecoder, record by record; the property tests draw
mappings (renames, dotted literal keys, candidate lists, value maps with mixed-case keys and
non-string values, defaults) and records made to fit them, then bent (missing and null
fields, wrong types, enum misses, empty strings, times in and out of the fast format, raw
bytes a producer should not write)."""

from __future__ import annotations

import random
import re
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.config import parse_config
from streamproc.contracts import get_contract, parse_contract
from streamproc.decode import RawRecord, RecordDecoder
from streamproc.decode.frames import FrameReader, _times, frame_reader_for
from streamproc.decode.mapping import FieldMapping, compile_path
from streamproc.events import Event
from streamproc.pipeline.runtime import Judge
from streamproc.traffic import generate

pytest.importorskip("numpy")

# a contract with a field of every kind a check treats apart
CONTRACT = parse_contract(
    {
        "family": "mapped-test",
        "fields": {
            "timestamp": {"type": "timestamp", "required": True},
            "user": {"type": "string", "required": True},
            "ok": {"type": "bool", "required": True},
            "kind": {"type": "string", "enum": ["login", "Logout", "mfa"]},
            "port": {"type": "int"},
            "took": {"type": "number"},
            "seen_at": {"type": "timestamp"},
            "note": {"type": "string"},
        },
    },
    "mapped-test.yaml",
)
# keys of the records a rule may read: renamed, flattened ECS (a dotted key is one literal
# key in a flat record), and the contract's own names (a record holding both a contract-named
# key and the source mapped onto it)
SOURCES = [
    "@timestamp",
    "user.name",
    "event.outcome",
    "remote_addr",
    "status",
    "a.b.c",
    "Src",
    "user",
    "ok",
    "note",
    "kind",
    "port",
]
EXTRAS = ["x", "y.z", "took"]
# value-map keys: mixed case, and the strings non-strings are looked up as ("true", "1",
# "1.0", "-0.0": str(value).lower())
MAP_KEYS = [
    "success",
    "Success",
    "FAILURE",
    "failure",
    "true",
    "True",
    "false",
    "1",
    "1.0",
    "0",
    "-0.0",
    "none",
    "Login",
    "logout",
    "MFA",
    "",
]
CONSTANTS = [True, False, None, "login", "Logout", "LOGIN", "mfa", "", "u", 7, 0, 2.5, -0.0, 7.0]
# the map values and defaults of a field's type (check-config refuses others, but a mapping
# built in code may hold them: CONSTANTS, now and then)
FIT: dict[str, list[Any]] = {
    "timestamp": ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00.5Z"],
    "user": ["u", "Success", "login"],
    "ok": [True, False],
    "kind": ["login", "Logout", "mfa"],
    "port": [7, 0],
    "took": [2.5, -0.0, 7.0, 3],
    "seen_at": ["2026-03-01T10:00:00Z", 1772359200],
    "note": ["n", "TRUE"],
}


def _stamp(rng: random.Random) -> str:
    """A time in the fast format, now and then with a fraction of 1-9 digits."""
    whole = (
        f"{rng.randint(1970, 2200):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    )
    if rng.random() < 0.3:
        return whole + "." + "".join(rng.choices("0123456789", k=rng.randint(1, 9))) + "Z"
    return whole + "Z"


# values a bent record may hold where another was due: JSON text, written as is
HOSTILE = [
    "null",
    '""',
    '"FAILURE"',
    '"Failure"',
    '"SUCCESS"',
    '"success"',
    '"true"',
    '"TRUE"',
    "true",
    "false",
    "0",
    "1",
    "1.0",
    "-0.0",
    "-0",
    "1e2",
    "1E2",
    "3",
    "2.5",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1e400",
    "1e300",
    '"login"',
    '"LOGIN"',
    '"Logout"',
    '"logout"',
    '"mfa "',
    '"2026-03-01T10:00:00Z"',
    '"2026-03-01T10:00:00.5Z"',
    '"2026-03-01T10:00:00+00:00"',
    '"2026-02-30T10:00:00Z"',
    '"2026-03-01 10:00:00Z"',
    "1772359200",
    '"1772359200"',
    '"\\u00e9"',
    '"a\\"b"',
    '"\\ud800"',
    "{}",
    "[1]",
    '{"a":1}',
]


def _own(name: str) -> list[str]:
    """Source keys only field ``name`` is mapped from (SOURCES are shared by all fields)."""
    return [f"{name}.src", name.title(), f"@{name}"]


@st.composite
def mappings(draw: Any) -> dict[str, Any]:
    """A ``fields:`` spec over CONTRACT: each field unmapped (it falls through by name) or a
    rule of 0-3 candidate paths, a value map and a default."""
    spec: dict[str, Any] = {}
    for name in CONTRACT.fields:
        if draw(st.integers(0, 9)) < 3:
            continue
        own = st.sampled_from(_own(name))
        paths = draw(st.lists(own | own | st.sampled_from(SOURCES), max_size=3, unique=True))
        constants = st.sampled_from(FIT[name]) | st.sampled_from(CONSTANTS)
        value_map = draw(
            st.none()
            | st.dictionaries(st.sampled_from(MAP_KEYS), st.none() | constants, max_size=4)
        )
        default = draw(st.none() | constants)
        if value_map is None and default is None and paths and draw(st.booleans()):
            spec[name] = paths[0] if len(paths) == 1 else paths  # the short forms
            continue
        rule: dict[str, Any] = {"path": paths}
        if value_map is not None:
            rule["map"] = value_map
        if default is not None or not paths:
            rule["value" if draw(st.booleans()) else "default"] = default
        spec[name] = rule
    return spec


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _good(name: str, rng: random.Random) -> Any:
    """A value the decoder takes as it is for contract field ``name``."""
    kind = CONTRACT.fields[name].type
    if kind == "timestamp":
        return _stamp(rng)
    if name == "kind":
        return rng.choice(["login", "Logout", "mfa"])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 443, 2**63 - 1, -(2**63)])
    if kind == "number":
        return rng.choice([0.5, -0.0, 1e300, 3, 2.0])
    return rng.choice(["alice", "BOB", "é", "a.b", "x y", "Success"])


def _written(value: Any, mapping: FieldMapping, name: str, rng: random.Random) -> str:
    """JSON text a producer may have written for ``value`` of field ``name``: a value-map key
    that maps onto it (in some case, or as the non-string it is the text of), or the value."""
    rule = next((r for r in mapping.rules if r.name == name), None)
    if rule is not None and rule.value_map:
        keys = [k for k, v in rule.value_map.items() if v == value and type(v) is type(value)]
        if keys and rng.random() < 0.8:
            key = rng.choice(keys)
            typed = {"true": "true", "false": "false", "1": "1", "1.0": "1.0", "0": "0"}
            if key.lower() in typed and rng.random() < 0.4:
                return typed[key.lower()]
            return _json(rng.choice([key, key.lower(), key.upper(), key.title()]))
    return _json(value)


def _record(
    mapping: FieldMapping, rng: random.Random, bend: float, nest: bool | None = None
) -> bytes:
    """A record that a mapping reads (mostly) into good contract values, its dotted keys
    written as objects (``nest``; None: in half the records); with probability ``bend`` a
    field of it bent, and now and then its bytes."""
    pairs: dict[str, str] = {}  # key -> JSON text of its value
    rules = {r.name: r for r in mapping.rules}
    for name, spec in CONTRACT.fields.items():
        rule = rules.get(name)
        if not spec.required and rng.random() < 0.3:
            if rule is not None and rule.paths and rule.value_map and rng.random() < 0.5:
                # a value its map takes to null: the field removed, default or not
                removed = [k for k, v in rule.value_map.items() if v is None]
                if removed:
                    pairs.setdefault(rng.choice(rule.paths), _json(rng.choice(removed)))
            continue
        value = _good(name, rng)
        if rule is None:
            pairs[name] = _json(value)
        elif rule.paths:
            at = rng.randrange(len(rule.paths))
            for earlier in rule.paths[:at]:  # a candidate before it absent, or null
                if earlier not in pairs and rng.random() < 0.5:
                    pairs[earlier] = "null"
            pairs.setdefault(rule.paths[at], _written(value, mapping, name, rng))
    for key in rng.sample(SOURCES + EXTRAS, 2):  # other keys, some of them sources
        if key not in CONTRACT.fields or rng.random() < bend:
            pairs.setdefault(key, rng.choice(['"other"', "1", "true", "null", '"Success"']))
    if rng.random() < bend:
        key = rng.choice(list(pairs) + SOURCES)
        if rng.random() < 0.2:
            pairs.pop(key, None)
        else:
            pairs[key] = rng.choice(HOSTILE)
    record = ("{" + _object_text(_nested(pairs, rng, nest), rng) + "}").encode()
    roll = rng.random()
    if roll < bend / 8:  # a key repeated (orjson keeps the last; the decoder refuses it)
        key = rng.choice(list(pairs))
        record = record[:-1] + f",{_json(key)}:{pairs[key]}}}".encode()
    elif roll < bend / 4:  # whitespace before a colon
        record = record.replace(b'":', b'" :', 1)
    elif roll < 3 * bend / 8:  # a byte that is no UTF-8
        record = (
            record.replace(b'"', b'"\xff', 1) if rng.random() < 0.5 else b"\xef\xbb\xbf" + record
        )
    elif roll < bend / 2:
        record = rng.choice([b"", b"[]", b"{}", b"null", record + record])
    return record


def _nested(pairs: dict[str, str], rng: random.Random, nest: bool | None) -> dict[str, Any]:
    """``pairs`` with, in some records, dotted keys written as objects (Filebeat's nested
    ECS): ``a.b.c`` as ``{"a": {"b": {"c": ..}}}``, or with the rest one key below an object
    (``{"a": {"b.c": ..}}``), unless another key of the record is in the way."""
    tree: dict[str, Any] = {}
    if nest is None:
        nest = rng.random() < 0.5
    for key, text in rng.sample(list(pairs.items()), len(pairs)):
        parts = key.split(".")
        if not nest or len(parts) < 2 or rng.random() < 0.2:
            if key not in tree:
                tree[key] = text
            continue
        cut = [i for i in range(1, len(parts)) if rng.random() < 0.7] or [len(parts) - 1]
        segments = [
            ".".join(parts[a:b]) for a, b in zip([0, *cut], [*cut, len(parts)], strict=True)
        ]
        node = tree
        for segment in segments[:-1]:
            node = node.setdefault(segment, {})
            if type(node) is not dict:
                break
        else:
            if segments[-1] not in node:
                node[segments[-1]] = text
                continue
        if key not in tree:
            tree[key] = text
    if nest and rng.random() < 0.1:  # an object written null (CloudTrail's "responseElements")
        objects = [k for k, v in tree.items() if type(v) is dict]
        if objects:
            tree[rng.choice(objects)] = "null"
    return tree


def _object_text(tree: dict[str, Any], rng: random.Random) -> str:
    items = rng.sample(list(tree.items()), len(tree))
    return ",".join(
        f"{_json(k)}:{v}" if type(v) is str else f"{_json(k)}:{{{_object_text(v, rng)}}}"
        for k, v in items
    )


def _kinds(batch: list[bytes], seen: dict[str, set[str]]) -> bool:
    """Add what each key (a path of keys) holds in ``batch`` to ``seen``; whether every key
    held one kind only (an object, a list of objects, or a list of scalars or a scalar; null
    or an empty list goes with any of them), as a Struct reads it."""

    def walk(value: Any, at: str) -> None:
        kinds = seen.setdefault(at, set())
        if type(value) is dict:
            kinds.add("object")
            for k, v in value.items():
                walk(v, f"{at}\x00{k}")
        elif type(value) is list:
            if value and all(type(v) is dict for v in value):
                kinds.add("objects")
                for v in value:
                    walk(v, f"{at}\x00[]")
            elif any(type(v) in (dict, list) for v in value):
                kinds.update(("object", "value"))  # (no Struct holds both)
            elif value:
                kinds.add("value")
        elif value is not None:
            kinds.add("value")

    for value in batch:
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if type(record) is dict:
            for k, v in record.items():
                walk(v, k)
    return all(len(kinds) <= 1 for kinds in seen.values())


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type (1, 1.0 and True are equal, and not the same value)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return str(a) == str(b)  # -0.0 is not 0.0
    return bool(a == b)


# an integer literal that may not fit 64 bits (a string holding such digits matches too: the
# check below is then only weaker)
_LONG_INTEGER = re.compile(rb"[:,\[]\s*-?[0-9]{19,}\s*[,}\]]")


def _as_it_is(mapping: FieldMapping, value: bytes, event: Any) -> bool:
    """Whether the decoder made ``event`` of ``value`` with no coercion (its data the mapped
    record, value for value and type for type), from a time in the format frames read. What
    the decoder takes that the columns leave to it, as they do unmapped: a number of 2**63
    or more in a number
    field, another timestamp field than the event time's holding no string (the decoder does
    not check it), an integer of 19 digits or more under any key, one the mapping drops
    included (the Struct reads every key of a record, as an integer of 64 bits at most), an
    object or a list a rule found (a column holds values)."""
    if type(event) is not Event or _LONG_INTEGER.search(value):
        return False
    record = orjson.loads(value)
    mapped = mapping.apply(record)
    if any(type(mapped.get(rule.name)) in (dict, list) for rule in mapping.rules):
        return False
    took, seen_at = mapped.get("took"), mapped.get("seen_at")
    return (
        mapped.keys() == event.data.keys()
        and all(_same(v, event.data[k]) for k, v in mapped.items())
        and type(mapped["timestamp"]) is str
        and _times([mapped["timestamp"]]) is not None
        and not (type(took) is float and abs(took) >= 2**63)
        and (seen_at is None or type(seen_at) is str)
    )


def assert_frame_is_the_decoders(
    reader: FrameReader,
    mapping: FieldMapping,
    batch: list[bytes],
    seen: dict[str, set[str]] | None = None,
) -> bool:
    """Read ``batch``: if a frame comes back, every record decodes to an Event with the
    frame's time, whose fields are the frame's row and columns, value and type. Whether a
    frame came back. ``seen``: what each key held in the batches ``reader`` read before."""
    one_kind = _kinds(batch, {} if seen is None else seen)
    frame = reader.read(batch)
    decoder = RecordDecoder(CONTRACT, mapping=mapping)
    events = [decoder.decode(v) for v in batch]
    if frame is None:
        # declined: never a batch the decoder takes as it is (a check of the columns that
        # refuses what it need not makes no wrong alert, but would hide a wrong value), but
        # where a key held an object in one record and no object in another
        assert not one_kind or not all(
            _as_it_is(mapping, v, e) for v, e in zip(batch, events, strict=True)
        )
        return False
    refused = [(e.reason, e.detail) for e in events if type(e) is not Event]
    assert not refused, refused
    assert frame.ts.tolist() == [e.ts for e in events]  # type: ignore[union-attr]
    names = {*CONTRACT.fields, *SOURCES, *EXTRAS, "no_such_field"}
    for i, e in enumerate(events):
        data = e.data  # type: ignore[union-attr]
        row = frame.row(i)
        assert row.keys() == data.keys(), (row, data)
        assert all(_same(row[k], data[k]) for k in row), (row, data)
        for name in names:
            assert _same(frame.value(name, i), data.get(name)), (name, row, data)
    for name in names:
        want = [e.data.get(name) for e in events]  # type: ignore[union-attr]
        assert all(map(_same, frame.column(name), want)), (name, frame.column(name), want)
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mappings(), st.integers(0, 2**32), st.sampled_from([0.0, 0.1, 0.5]))
def test_a_mapped_frame_holds_every_record_as_the_mapping_and_the_decoder_give_it(
    spec: dict[str, Any], seed: int, bend: float
) -> None:
    """Two batches through one reader (the second may be read with the Struct of the fields
    every record of the first held): each read as the decoder reads it, or declined."""
    mapping = FieldMapping(spec)
    reader = frame_reader_for(CONTRACT, "json", mapping, 1 << 20, 64)
    if reader is None:
        return  # a mapping the columns cannot hold: every batch judged per record
    rng = random.Random(seed)
    seen: dict[str, set[str]] = {}
    for _ in range(2):
        batch = [_record(mapping, rng, bend) for _ in range(rng.randint(1, 6))]
        assert_frame_is_the_decoders(reader, mapping, batch, seen)


def test_the_property_test_reads_many_clean_batches() -> None:
    """The property test checks something: clean records of drawn mappings are read."""
    read = tried = nested_read = 0
    rng = random.Random(3)
    for _ in range(200):
        mapping = FieldMapping(_drawn_mapping(rng))
        reader = frame_reader_for(CONTRACT, "json", mapping, 1 << 20, 64)
        if reader is None:
            continue
        tried += 1
        nest = tried % 2 == 0
        batch = [_record(mapping, rng, 0.0, nest) for _ in range(4)]
        got = assert_frame_is_the_decoders(reader, mapping, batch)
        read += got
        nested_read += got and any(b"{" in v[1:] for v in batch)
    assert tried > 150 and read > tried / 5, (read, tried)
    assert nested_read > tried / 10, (nested_read, tried)


def _drawn_mapping(rng: random.Random) -> dict[str, Any]:
    """A mapping as ``mappings`` draws them, from a seeded generator."""
    spec: dict[str, Any] = {}
    for name in CONTRACT.fields:
        if rng.random() < 0.3:
            continue
        pool = _own(name) * 8 + SOURCES
        rule: dict[str, Any] = {"path": list(dict.fromkeys(rng.choices(pool, k=rng.randint(0, 3))))}
        constants = FIT[name] * 10 + CONSTANTS
        if rng.random() < 0.5:
            keys = rng.sample(MAP_KEYS, rng.randint(1, 4))
            rule["map"] = {k: rng.choice([*constants, *[None] * 6]) for k in keys}
        if rng.random() < 0.3 or not rule["path"]:
            rule["value"] = rng.choice(constants)
        spec[name] = rule
    return spec


# -- what the column reader takes of mappings, and what it declines -----------------------

ECS = {
    "timestamp": "@timestamp",
    "username": "user.name",
    "ip_address": ["source.ip", "client.ip"],
    "success": {"path": "event.outcome", "map": {"success": True, "failure": False}},
    "user_agent": "user_agent.original",
}


def _ecs(i: int, outcome: str = "success") -> dict[str, Any]:
    return {
        "@timestamp": f"2026-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "user.name": f"u{i % 7}",
        "source.ip": f"10.0.0.{i % 5}",
        "event.outcome": outcome,
        "user_agent.original": "curl/8",
    }


def test_flattened_ecs_records_are_read_into_the_contracts_columns() -> None:
    auth = get_contract("auth-logs")
    mapping = FieldMapping(ECS)
    reader = frame_reader_for(auth, "json", mapping, 1 << 20, 64)
    assert reader is not None
    records = [_ecs(i, ("success", "FAILURE", "Failure", "failure")[i % 4]) for i in range(40)]
    records[3]["client.ip"] = "192.0.2.1"  # a later candidate, the first present
    del records[3]["source.ip"]
    records[5]["source.ip"] = None  # null: the next candidate, none here: missing
    records[5]["client.ip"] = "192.0.2.2"
    records[7]["username"] = "ignored"  # a contract-named key a rule replaces
    batch = [orjson.dumps(r) for r in records]
    frame = reader.read(batch)
    assert frame is not None
    decoder = RecordDecoder(auth, mapping=mapping)
    events = [decoder.decode(v) for v in batch]
    assert frame.column("success") == [e.data["success"] for e in events]  # type: ignore[union-attr]
    assert frame.column("success")[:4] == [True, False, False, False]  # lowercase retry
    assert frame.column("ip_address")[3] == "192.0.2.1"
    assert frame.column("ip_address")[5] == "192.0.2.2"
    assert frame.column("username")[7] == "u0" and frame.row(7)["username"] == "u0"
    assert frame.column("source.ip")[0] == "10.0.0.0"  # the source stays in the record
    assert [frame.row(i) for i in range(len(batch))] == [e.data for e in events]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"event.outcome": "unknown"}, "a value the map leaves alone, not a bool"),
        ({"event.outcome": None}, "a required field mapped from null"),
        ({"user.name": ""}, "a required field empty"),
        ({"user.name": 7}, "a number where a string is due (the decoder would coerce it)"),
        ({"@timestamp": "2026-03-01 10:00:00+00:00"}, "a time not in the fast format"),
        ({"@timestamp": True}, "a bool for a time"),
        ({"source.ip": {"v": 1}}, "an object where a mapped path's value is read"),
    ],
)
def test_a_mapped_batch_with_a_record_the_decoder_would_refuse_or_coerce_is_not_read(
    change: dict[str, Any], why: str
) -> None:
    auth = get_contract("auth-logs")
    mapping = FieldMapping(ECS)
    reader = FrameReader(auth, 1 << 20, mapping)
    records = [_ecs(i) for i in range(20)]
    assert reader.read([orjson.dumps(r) for r in records]) is not None
    records[9].update(change)
    assert reader.read([orjson.dumps(r) for r in records]) is None, why


def test_a_value_map_looks_up_each_value_by_its_text_whatever_else_it_equals() -> None:
    """1, 1.0 and True are equal (one key of a dict), yet looked up as "1", "1.0" and "true";
    -0.0 as "-0.0"; a string as written, then lowercased; one mapped to null removes the
    field (no default then), a null or absent one takes the default."""
    kind = {
        "path": "status",
        "map": {"1": "login", "1.0": "Logout", "true": "mfa", "-0.0": "login", "x": None},
    }
    note = {"path": "status", "map": {"x": None}, "value": "none given"}
    statuses = ["1", 1, 1.0, True, "TRUE", "True", -0.0, "X", None]
    batch = [
        orjson.dumps({"timestamp": "2026-03-01T10:00:00Z", "user": "u", "ok": True, "status": s})
        for s in statuses
    ]
    both = FieldMapping({"kind": kind, "note": note})
    reader = frame_reader_for(CONTRACT, "json", both, 1 << 20, 64)
    assert reader is not None
    # note: the statuses that are no string would be coerced to one
    assert reader.read(batch) is None
    mapping = FieldMapping({"kind": kind})
    reader = frame_reader_for(CONTRACT, "json", mapping, 1 << 20, 64)
    assert reader is not None
    assert assert_frame_is_the_decoders(reader, mapping, batch)
    frame = reader.read(batch)
    assert frame is not None
    assert frame.column("kind") == [
        "login",
        "login",
        "Logout",
        "mfa",
        "mfa",
        "mfa",
        "login",
        None,
        None,
    ]
    notes = FieldMapping({"note": note})
    reader = frame_reader_for(CONTRACT, "json", notes, 1 << 20, 64)
    assert reader is not None
    strings = [b for b, s in zip(batch, statuses, strict=True) if s is None or type(s) is str]
    assert assert_frame_is_the_decoders(reader, notes, strings)
    frame = reader.read(strings)
    assert frame is not None
    assert frame.column("note") == ["1", "TRUE", "True", None, "none given"]


def test_mappings_the_columns_cannot_hold_leave_the_binding_to_the_decoder() -> None:
    auth = get_contract("auth-logs")
    for spec in (
        {"username": 'user "name"'},  # a key msgspec cannot rename a field onto
        {"success": {"path": "event.outcome", "map": {"success": [True]}}},  # not a scalar
        {"country": {"path": "geo", "value": {"iso": "NL"}}},
    ):
        assert frame_reader_for(auth, "json", FieldMapping(spec), 1 << 20, 64) is None, spec
    hosts = get_contract("host-metrics")
    # a number field that falls through by name, read by a rule too: the rule would see the
    # integer as written, the column its float
    assert (
        frame_reader_for(hosts, "json", FieldMapping({"host": "cpu_percent"}), 1 << 20, 64) is None
    )
    assert frame_reader_for(hosts, "json", FieldMapping({"host": "hostname"}), 1 << 20, 64)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="ab.0@", max_size=6),
    st.dictionaries(
        st.text(alphabet="ab.0@", max_size=6),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3)),
        max_size=6,
    ),
)
def test_on_a_flat_record_a_path_matches_only_its_literal_key(
    path: str, record: dict[str, Any]
) -> None:
    from streamproc.decode.mapping import _MISSING

    assert compile_path(path)(record) is record.get(path, _MISSING)


# -- through the Judge: columns against events, a mapped binding --------------------------


def _rewritten(value: bytes, rng: random.Random, nested: bool = False) -> bytes:
    """An auth record with ECS's flattened keys and event.outcome's words, in some case;
    ``nested``: as Filebeat writes it, ECS's objects (now and then one key flattened in it,
    or beside it), with the agent's and the host's objects and a list."""
    data = orjson.loads(value)
    outcome = rng.choice(("success", "Success") if data.pop("success") else ("failure", "FAILURE"))
    if nested:
        out: dict[str, Any] = {
            "@timestamp": data.pop("timestamp"),
            "agent": {"type": "filebeat", "version": "8.12.0", "id": "5e1c7c1e"},
            "event": {"category": ["authentication"], "outcome": outcome},
            "user": {"name": data.pop("username")},
            "source": {"ip": data.pop("ip_address")},
            "host": {"name": "web-1", "os": {"family": "debian"}},
        }
        if "country" in data:
            out["source"]["geo"] = {"country_iso_code": data.pop("country")}
        if "user_agent" in data:
            out["user_agent"] = {"original": data.pop("user_agent")}
        roll = rng.random()
        if roll < 0.01:
            out["source.ip"] = out.pop("source")["ip"]  # flattened beside the objects
        elif roll < 0.02:
            out["user"] = {"name": "shadowed"}  # the whole path as one key wins
            out["user.name"] = "u-" + str(rng.randrange(50))
        elif roll < 0.022:
            del out["user"]  # a required field missing: a dead letter
    else:
        out = {
            "@timestamp": data.pop("timestamp"),
            "user.name": data.pop("username"),
            "source.ip": data.pop("ip_address"),
            "event.outcome": outcome,
        }
        if "user_agent" in data:
            out["user_agent.original"] = data.pop("user_agent")
    out.update(data)
    return orjson.dumps(out)


@pytest.mark.parametrize("nested", [False, True], ids=["flattened ECS", "nested ECS"])
def test_judging_a_mapped_binding_from_columns_gives_what_judging_events_gives(
    nested: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds = {"brute_force", "password_spray", "distributed_brute_force", "unusual_login"}
    off = {k: {"enabled": False} for k in ("compromise_suspected",) if k not in kinds}
    config = parse_config(
        {"topics": [{"topic": "auth-ecs", "family": "auth-logs", "fields": ECS, "detectors": off}]},
        file=None,
    )
    rng = random.Random(7)
    records: list[RawRecord] = []
    offsets = [0, 0, 0]
    for fam, key, value in generate("auth", 16000, seed=5).merged_bytes():
        if fam != "auth-logs":
            continue
        partition = zlib.crc32(key or b"") % 3
        value = _rewritten(value, rng, nested)
        roll = rng.random()
        if roll < 0.003:
            value = value.replace(b'outcome":"', b'outcome":"maybe', 1)
        elif roll < 0.005:
            value = value[: len(value) // 2]
        records.append(RawRecord(value, "auth-ecs", partition, offsets[partition], key))
        offsets[partition] += 1

    def judge(columns: bool) -> tuple[list[Any], list[Any], Judge]:
        monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
        j = Judge(config, partitioned=True)
        alerts: list[Any] = []
        dead: list[Any] = []
        for partition in range(3):
            mine = [r for r in records if r.partition == partition]
            for i in range(0, len(mine), 150):
                out, dls = j.judge(mine[i : i + 150], "kafka")
                alerts += out
                dead += dls
        alerts += j.finish()
        dead += j.final_dead
        return alerts, dead, j

    def rows(alerts: list[Any]) -> list[Any]:
        return [
            (
                a.kind,
                a.fingerprint,
                a.event_time,
                a.title,
                orjson.dumps(a.evidence, option=orjson.OPT_SORT_KEYS),
            )
            for a in alerts
        ]

    want_alerts, want_dead, _ = judge(False)
    got_alerts, got_dead, j = judge(True)
    reasons = {"wrong_type", "not_json"} | ({"missing_field"} if nested else set())
    assert want_alerts and {d.reason for d in want_dead} >= reasons
    assert rows(got_alerts) == rows(want_alerts)
    key = lambda d: (d.reason, d.partition, d.offset, d.detail)  # noqa: E731
    assert sorted(map(key, got_dead)) == sorted(map(key, want_dead))
    assert j.frame_batches >= 6 and j.frame_strays == 0


def test_a_mapped_binding_that_re_keys_its_records_ships_the_mapped_events() -> None:
    """password_spray counts by ip_address, so each record of an auth binding keyed by
    username is also shipped, re-keyed: its copy holds the Event's data, the mapped record,
    so the columns may not write it around the record as it came. The copies are the ones
    the per-event path ships."""
    from streamproc.pipeline.batches import EVERY_PARTITION
    from streamproc.pipeline.repartition import decode

    config = parse_config(
        {"topics": [{"topic": "auth-ecs", "family": "auth-logs", "fields": ECS}]}, file=None
    )
    rng = random.Random(2)
    records = [
        RawRecord(_rewritten(v, rng), "auth-ecs", 0, i, k)
        for i, (_, k, v) in enumerate(
            r for r in generate("auth", 6000, seed=3).merged_bytes() if r[0] == "auth-logs"
        )
    ]
    shipped = []
    with pytest.MonkeyPatch.context() as patch:
        for columns in ("1", "0"):
            patch.setenv("STREAMPROC_COLUMNS", columns)
            judge = Judge(config, partitioned=True, repartition=True)
            assert judge.repartition_targets
            copies = []
            for i in range(0, len(records), 600):
                judge.judge(records[i : i + 600], "kafka")
                copies += [(t, k, decode(v)) for t, k, v in judge.take_outbox()]
            shipped.append(copies)
    assert shipped[0] == shipped[1] and shipped[0]
    copies = [(t, data) for t, key, (_, data, _) in shipped[0] if key is not EVERY_PARTITION]
    assert all("username" in data for _, data in copies)
    # the binding is not keyed: by username every record is shipped (compromise_suspected
    # needs them all); password_spray is sent the failures, each batch then a progress mark
    by_user = [data for t, data in copies if t.endswith(".username")]
    by_ip = [data for t, data in copies if t.endswith(".ip_address")]
    assert len(by_user) == len(records)
    assert by_ip == [data for data in by_user if not data["success"]] and by_ip


RULES = """\
- {name: fails, family: auth-logs, type: frequency, key: ip_address, filter: {success: false},
   window: 600, threshold: 5}
- {name: users, family: auth-logs, type: cardinality, key: ip_address, field: username,
   window: 600, threshold: 4, filter: {success: false}}
- {name: root, family: auth-logs, type: any, filter: {username: root}, key: ip_address}
"""


def test_rules_on_a_mapped_binding_judged_from_columns_give_what_they_give_per_event(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules read the mapped fields by their contract names from the columns, as from the
    Events: a flattened ECS binding with rules of three types, keyed by username."""
    from streamproc.rules import add_rules

    (tmp_path / "r.yaml").write_text(RULES)
    rng = random.Random(2)
    records = [
        RawRecord(_rewritten(v, rng), "auth-ecs", i % 3, i // 3, k)
        for i, (_, k, v) in enumerate(
            r for r in generate("auth", 30000, seed=3).merged_bytes() if r[0] == "auth-logs"
        )
    ]
    got = []
    for columns in ("1", "0"):
        monkeypatch.setenv("STREAMPROC_COLUMNS", columns)
        config = parse_config(
            {
                "topics": [
                    {
                        "topic": "auth-ecs",
                        "family": "auth-logs",
                        "fields": ECS,
                        "keyed_by": "username",
                    }
                ]
            },
            file=None,
        )
        add_rules(config, rules=[str(tmp_path)])
        judge = Judge(config, partitioned=True)
        by_partition: dict[int, list[RawRecord]] = {}
        for r in records:
            by_partition.setdefault(r.partition, []).append(r)
        alerts: list[Any] = []
        for i in range(0, max(map(len, by_partition.values())), 600):
            for p in sorted(by_partition):
                alerts += judge.judge(by_partition[p][i : i + 600], "kafka")[0]
        alerts += judge.finish()
        assert (judge.frame_batches > 0) == (columns == "1")
        got.append(sorted((a.kind, a.fingerprint, a.event_time, a.title) for a in alerts))
    kinds = {row[0] for row in got[0]}
    assert {"rule:fails", "rule:users", "rule:root", "brute_force"} <= kinds
    assert got[0] == got[1]
