"""Hostile input: arbitrary bytes and arbitrary JSON into every decoder, and arbitrary decoded
events into every detector. No exception escapes; every record becomes an Event or a
DeadLetter with a known reason; every alert is well-formed.

Examples are kept modest (``max_examples``) so the file runs in seconds; hypothesis keeps the
failing examples it finds in ``.hypothesis/`` and replays them first next time.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.alerts import SEVERITIES, Alert
from streamproc.contracts import builtin_contracts, get_contract
from streamproc.decode import DeadLetter, RecordDecoder
from streamproc.decode.deadletter import REASONS
from streamproc.decode.mapping import FieldMapping
from streamproc.decode.patterns import named_format, regex_format
from streamproc.detectors import DetectorContext, DetectorEngine, detectors_for_family
from streamproc.events import Event

FAMILIES = sorted(builtin_contracts())
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_ENGINE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ECS_AUTH = FieldMapping(
    {
        "timestamp": "@timestamp",
        "username": "user.name",
        "ip_address": "source.ip",
        "success": {"path": "event.outcome", "map": {"success": True, "failure": False}},
    },
    where="fuzz.fields",
)

SYSLOG_AUTH = FieldMapping(
    {
        "username": "app_name",
        "ip_address": "hostname",
        "success": {"path": "severity", "map": {"6": True}, "default": False},
    },
    where="fuzz.fields",
)
VPN_AUTH = FieldMapping(
    {"success": {"path": "result", "map": {"ok": True, "failed": False}}}, where="fuzz.fields"
)


def _decoders() -> list[tuple[str, RecordDecoder]]:
    out = [(f"{family}/json", RecordDecoder(get_contract(family))) for family in FAMILIES]
    out.append(
        ("api-access-logs/combined", RecordDecoder(get_contract("api-access-logs"), fmt="combined"))
    )
    out.append(
        ("auth-logs/json+ecs-mapping", RecordDecoder(get_contract("auth-logs"), mapping=ECS_AUTH))
    )
    out.append(
        (
            "auth-logs/small-limits",
            RecordDecoder(get_contract("auth-logs"), max_record_bytes=64, max_depth=4),
        )
    )
    out.append(("auth-logs/sshd", RecordDecoder(get_contract("auth-logs"), fmt="sshd")))
    out.append(
        (
            "auth-logs/sshd-berlin",
            RecordDecoder(
                get_contract("auth-logs"),
                fmt="sshd",
                lines=named_format("sshd", year=2026, timezone="Europe/Berlin"),
            ),
        )
    )
    out.append(
        (
            "auth-logs/syslog+mapping",
            RecordDecoder(get_contract("auth-logs"), fmt="syslog", mapping=SYSLOG_AUTH),
        )
    )
    out.append(
        (
            "auth-logs/regex+mapping",
            RecordDecoder(
                get_contract("auth-logs"),
                fmt="regex",
                mapping=VPN_AUTH,
                lines=regex_format(
                    r"(?P<timestamp>\S+) (?P<username>\S*) (?P<ip_address>\S+) (?P<result>\w+)"
                ),
            ),
        )
    )
    return out


DECODERS = _decoders()


def assert_processed_or_dead_lettered(decoder: RecordDecoder, payload: bytes) -> None:
    out = decoder.decode(payload, "fuzz", 3, 42, b"k")
    if isinstance(out, DeadLetter):
        assert out.reason in REASONS, out.reason
        assert (out.topic, out.partition, out.offset, out.raw) == ("fuzz", 3, 42, payload)
        orjson.dumps(out.to_dict())  # a dead letter can always be written out
    else:
        assert isinstance(out, Event), type(out)
        assert out.family == decoder.family
        # A NaN or infinite event time would poison every watermark downstream.
        assert isinstance(out.ts, float) and math.isfinite(out.ts)
        # Its data can always be written (alert evidence, checkpoints, dead letters).
        orjson.dumps(out.data)
        for name in decoder.contract.required:
            assert out.data.get(name) not in (None, "")


# -- strategies ------------------------------------------------------------------------------

HUGE_INTS = st.integers(min_value=-(10**40), max_value=10**40)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "NaN",
            "nan",
            "-Infinity",
            "inf",
            "1e999",
            "-0",
            "",
            " ",
            "true",
            "0x1F",
            "１２",
            "\u0000",
            "9" * 400,
        ]
    ),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def _dump(value: Any) -> bytes:
    """Python's json: unlike orjson it writes huge ints and NaN/Infinity (not JSON: the
    decoder must dead-letter those as not_json)."""
    return json.dumps(value, allow_nan=True).encode()


BASE_TS = 1_700_000_000
GOOD_TIMESTAMPS = st.one_of(
    st.integers(BASE_TS, BASE_TS + 7200),
    st.integers(BASE_TS * 1000, (BASE_TS + 7200) * 1000),  # epoch ms
    st.integers(0, 7200).map(lambda s: _iso(BASE_TS + s)),
)
TIMESTAMPS = st.one_of(
    GOOD_TIMESTAMPS,
    st.sampled_from(
        [
            "2023-11-14T22:13:20+01:00",
            "2023-11-14 22:13:20",
            "not a time",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "-1",
            "1e308",
            "NaN",
            "2023-02-30T00:00:00Z",
            "",
        ]
    ),
)


def _iso(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


POOLS: dict[str, list[Any]] = {
    "username": ["alice", "bob", "root", "svc-backup", ""],
    "ip_address": ["10.0.0.1", "203.0.113.9", "198.51.100.7", "::1", "not-an-ip", "999.1.1.1"],
    "host": ["web-1", "web-2", "db-1"],
    "endpoint": [
        "/login",
        "/api/users?id=1",
        "/search?q=1%27%20OR%201%3D1--",
        "/?q=UNION%20SELECT%20password%20FROM%20users",
        "/%",
        "/" + "%25" * 50,
    ],
    "method": ["GET", "POST", "DELETE", "get"],
    "country": ["US", "DE", "BR", ""],
    "metric": ["revenue", "conversion_rate", "daily_active_users", "session_duration", "x"],
    "priority": ["urgent", "high", "normal", "low", "URGENT", "weird"],
    "status": ["success", "failure", "warning", "started", "cancelled", "?"],
    "environment": ["production", "prod", "staging", "dev"],
    "ticket_id": ["T-1", "T-2", "T-3"],
    "project": ["api", "web"],
    "service": ["api", "web"],
}
NUMBERS = st.one_of(
    st.floats(-1e6, 1e6),
    st.integers(-10, 10**6),
    st.sampled_from(["NaN", "inf", "-Infinity", "12.5", "", "1e999", True]),
)
# Mostly ordinary values, so detectors get events that decode, with the odd extreme one.
GOOD_NUMBERS = st.one_of(
    st.floats(0, 100),
    st.integers(0, 200),
    st.floats(-1e3, 1e5),
    st.sampled_from([0, 80.5, 95, 100, 1e308, -1e308, "NaN", "1e999", "97.5", 5e-324]),
)


def _plausible(
    name: str, ftype: str, enum: tuple[str, ...] | None, clean: bool = False
) -> st.SearchStrategy[Any]:
    if ftype == "timestamp":
        return GOOD_TIMESTAMPS if clean else TIMESTAMPS
    if enum:
        return st.one_of(st.sampled_from(list(enum)), st.sampled_from([e.upper() for e in enum]))
    if name in POOLS:
        return st.sampled_from(POOLS[name])
    if ftype in ("number", "int"):
        return GOOD_NUMBERS if clean else NUMBERS
    if ftype == "bool":
        if clean:
            return st.one_of(st.booleans(), st.sampled_from(["true", "failure", "success"]))
        return st.one_of(st.booleans(), st.sampled_from(["true", "failure", "yes", "maybe", 1]))
    return st.one_of(st.text(max_size=20), st.sampled_from(["@channel", "<!here>", "<b>x</b>"]))


def _sometimes_wild(plausible: st.SearchStrategy[Any], odds: int) -> st.SearchStrategy[Any]:
    # Hypothesis favours small integers, so the rare branch is the largest one.
    return st.integers(1, odds).flatmap(lambda n: JSON_VALUES if n == odds else plausible)


def records(family: str, *, clean: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Records of ``family``: plausible values, each field sometimes of any JSON type, some
    fields missing, some extra fields. ``clean`` makes most records decode (for detectors)."""
    contract = get_contract(family)
    required, optional = {}, {}
    for name, spec in contract.fields.items():
        plausible = _plausible(name, spec.type, spec.enum, clean)
        # One field in `odds` gets a value of any JSON type instead.
        value = _sometimes_wild(plausible, 20 if clean else 4)
        (required if spec.required else optional)[name] = value
    full = st.fixed_dictionaries(required, optional=optional)
    extra = st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=3)
    if clean:
        return st.builds(lambda rec, more: {**more, **rec}, full, extra)
    base = st.fixed_dictionaries({}, optional={**required, **optional})
    return st.builds(lambda rec, more: {**more, **rec}, st.one_of(full, full, full, base), extra)


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


# -- decoders --------------------------------------------------------------------------------
# Generating examples costs far more than decoding them, so every example goes through every
# decoder (each family, json and combined, with a field mapping, with tight limits).

RECORDS = {family: records(family) for family in FAMILIES}
CLEAN_RECORDS = {family: records(family, clean=True) for family in FAMILIES}
ANY_FAMILY_RECORD = st.sampled_from(FAMILIES).flatmap(
    lambda family: st.tuples(st.just(family), RECORDS[family])
)


@FUZZ
@given(payload=st.binary(max_size=512))
def test_arbitrary_bytes_are_decoded_or_dead_lettered(payload: bytes) -> None:
    for _, decoder in DECODERS:
        assert_processed_or_dead_lettered(decoder, payload)


@FUZZ
@given(value=JSON_VALUES)
def test_arbitrary_json_is_decoded_or_dead_lettered(value: Any) -> None:
    payload = _dump(value)
    for _, decoder in DECODERS:
        assert_processed_or_dead_lettered(decoder, payload)


@settings(FUZZ, max_examples=200)
@given(family_record=ANY_FAMILY_RECORD)
def test_records_with_wrong_types_in_any_field_are_decoded_or_dead_lettered(
    family_record: tuple[str, dict[str, Any]],
) -> None:
    family, record = family_record
    payload = _dump(record)
    for _, decoder in DECODERS:  # its own family's decoder, and every other one
        assert_processed_or_dead_lettered(decoder, payload)


@settings(FUZZ, max_examples=50)
@given(depth=st.integers(1, 3000), leaf=SCALARS)
def test_deeply_nested_documents_are_dead_lettered_not_crashing(depth: int, leaf: Any) -> None:
    try:
        payload = _dump(nested(depth, leaf))
    except RecursionError:  # json.dumps itself gives up first; build the text by hand
        payload = b'{"a":' * depth + b"1" + b"}" * depth
    # a nested value inside an otherwise valid record, too
    record = {
        "timestamp": BASE_TS,
        "username": "a",
        "ip_address": "1.2.3.4",
        "success": False,
        "host": "h",
        "extra": "x",
    }
    inside = _dump(record)[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    for _, decoder in DECODERS:
        assert_processed_or_dead_lettered(decoder, payload)
        assert_processed_or_dead_lettered(decoder, inside)


@FUZZ
@given(
    parts=st.tuples(
        st.text(max_size=20),
        st.text(max_size=40),
        st.text(max_size=12),
        st.text(max_size=30),
        st.text(max_size=6),
        st.text(max_size=8),
    )
)
def test_access_log_lines_with_arbitrary_parts_are_decoded_or_dead_lettered(
    parts: tuple[str, ...],
) -> None:
    ip, path, method, agent, status, size = parts
    decoder = RecordDecoder(get_contract("api-access-logs"), fmt="combined")
    line = (
        f'{ip} - - [14/Nov/2023:22:13:20 +0000] "{method} {path} HTTP/1.1" {status} '
        f'{size} "-" "{agent}"'
    )
    assert_processed_or_dead_lettered(decoder, line.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("status_code", [1e308, "9" * 400, -(2**70)])
def test_an_integer_beyond_64_bits_is_dead_lettered_not_decoded(status_code: Any) -> None:
    """Found by the detector fuzz: status_code 1e308 decoded to a 308-digit int, and every
    alert carrying it as evidence then failed to serialise (a poison pill for the alert log)."""
    record = {
        "timestamp": BASE_TS,
        "endpoint": "/",
        "method": "GET",
        "status_code": status_code,
        "ip_address": "1.2.3.4",
    }
    out = RecordDecoder(get_contract("api-access-logs")).decode(_dump(record), "t")
    assert isinstance(out, DeadLetter) and out.reason == "wrong_type"


# -- detectors -------------------------------------------------------------------------------


def _engine(family: str) -> DetectorEngine:
    """Every registered detector of the family, including the ones off by default."""
    detectors = [
        cls({}, DetectorContext(binding=f"fuzz-{family}", key_cap=50))
        for cls in detectors_for_family(family)
    ]
    return DetectorEngine(detectors, allowed_lateness=60.0)


def _events(family: str, raw: list[dict[str, Any]], partitions: list[int]) -> list[Event]:
    decoder = RecordDecoder(get_contract(family))
    out: list[Event] = []
    for i, record in enumerate(raw):
        event = decoder.decode(_dump(record), f"fuzz-{family}", partitions[i % len(partitions)], i)
        if isinstance(event, Event):
            out.append(event)
    return out


def assert_well_formed(alerts: list[Alert]) -> None:
    for alert in alerts:
        assert isinstance(alert, Alert)
        assert alert.severity in SEVERITIES, alert.severity
        assert alert.status in ("firing", "resolved"), alert.status
        assert alert.kind and alert.fingerprint
        assert isinstance(alert.title, str) and isinstance(alert.body, str)
        alert.to_json()  # always serialisable for the alert log


@pytest.mark.parametrize("family", FAMILIES)
@FUZZ_ENGINE
@given(data=st.data())
def test_detectors_survive_arbitrary_decoded_events(family: str, data: st.DataObject) -> None:
    engine = _engine(family)
    raw = data.draw(st.lists(CLEAN_RECORDS[family], max_size=25), label="records")
    partitions = data.draw(st.lists(st.integers(0, 2), min_size=1, max_size=3), label="partitions")
    events = _events(family, raw, partitions)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=3), label="cuts"))
    wall = 1000.0
    start = 0
    alerts: list[Alert] = []
    for cut in [*cuts, len(events)]:
        out, rejected = engine.process(events[start:cut], now=wall)
        alerts.extend(out)
        assert all(isinstance(r.event, Event) for r in rejected)
        start, wall = cut, wall + data.draw(st.floats(0, 100), label="wall step")
    alerts.extend(engine.advance(now=wall + 3600))
    alerts.extend(engine.finish())
    assert_well_formed(alerts)
    # State survives a checkpoint round trip: snapshot is plain data and restores.
    state = orjson.loads(orjson.dumps(engine.snapshot()))
    restored = _engine(family)
    restored.restore(state)
    out, _ = restored.process(events[-5:], now=wall + 7200)
    assert_well_formed(out)


SSHD_PIECES = st.sampled_from(
    [
        "Nov 29 17:38:53",
        "Feb 30 10:00:00",
        "Nov  9 17:38:53",
        "Dec 31 23:59:60",
        "Jan  1 24:00:00",
        "2026-11-29T17:38:53.123456+01:00",
        "<38>Nov 29 17:38:53",
        "<38>1 2026-11-29T17:38:53Z",
        " bastion",
        " sshd[4121]:",
        " sshd-session[1]:",
        " Failed password for",
        " Accepted publickey for",
        " invalid user",
        " root",
        " \u00e9\u0000",
        " from",
        " 203.0.113.9",
        " 2001:db8::1",
        " port",
        " 22",
        " 99999999999999999999",
        " ssh2",
        " Invalid user",
        " Connection closed by",
        " authenticating user",
        " [preauth]",
        " -",
        ' [a@1 b="]"]',
        "\ufeff",
        " ",
    ]
)


@FUZZ
@given(parts=st.lists(SSHD_PIECES, max_size=16), tail=st.text(max_size=20))
def test_syslog_shaped_lines_are_decoded_or_dead_lettered(parts: list[str], tail: str) -> None:
    payload = ("".join(parts) + tail).encode("utf-8", "surrogatepass")
    for _, decoder in DECODERS:
        assert_processed_or_dead_lettered(decoder, payload)
