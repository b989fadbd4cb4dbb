"""Records as other producers write them, judged from columns and as Events.

Each case bends records of a built-in family the way some real producer writes them (epoch
times, offsets, escapes, pretty-printing, nested ECS fields, odd keys...) and judges the same
batches with ``STREAMPROC_COLUMNS`` on and off: the alerts (every field), the dead letters
(reason, detail, payload) and the detectors' state must be the same. Where the frame should
take such a batch, the test also says so, so that the column path is what is compared."""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.config import parse_config
from streamproc.contracts import get_contract
from streamproc.decode import DeadLetter, RawRecord, RecordDecoder
from streamproc.decode.frames import FrameReader
from streamproc.decode.records import DEFAULT_MAX_RECORD_BYTES
from streamproc.detectors import REGISTRY
from streamproc.events import Event, parse_timestamp, parse_timestamps
from streamproc.pipeline.runtime import MIN_FRAME, Judge
from streamproc.traffic import generate

pytest.importorskip("numpy")

SCENARIOS = {
    "auth-logs": "auth",
    "api-access-logs": "api",
    "host-metrics": "hosts",
    "cicd-events": "cicd",
    "support-tickets": "tickets",
}
# the detectors of each family that let an engine judge from columns (all of them at once)
KINDS = {
    "auth-logs": {
        "brute_force",
        "password_spray",
        "distributed_brute_force",
        "unusual_login",
        "compromise_suspected",
    },
    "api-access-logs": {"sql_injection", "rate_abuse"},
    "host-metrics": {"host_silent", "metric_threshold"},
    "cicd-events": {"pipeline_failed", "deployment"},
    "support-tickets": {"ticket_created"},
}
BATCH = MIN_FRAME + 22


def _config(family: str) -> Any:
    off = {
        k: {"enabled": False}
        for k, cls in REGISTRY.items()
        if cls.family == family and k not in KINDS[family]
    }
    binding = {"topic": get_contract(family).kafka_topic, "family": family, "detectors": off}
    return parse_config({"topics": [binding]}, file=None)


# how each family's stream is generated: (records, seconds, incidents) dense enough that its
# first three batches raise alerts
STREAMS: dict[str, tuple[int, int, dict[str, int] | None]] = {
    "auth-logs": (
        1500,
        3600,
        {
            "brute_force": 30,
            "compromise": 10,
            "password_spray": 10,
            "distributed_brute_force": 10,
            "unusual_login": 20,
        },
    ),
    "api-access-logs": (1500, 3600, {"sql_injection": 300, "rate_abuse": 3}),
    "host-metrics": (600, 1800, {"metric_threshold": 20, "host_silent": 5}),
    "cicd-events": (1500, 8 * 3600, None),
    "support-tickets": (1500, 8 * 3600, None),
}
_RECORDS: dict[str, list[dict[str, Any]]] = {}


def _records(family: str) -> list[dict[str, Any]]:
    """Three batches of the family's generated records."""
    if family not in _RECORDS:
        n, seconds, incidents = STREAMS[family]
        traffic = generate(SCENARIOS[family], n, seed=3, duration=seconds, incidents=incidents)
        values = [v for fam, _, v in traffic.merged_bytes() if fam == family]
        _RECORDS[family] = [orjson.loads(v) for v in values[: 3 * BATCH]]
    return _RECORDS[family]


def _judged(
    family: str,
    batches: list[list[bytes | None]],
    columns: bool,
    monkeypatch: pytest.MonkeyPatch,
    repartition: bool = False,
) -> tuple[list[Any], Judge]:
    """(alerts, dead letters, engine snapshots, re-keyed copies; the judge) of ``batches``,
    one partition's fetches in turn, then the end of the stream."""
    from streamproc.pipeline.repartition import decode

    monkeypatch.setenv("STREAMPROC_COLUMNS", "1" if columns else "0")
    topic = get_contract(family).kafka_topic
    judge = Judge(_config(family), partitioned=True, repartition=repartition)
    alerts: list[Any] = []
    dead: list[Any] = []
    copies: list[Any] = []
    offset = 0
    for values in batches:
        records = []
        for value in values:
            records.append(RawRecord(value, topic, 0, offset, b"%d" % offset))  # type: ignore[arg-type]
            offset += 1
        out, dls = judge.judge(records, "kafka")
        alerts += out
        dead += dls
        copies += [(t, k, decode(v)) for t, k, v in judge.take_outbox()]
    alerts += judge.finish()
    dead += judge.final_dead
    exact = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return [
        [orjson.dumps(a.to_dict(), option=exact) for a in alerts],
        [(d.reason, d.detail, d.raw, d.offset, d.key) for d in dead],
        [orjson.dumps(e.snapshot(), option=exact, default=repr) for e in judge.engines.values()],
        copies,
    ], judge


def _same_both_ways(
    family: str,
    batches: list[list[bytes | None]],
    monkeypatch: pytest.MonkeyPatch,
    repartition: bool = False,
) -> Judge:
    """Judge ``batches`` with columns and without; assert the outcomes are the same. Returns
    the judge that read columns."""
    want, _ = _judged(family, batches, False, monkeypatch, repartition)
    got, judge = _judged(family, batches, True, monkeypatch, repartition)
    # (re-keyed, the detectors that count by another field judge the copies, elsewhere)
    assert want[3] if repartition else want[0], "the stream raises alerts, or ships copies"
    for what, mine, reference in zip(
        ("alerts", "dead letters", "detector state", "re-keyed copies"), got, want, strict=True
    ):
        assert mine == reference, what
    assert judge.frame_strays == 0
    return judge


def _batches(family: str) -> list[list[bytes | None]]:
    """The family's records, written as orjson writes them, in batches of BATCH."""
    records = _records(family)
    return [
        [orjson.dumps(r) for r in records[i : i + BATCH]] for i in range(0, len(records), BATCH)
    ]


def _both_ways(
    family: str,
    bend: Callable[[dict[str, Any]], bytes],
    every: int,
    monkeypatch: pytest.MonkeyPatch,
) -> Judge:
    """Judge the family's records, every ``every``-th of the middle batch written by
    ``bend``, with columns and without; assert the outcomes are the same. Returns the judge
    that read columns."""
    records = _records(family)
    batches = _batches(family)
    for i in range(0, BATCH, every):
        batches[1][i] = bend(records[BATCH + i])
    return _same_both_ways(family, batches, monkeypatch)


def _with_raw(name: str, raw: str) -> Callable[[dict[str, Any]], bytes]:
    """The record with field ``name`` written as the JSON text ``raw`` (added if absent)."""

    def bend(record: dict[str, Any]) -> bytes:
        fields = {json.dumps(k): orjson.dumps(v).decode() for k, v in record.items()}
        fields[json.dumps(name)] = raw
        return ("{" + ",".join(f"{k}:{v}" for k, v in fields.items()) + "}").encode()

    return bend


# -- what was not the same -----------------------------------------------------------------

# JSON keys msgspec cannot rename a Struct field onto (a quote, a backslash, a control
# character): a frame must leave such a batch to the decoder, not fail on it
UNNAMEABLE_KEYS = ['say "hi"', "C:\\temp", "tab\there", "nul\u0000", "line\nbreak"]


@pytest.mark.parametrize("key", UNNAMEABLE_KEYS)
@pytest.mark.parametrize("every", [1, 7], ids=["all", "some"])
def test_a_field_name_a_struct_cannot_hold_is_judged_per_event(
    key: str, every: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _both_ways("auth-logs", _with_raw(key, "1"), every, monkeypatch)


def test_a_reader_that_met_such_a_name_still_learns_others() -> None:
    auth = get_contract("auth-logs")
    reader = FrameReader(auth, 1 << 20)
    clean = [orjson.dumps(r) for r in _records("auth-logs")[:BATCH]]
    odd = [v[:-1] + b',"a\\"b":1}' for v in clean]
    assert reader.read(odd) is None
    later = [v[:-1] + b',"region":"eu"}' for v in clean]
    frame = reader.read(later)
    assert frame is not None and frame.column("region") == ["eu"] * len(later)


def test_a_contract_field_a_struct_cannot_hold_leaves_its_batches_to_the_decoder() -> None:
    from streamproc.contracts import parse_contract

    contract = parse_contract(
        {
            "family": "odd-names",
            "fields": {
                "timestamp": {"type": "timestamp", "required": True},
                'say "hi"': {"type": "string"},
            },
        },
        "odd-names.yaml",
    )
    reader = FrameReader(contract, 1 << 20)
    assert not reader.usable
    assert reader.read([b'{"timestamp":"2026-03-01T10:00:00Z","say \\"hi\\"":"x"}']) is None


# ISO 8601 allows a comma before the fraction of a second (fromisoformat reads it); a
# column of such times, or of other text where the decimal point goes, is read one by one
COMMA_TIMES = [
    ["2026-03-01T10:00:00,123Z", "2026-03-01T10:00:01,500Z"],
    ["2026-03-01T10:00:00_123Z", "2026-03-01T10:00:01x500Z"],
]


@pytest.mark.parametrize("stamps", COMMA_TIMES)
def test_a_column_of_times_with_another_decimal_sign_is_parsed_one_by_one(
    stamps: list[str],
) -> None:
    want: list[float | None] = []
    for s in stamps:
        try:
            want.append(parse_timestamp(s))
        except ValueError:
            want.append(None)
    epochs, failed = parse_timestamps(stamps)
    assert [None if i in failed else e for i, e in enumerate(epochs)] == want


@pytest.mark.parametrize("every", [1, 7], ids=["all", "some"])
def test_times_with_a_decimal_comma_are_judged_the_same(
    every: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bend(record: dict[str, Any]) -> bytes:
        return orjson.dumps({**record, "timestamp": record["timestamp"][:-1] + ",250Z"})

    _both_ways("auth-logs", bend, every, monkeypatch)


# digits str.isdigit takes and float() does not (superscripts, circled digits) in the
# fraction of a second: a bad timestamp, not an error out of the decoder
ODD_DIGITS = [
    "2026-03-01T10:00:00.\u00b2Z",
    "2026-03-01T10:00:00.1\u2460Z",
    "2026-03-01T10:00:00.12\u00b9Z",
]


@pytest.mark.parametrize("stamp", ODD_DIGITS)
def test_a_digit_float_cannot_read_in_a_fraction_is_a_bad_timestamp(
    stamp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoder = RecordDecoder(get_contract("auth-logs"))
    dead = decoder.decode(orjson.dumps({**_records("auth-logs")[0], "timestamp": stamp}))
    assert type(dead) is DeadLetter and dead.reason == "bad_timestamp"
    _both_ways("auth-logs", lambda r: orjson.dumps({**r, "timestamp": stamp}), 7, monkeypatch)


@pytest.mark.parametrize("family", ["auth-logs", "api-access-logs"])
def test_a_tombstone_in_a_batch_a_binding_re_keys_is_an_empty_payload(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kafka tombstone (no value) among the records of a binding whose detectors count by
    another field than its key (its records are re-keyed to a repartition topic)."""
    batches = _batches(family)
    batches[1][40] = None
    judge = _same_both_ways(family, batches, monkeypatch, repartition=True)
    assert judge.repartition_targets
    assert judge.frame_batches == 1  # the last batch: the first starts the stream time


# -- what was the same, and stays so -------------------------------------------------------


def _ts(bend: Callable[[str], Any]) -> Callable[[dict[str, Any]], bytes]:
    """The record with its timestamp ("YYYY-MM-DDTHH:MM:SSZ") rewritten by ``bend``."""
    return lambda r: orjson.dumps({**r, "timestamp": bend(r["timestamp"])})


def _epoch(stamp: str) -> int:
    return int(parse_timestamp(stamp))


def _escaped(record: dict[str, Any]) -> bytes:
    """Every character of every string written as a \\u escape (keys too)."""

    def esc(text: str) -> str:
        return '"' + "".join(f"\\u{ord(c):04x}" for c in text) + '"'

    def value(v: Any) -> str:
        return esc(v) if type(v) is str else orjson.dumps(v).decode()

    return ("{" + ",".join(f"{esc(k)}:{value(v)}" for k, v in record.items()) + "}").encode()


# (family, how a producer writes its records): a frame takes the batch, as the decoder
# reads it
TAKEN: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {
    "pretty-printed": ("auth-logs", lambda r: json.dumps(r, indent=2).encode()),
    "a nested ECS object": ("auth-logs", lambda r: orjson.dumps({**r, "user": {"name": "x"}})),
    "lists of objects, an object null (CloudTrail)": (
        "auth-logs",
        lambda r: orjson.dumps(
            {
                **r,
                "resources": [{"type": "AWS::IAM::User", "ARN": "arn:x"}, {"accountId": "1"}],
                "requestParameters": {"userName": "x"} if r["success"] else None,
            }
        ),
    ),
    "objects and lists beside the fields, pretty-printed": (
        "auth-logs",
        lambda r: json.dumps(
            {**r, "host": {"os": {"name": "debian", "v": [12, "x"]}, "ip": []}, "tags": ["a"]},
            indent=1,
        ).encode(),
    ),
    "pretty-printed with CRLF": (
        "auth-logs",
        lambda r: json.dumps(r, indent="\t").replace("\n", "\r\n").encode(),
    ),
    "a trailing newline": ("auth-logs", lambda r: orjson.dumps(r) + b"\n"),
    "json.dumps defaults (spaces after separators)": (
        "api-access-logs",
        lambda r: json.dumps(r).encode(),
    ),
    "every character escaped": ("auth-logs", _escaped),
    "a NUL, an escaped slash and a surrogate pair in a string": (
        "auth-logs",
        _with_raw("user_agent", '"curl\\/8.0\\u0000 \\ud83d\\ude00"'),
    ),
    "ECS-style dotted keys beside the flat fields": (
        "auth-logs",
        lambda r: orjson.dumps({**r, "user.name": "x", "source.ip": "10.1.2.3"}),
    ),
    "a key in another case beside the contract's": (
        "auth-logs",
        lambda r: orjson.dumps({**r, "Username": "Other"}),
    ),
    "keys in another order": ("host-metrics", lambda r: orjson.dumps(dict(reversed(r.items())))),
    "an explicit null in an optional field": (
        "support-tickets",
        _with_raw("priority", "null"),
    ),
    "an integer in a number field": ("host-metrics", _with_raw("cpu_percent", "97")),
    "-0.0 in a number field": ("host-metrics", _with_raw("load_average", "-0.0")),
    "an exponent in a number field": ("host-metrics", _with_raw("cpu_percent", "9.5E+1")),
    "2**53 + 1 in a number field": ("host-metrics", _with_raw("memory_percent", str(2**53 + 1))),
    "the largest int64 in an int field": (
        "api-access-logs",
        _with_raw("status_code", str(2**63 - 1)),
    ),
}


def _go_nano(stamp: str) -> str:
    """As Go's RFC3339Nano (and Java's Instant) write a time: trailing zeros of the
    fraction dropped, none at all on a whole second; a different fraction a record."""
    frac = f"{zlib.crc32(stamp.encode()) % 10**9:09d}"[: zlib.crc32(stamp[::-1].encode()) % 10]
    frac = frac.rstrip("0")
    return stamp if not frac else f"{stamp[:-1]}.{frac}Z"


# times with a fraction of a second (a producer writes all its times so)
TAKEN_TIMES: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {
    "epoch seconds": ("auth-logs", _ts(lambda t: _epoch(t))),
    "epoch seconds with a fraction": ("auth-logs", _ts(lambda t: _epoch(t) + 0.25)),
    "epoch milliseconds": ("host-metrics", _ts(lambda t: _epoch(t) * 1000)),
    "epoch nanoseconds": ("cicd-events", _ts(lambda t: _epoch(t) * 10**9 + 7)),
    "an offset (nginx's $time_iso8601)": ("auth-logs", _ts(lambda t: t[:-1] + "+00:00")),
    "a negative offset, milliseconds": ("auth-logs", _ts(lambda t: t[:-1] + ".250-00:00")),
    "an offset without its colon": ("host-metrics", _ts(lambda t: t[:-1] + "+0000")),
    "trailing zeros dropped (Go's RFC3339Nano, Java's Instant)": ("auth-logs", _ts(_go_nano)),
    "milliseconds": ("auth-logs", _ts(lambda t: t[:-1] + ".123Z")),
    "eight fraction digits": ("cicd-events", _ts(lambda t: t[:-1] + ".12345678Z")),
    "nanoseconds (Go's RFC3339Nano, chrono, OpenTelemetry)": (
        "host-metrics",
        _ts(lambda t: t[:-1] + ".987654321Z"),
    ),
}


def test_nine_fraction_digits_read_as_parse_timestamp_reads_them() -> None:
    import random

    from streamproc.decode.frames import _times

    rng = random.Random(9)
    stamps = [
        "1970-01-01T00:00:00.000000001Z",
        "2026-03-01T10:00:00.999999999Z",
        "9999-12-31T23:59:58.999999999Z",
    ] + [f"2026-03-01T10:00:{s:02d}.{rng.randrange(10**9):09d}Z" for s in range(60)]
    got = _times(stamps)
    assert got is not None and list(got) == [parse_timestamp(s) for s in stamps]


# ... or declines it, the decoder deciding each record
DECLINED: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {
    "a negative epoch": ("auth-logs", _ts(lambda t: -_epoch(t))),
    "a bool for a time": ("auth-logs", _ts(lambda t: True)),
    "epoch seconds as a string": ("api-access-logs", _ts(lambda t: str(_epoch(t)))),
    "an offset of 24 hours": ("auth-logs", _ts(lambda t: t[:-1] + "+24:00")),
    "lower-case z": ("auth-logs", _ts(lambda t: t[:-1] + "z")),
    "a space for the T": ("auth-logs", _ts(lambda t: t.replace("T", " "))),
    "no zone": ("auth-logs", _ts(lambda t: t[:-1])),
    "ten fraction digits": ("auth-logs", _ts(lambda t: t[:-1] + ".1234567891Z")),
    "a leap second": ("auth-logs", _ts(lambda t: t[:11] + "23:59:60Z")),
    "February 29 of 2026": ("auth-logs", _ts(lambda t: "2026-02-29" + t[10:])),
    "1969": ("auth-logs", _ts(lambda t: "1969" + t[4:])),
    'a bool as "true"': ("auth-logs", _with_raw("success", '"true"')),
    "a bool as 1": ("auth-logs", _with_raw("success", "1")),
    'an int as "200"': ("api-access-logs", _with_raw("status_code", '"200"')),
    "an int as 200.0": ("api-access-logs", _with_raw("status_code", "200.0")),
    "2**64 in an int field": ("api-access-logs", _with_raw("status_code", str(2**64))),
    "a number as a string": ("host-metrics", _with_raw("cpu_percent", '"97.5"')),
    "an enum value in another case": (
        "cicd-events",
        lambda r: orjson.dumps({**r, "type": r["type"].title()}),
    ),
    "an empty required string": ("auth-logs", _with_raw("username", '""')),
    "a null required field": ("support-tickets", _with_raw("ticket_id", "null")),
    "a NaN": ("host-metrics", _with_raw("cpu_percent", "NaN")),
    "a byte order mark": ("auth-logs", lambda r: b"\xef\xbb\xbf" + orjson.dumps(r)),
    "a repeated key": ("auth-logs", lambda r: orjson.dumps(r)[:-1] + b',"success":false}'),
    "a repeated key, a space before its colon": (
        "auth-logs",
        lambda r: orjson.dumps(r)[:-1] + b',"success" :false}',
    ),
    "a key repeated in a nested object": (
        "auth-logs",
        lambda r: orjson.dumps({**r, "user": {"name": "x"}})[:-2] + b',"name":"y"}}',
    ),
    "a list holding an object and a number": (
        "auth-logs",
        lambda r: orjson.dumps({**r, "tags": [{"a": 1}, 2]}),
    ),
    "a key repeated in an object of a list": (
        "auth-logs",
        lambda r: orjson.dumps({**r, "tags": [{"a": 1}]})[:-3] + b',"a":2}]}',
    ),
    "nested beyond max_depth": (
        "auth-logs",
        lambda r: orjson.dumps(
            {**r, "deep": functools.reduce(lambda d, _: {"d": d}, range(70), 1)}
        ),
    ),
    "a lone surrogate": ("auth-logs", _with_raw("user_agent", '"\\ud800"')),
    "a string over max_record_bytes": (
        "api-access-logs",
        _with_raw("user_agent", json.dumps("x" * (1 << 20))),
    ),
}


@pytest.mark.parametrize("every", [1, 7], ids=["all", "some"])
@pytest.mark.parametrize("what", sorted(TAKEN))
def test_records_a_frame_takes_are_judged_as_events(
    what: str, every: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    family, bend = TAKEN[what]
    judge = _both_ways(family, bend, every, monkeypatch)
    assert judge.frame_batches == 2  # the odd batch, and the next (the first starts time)


@pytest.mark.parametrize("what", sorted(TAKEN_TIMES))
def test_times_a_frame_takes_are_judged_as_events(
    what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    family, bend = TAKEN_TIMES[what]
    judge = _both_ways(family, bend, 1, monkeypatch)
    assert judge.frame_batches == 2


@pytest.mark.parametrize("what", sorted(DECLINED))
def test_records_a_frame_declines_are_judged_as_events(
    what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    family, bend = DECLINED[what]
    judge = _both_ways(family, bend, 7, monkeypatch)
    assert judge.frame_batches == 1  # the batch after the odd one
    # declined by the reader itself, not (only) by the engine's rules on time, however many
    # of the batch's records are so written
    records = _records(family)[:BATCH]
    for every in (1, 7):
        batch = [bend(r) if i % every == 0 else orjson.dumps(r) for i, r in enumerate(records)]
        reader = FrameReader(get_contract(family), DEFAULT_MAX_RECORD_BYTES)
        assert reader.read(batch) is None


# -- any family, any producer's style: what a frame takes, it holds as the decoder reads it --

_VALUES = [
    '"a"',
    '""',
    '" "',
    '"\\u00e9\\ud83d\\ude00"',
    '"\\u0000"',
    '"\\/"',
    '"x\\":y"',
    '"CREATED"',
    '"created"',
    '"pipeline"',
    "true",
    "false",
    "null",
    "0",
    "-0",
    "-0.0",
    "1E+2",
    "97",
    "97.5",
    "5e-324",
    "1e308",
    str(2**53 + 1),
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    '"97"',
    '"2026-03-01T10:00:00Z"',
    '"2026-03-01T10:00:07.5Z"',
    "1772359200",
    "[]",
    "{}",
    '["a",1,null,-0.0]',
    '[{"a":1}]',
    '{"a":1,"b":{"c":[1,"x"],"d":{}}}',
    '{"a":1,"b":{"c":2}}',
    '{"a":1,"b":{"c":2,"c":3}}',
    '{"b":{"c":"x\\" : y"}, "a" : 1}',
    '{"agent_status":{"a":1}}',
]
_STYLES = {
    "orjson": lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}",
    "json.dumps": lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}",
    "indented": lambda pairs: "{\n  " + ",\n  ".join(f"{k}: {v}" for k, v in pairs) + "\n}\n",
    "spaced colon": lambda pairs: "{" + ",".join(f"{k} : {v}" for k, v in pairs) + "}",
}


@st.composite
def _produced(draw: Any) -> tuple[str, list[bytes]]:
    """A family's batch, some records of it with fields changed (contract fields, other
    fields, a key repeated) and written in some producer's style."""
    family = draw(st.sampled_from(sorted(SCENARIOS)))
    records = _records(family)[:12]
    names = [*get_contract(family).fields, "x", "Username", "user.name", "agent_status"]
    batch = [orjson.dumps(r) for r in records]
    for at in draw(st.sets(st.integers(0, len(batch) - 1), min_size=1, max_size=3)):
        pairs = [(json.dumps(k), orjson.dumps(v).decode()) for k, v in records[at].items()]
        for _ in range(draw(st.integers(1, 3))):
            key = json.dumps(draw(st.sampled_from(names)))
            value = draw(st.sampled_from(_VALUES))
            if draw(st.booleans()):
                pairs = [(k, value if k == key else v) for k, v in pairs]
            if key not in {k for k, _ in pairs} or draw(st.integers(0, 9)) == 0:
                pairs.append((key, value))  # a new field, or now and then a repeated one
        batch[at] = draw(st.sampled_from(sorted(_STYLES)))
        batch[at] = _STYLES[batch[at]](pairs).encode()
    return family, batch


def _same_value(a: Any, b: Any) -> bool:
    """Equal and of one type (1 is not 1.0, 0.0 is not -0.0)."""
    return type(a) is type(b) and (repr(a) == repr(b) if type(a) is float else a == b)


@settings(max_examples=300, deadline=None)
@given(_produced())
def test_a_frame_holds_what_any_producer_wrote_as_the_decoder_reads_it(
    produced: tuple[str, list[bytes]],
) -> None:
    family, batch = produced
    contract = get_contract(family)
    frame = FrameReader(contract, DEFAULT_MAX_RECORD_BYTES).read(batch)
    if frame is None:
        return
    decoder = RecordDecoder(contract)
    for i, value in enumerate(batch):
        event = decoder.decode(value)
        assert type(event) is Event, event
        assert frame.ts[i] == event.ts
        row = frame.row(i)
        assert row.keys() == event.data.keys()
        assert all(_same_value(row[k], event.data[k]) for k in row), (row, event.data)
        for name in contract.fields:
            assert _same_value(frame.column(name)[i], event.data.get(name))
