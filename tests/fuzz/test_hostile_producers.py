"""Records as careless or hostile producers write them, into the decoders and the ingest
paths: each becomes the Event the docs describe, or a dead letter with a specific reason;
nothing raises, and nothing is dropped without one.

Each case here is one input found to crash a decoder or to lose records without a word
(the fixes name the cause), next to odd inputs that were already handled and must stay so.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from aiohttp.test_utils import TestClient

from streamproc.commands.cli import main as cli_main
from streamproc.config import MqttConfig
from streamproc.contracts import get_contract, parse_contract
from streamproc.decode import BatchDecoder, DeadLetter, RecordDecoder
from streamproc.decode.deadletter import REASONS
from streamproc.decode.mapping import FieldMapping
from streamproc.decode.patterns import named_format
from streamproc.events import CoercionError, Event, parse_timestamp
from streamproc.sources.mqtt import MqttSource
from tests.integration.test_http_ingest import Direct, served

AUTH = get_contract("auth-logs")
ACCESS = get_contract("api-access-logs")
SYSLOG = parse_contract(
    {
        "family": "hostile-syslog",
        "fields": {
            "timestamp": {"type": "timestamp", "required": True},
            "message": {"type": "string"},
        },
    },
    "hostile-syslog.yaml",
)


def decoded(decoder: RecordDecoder | BatchDecoder, value: bytes) -> Event | DeadLetter:
    out = decoder.decode(value)
    assert type(out) is Event or (type(out) is DeadLetter and out.reason in REASONS)
    return out


def reason(out: Event | DeadLetter) -> str:
    return out.reason if type(out) is DeadLetter else "event"


def auth_record(timestamp: Any) -> bytes:
    return orjson.dumps(
        {"timestamp": timestamp, "username": "alice", "ip_address": "203.0.113.9", "success": True}
    )


# -- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        # RFC 2822 with a year beyond a C int: parsedate_to_datetime raised OverflowError
        "Thu, 26 Nov 99999999999 04:43:39 GMT",
        "Mon, 01 Jan 9999999999999999999 00:00:00 +0000",
        # an integer no float holds (a binding's default: a YAML integer): float() overflowed
        10**400,
        -(10**400),
    ],
)
def test_a_timestamp_that_overflows_is_a_bad_timestamp(value: Any) -> None:
    with pytest.raises(CoercionError) as caught:
        parse_timestamp(value)
    assert caught.value.reason == "bad_timestamp"


def test_an_rfc_2822_time_beyond_a_c_int_is_dead_lettered_not_raised() -> None:
    out = decoded(RecordDecoder(AUTH), auth_record("Thu, 26 Nov 99999999999 04:43:39 GMT"))
    assert reason(out) == "bad_timestamp"


def test_an_integer_default_beyond_a_float_is_dead_lettered_not_raised() -> None:
    mapping = FieldMapping({"timestamp": {"path": "time", "default": 10**400}})
    value = orjson.dumps({"username": "alice", "ip_address": "203.0.113.9", "success": True})
    assert reason(decoded(RecordDecoder(AUTH, mapping=mapping), value)) == "bad_timestamp"


@pytest.mark.parametrize(
    "value, want",
    [
        ("2026-01-01T00:00:00-00:00", 1767225600.0),
        ("2026-01-01T00:00:00+23:59", 1767139260.0),
        ("2026-01-01T00:00:00." + "1" * 5000 + "Z", 1767225600.1111112),
        ("9999-12-31T23:59:59Z", 253402300799.0),
        ("1970-01-01T00:00:00Z", 0.0),
        ("1.7E+09", 1700000000.0),
        ("  1700000000  ", 1700000000.0),
        (2**64, 18446744073.709553),  # nanoseconds
        ("2026-W01-1", 1766966400.0),  # ISO week date (datetime.fromisoformat reads it)
    ],
)
def test_odd_but_valid_times_are_read(value: Any, want: float) -> None:
    assert parse_timestamp(value) == want


@pytest.mark.parametrize(
    "value",
    [
        "２０２６-01-01T00:00:00Z",  # full-width digits in a date
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",  # in 10000, in UTC
        "1969-12-31T23:59:59Z",
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:60Z",
        "2026-02-30T00:00:00Z",
        "1e400",
        "-1e400",
        "nan",
        "Infinity",
        "-1",
        "0x10",
        "",
        " ",
        True,
        False,
        None,
        1e308,
        -1e308,
        float("nan"),
        float("inf"),
        [],
        {},
    ],
)
def test_impossible_times_are_bad_timestamps(value: Any) -> None:
    with pytest.raises(CoercionError) as caught:
        parse_timestamp(value)
    assert caught.value.reason == "bad_timestamp"
    if isinstance(value, str) and value.strip():  # (else the field is missing, or null in JSON)
        assert reason(decoded(RecordDecoder(AUTH), auth_record(value))) == "bad_timestamp"


# -- nginx / Apache access-log lines --------------------------------------------------------

LINE = '203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8"'


def combined(line: str | bytes) -> Event | DeadLetter:
    value = line.encode() if isinstance(line, str) else line
    return decoded(RecordDecoder(ACCESS, fmt="combined"), value)


@pytest.mark.parametrize(
    "line, want",
    [
        # two lines in one record (a shipper that batches lines): the pattern is not anchored at
        # the end (extended formats add fields), so the first line was read, the rest dropped
        (LINE + "\n" + LINE.replace("/a", "/b"), "not_access_log"),
        (LINE + "\r\n" + LINE + "\r\n" + LINE, "not_access_log"),
        # nginx escapes a newline in the request; a raw one is a second line
        (LINE.replace("GET /a", "GET /\r\nX: y"), "not_access_log"),
        # bytes sent beyond 64 bits: an Event no checkpoint or alert could write
        (LINE.replace(" 200 5 ", " 200 99999999999999999999999 "), "wrong_type"),
        (LINE.replace(" 200 5 ", " 200 9223372036854775808 "), "wrong_type"),
        # more digits than int() reads (4,300): a ValueError that stopped the worker
        (LINE.replace(" 200 5 ", f" 200 {'9' * 5000} "), "wrong_type"),
        # outside the range of every time: 1970 to 9999-12-31T23:59:59Z (years 5138 on, once
        # read as milliseconds, are read as written: test_decode_batch.py)
        (LINE.replace("10/Oct/2026:13:55:36 +0000", "31/Dec/9999:23:59:59 -0100"), "bad_timestamp"),
        (LINE.replace("2026", "1969"), "bad_timestamp"),
    ],
)
def test_access_log_records_that_were_lost_or_misread_are_dead_lettered(
    line: str, want: str
) -> None:
    out = combined(line)
    assert reason(out) == want, out


@pytest.mark.parametrize(
    "line, want",
    [
        (LINE + "\n", {"ip_address": "203.0.113.9", "endpoint": "/a"}),
        (LINE + "\r\n", {"ip_address": "203.0.113.9", "endpoint": "/a"}),
        (LINE.replace("203.0.113.9", "2001:db8::1"), {"ip_address": "2001:db8::1"}),
        (LINE.replace("203.0.113.9", "::ffff:1.2.3.4"), {"ip_address": "::ffff:1.2.3.4"}),
        (LINE.replace('"curl/8"', r'"a\"b"'), {"user_agent": 'a"b'}),
        (LINE.replace("GET /a", r"GET /\x22"), {"endpoint": '/"'}),
        (LINE.replace('"GET /a HTTP/1.1"', '"-"'), {"method": "-", "endpoint": "-"}),
        # a client that connected and sent nothing: a probe, kept
        (LINE.replace('"GET /a HTTP/1.1"', '""'), {"method": "-", "endpoint": "-"}),
        (LINE.replace('"GET /a HTTP/1.1"', r'"\x16\x03\x01"'), {"endpoint": "\x16\x03\x01"}),
        (LINE.replace(" 5 ", " - "), {"bytes_sent": 0}),
        (LINE.replace(" 5 ", " 9223372036854775807 "), {"bytes_sent": 2**63 - 1}),
        (LINE.replace(" 5 ", " 00000000000000000000005 "), {"bytes_sent": 5}),
        (LINE.removesuffix(' "-" "curl/8"'), {"status_code": 200}),  # common format
        (LINE + ' "extra" rt=0.1', {"user_agent": "curl/8"}),
        (LINE.replace("2026", "5137"), {"timestamp": 99965282136.0}),
        # a byte order mark (the first line of a file written on Windows) was kept in the
        # address: the alerts' key
        ("\ufeff" + LINE, {"ip_address": "203.0.113.9"}),
    ],
)
def test_odd_access_log_lines_become_the_events_they_say(line: str, want: dict[str, Any]) -> None:
    out = combined(line)
    assert type(out) is Event, out
    assert {k: out.data.get(k) for k in want} == want


@pytest.mark.parametrize(
    "line, want",
    [
        (LINE.replace(" ", "\t"), "not_access_log"),
        (LINE.encode().replace(b"GET /a", b"GET /caf\xe9"), "not_utf8"),
        (LINE.replace(" 200 ", " - "), "missing_field"),
        (LINE.replace(" +0000", ""), "bad_timestamp"),
        (LINE.replace("2026", "1969"), "bad_timestamp"),
        (LINE.replace("10/Oct", "99/Oct"), "bad_timestamp"),
        ('{"not": "a line"', "not_json"),
        (LINE.replace('"curl/8"', '"' + "A" * 2_000_000 + '"'), "too_large"),
    ],
)
def test_bad_access_log_lines_are_dead_lettered_with_their_reason(
    line: str | bytes, want: str
) -> None:
    assert reason(combined(line)) == want


# -- sshd and syslog lines ------------------------------------------------------------------

SSHD = "Nov 29 17:38:53 bastion sshd[4121]: Failed password for root from 203.0.113.9 port 22 ssh2"


def sshd(line: str) -> Event | DeadLetter:
    decoder = RecordDecoder(AUTH, fmt="sshd", lines=named_format("sshd", year=2026))
    return decoded(decoder, line.encode())


@pytest.mark.parametrize(
    "line",
    [
        SSHD.replace("port 22", "port 99999999999999999999"),
        SSHD.replace("[4121]", "[99999999999999999999999]"),
    ],
)
def test_an_sshd_port_or_pid_beyond_64_bits_is_a_wrong_type(line: str) -> None:
    assert reason(sshd(line)) == "wrong_type"


@pytest.mark.parametrize(
    "line, want",
    [
        (SSHD + "\r\n", "event"),
        ("\ufeff" + SSHD, "event"),  # a byte order mark: no part of the line
        (SSHD + "\n" + SSHD, "no_match"),  # anchored: both lines kept, in the dead letter
        (SSHD.replace("Nov 29", "Feb 30"), "bad_timestamp"),
        (SSHD.replace("17:38", "25:38"), "bad_timestamp"),
        (SSHD + "x" * 20_000, "too_large"),
    ],
)
def test_odd_sshd_lines(line: str, want: str) -> None:
    assert reason(sshd(line)) == want


def syslog(line: bytes) -> Event | DeadLetter:
    return decoded(RecordDecoder(SYSLOG, fmt="syslog"), line)


@pytest.mark.parametrize(
    "line",
    [
        # a "]" not escaped in a PARAM-VALUE ends the element early: the message was then cut
        # off silently (an Event with message "")
        b'<34>1 2026-11-29T17:38:53Z host app 12 ID47 [x a="]"] hello',
        # no space between the structured data and the message: the message was dropped
        b"<34>1 2026-11-29T17:38:53Z host app 12 ID47 -hello",
    ],
)
def test_an_rfc_5424_line_whose_message_would_be_lost_does_not_match(line: bytes) -> None:
    assert reason(syslog(line)) == "no_match"


@pytest.mark.parametrize(
    "line, message",
    [
        (b"<34>1 2026-11-29T17:38:53Z host app 12 ID47 - hello", "hello"),
        (b"<34>1 2026-11-29T17:38:53Z host app 12 ID47 -", ""),
        (b'<34>1 2026-11-29T17:38:53Z host app 12 ID47 [x a="\\]"] hi', "hi"),
        (b"<34>1 2026-11-29T17:38:53Z host app 12 ID47 - \xef\xbb\xbfhello", "hello"),
        (b"<34>1 2026-11-29T17:38:53Z host app 12 ID47 - line1\nline2", "line1\nline2"),
        (b"Nov 29 17:38:53 host app[1]: hi\r", "hi"),
    ],
)
def test_syslog_messages_are_kept_whole(line: bytes, message: str) -> None:
    out = syslog(line)
    assert type(out) is Event, out
    assert out.data["message"] == message


# -- field mappings -------------------------------------------------------------------------

ECS = FieldMapping(
    {
        "timestamp": "@timestamp",
        "username": ["user.names.1", "user.name"],
        "ip_address": "source.ip",
        "success": {"path": "event.outcome", "map": {"success": True, "failure": False}},
    }
)
ECS_RECORD: dict[str, Any] = {
    "@timestamp": "2026-01-01T00:00:00Z",
    "user": {"name": "alice"},
    "source": {"ip": "203.0.113.9"},
    "event": {"outcome": "success"},
}


@pytest.mark.parametrize(
    "change, want",
    [
        ({"user": "alice"}, "missing_field"),  # the path goes through a string
        ({"user": {"names": ["a"]}}, "missing_field"),  # index out of range, no fallback
        ({"user": {"names": "abc"}}, "missing_field"),  # an index into a string
        ({"user": {"name": {"first": "a"}}}, "wrong_type"),  # an object for a string
        ({"user": {"name": ["a", "b"]}}, "wrong_type"),
        ({"user": {"name": True}}, "wrong_type"),
        ({"user": {"name": ""}}, "missing_field"),
        ({"event": {"outcome": "unknown"}}, "wrong_type"),
        ({"event": {"outcome": 1.0}}, "wrong_type"),
        ({"event": {"outcome": None}}, "missing_field"),
        ({"event": {"outcome": {"x": 1}}}, "wrong_type"),
        ({"@timestamp": {"a": 1}}, "bad_timestamp"),
        ({"@timestamp": ["2026-01-01T00:00:00Z"]}, "bad_timestamp"),
        ({"source": None}, "missing_field"),
    ],
)
def test_mapped_records_of_the_wrong_shape_are_dead_lettered(
    change: dict[str, Any], want: str
) -> None:
    value = orjson.dumps({**ECS_RECORD, **change})
    assert reason(decoded(RecordDecoder(AUTH, mapping=ECS), value)) == want


@pytest.mark.parametrize(
    "change, want",
    [
        ({}, {"username": "alice", "success": True}),
        ({"user": {"names": ["a", "bob"], "name": "x"}}, {"username": "bob"}),
        ({"user": {"names": ["a"], "name": "alice"}}, {"username": "alice"}),
        ({"user.name": "flat"}, {"username": "flat"}),
        ({"user": {"name": 12}}, {"username": "12"}),
        ({"event": {"outcome": "SUCCESS"}}, {"success": True}),
        ({"event": {"outcome": True}}, {"success": True}),  # a bool the map does not name
        ({"event": {"outcome": 0}}, {"success": False}),
    ],
)
def test_mapped_records_of_odd_but_valid_shape_become_events(
    change: dict[str, Any], want: dict[str, Any]
) -> None:
    out = decoded(RecordDecoder(AUTH, mapping=ECS), orjson.dumps({**ECS_RECORD, **change}))
    assert type(out) is Event, out
    assert {k: out.data[k] for k in want} == want


# -- BatchDecoder against RecordDecoder -----------------------------------------------------

ODD_BATCH: list[bytes | None] = [
    auth_record("2026-01-01T00:00:00Z"),
    auth_record("9999-12-31T23:59:59.999Z"),
    auth_record("2026-01-01T00:00:00.\u0663Z"),  # an Arabic-Indic digit: float() reads it
    auth_record("Thu, 26 Nov 99999999999 04:43:39 GMT"),
    auth_record("2026-01-01T00:00:00z"),
    auth_record(1.7e12),
    b"\xef\xbb\xbf" + auth_record("2026-01-01T00:00:00Z"),
    auth_record("2026-01-01T00:00:00Z")[:-1] + b',"username":"bob"}',
    auth_record("2026-01-01T00:00:00Z")[:-1] + b',"n":18446744073709551616}',
    auth_record("2026-01-01T00:00:00Z")[:-1] + b',"k":"\\":"}',
    auth_record("2026-01-01T00:00:00Z") + b"\n",
    b" " + auth_record("2026-01-01T00:00:00Z"),
    b"",
    None,
    b"[]",
    b"null",
    b"\xff",
    b'{"timestamp":NaN}',
]


def test_a_batch_of_odd_records_decodes_as_one_record_at_a_time() -> None:
    def key(out: Event | DeadLetter) -> tuple[Any, ...]:
        if type(out) is Event:
            return ("event", out.ts, out.data, out.offset)
        assert type(out) is DeadLetter
        return (out.reason, out.detail, out.raw, out.offset)

    events, dead = BatchDecoder(AUTH).decode_batch(ODD_BATCH * 2, "t", 0, 0)
    one = RecordDecoder(AUTH)
    alone = [one.decode(v or b"", "t", 0, i) for i, v in enumerate(ODD_BATCH * 2)]
    assert [key(e) for e in events] == [key(o) for o in alone if type(o) is Event]
    assert [key(d) for d in dead] == [key(o) for o in alone if type(o) is DeadLetter]
    assert len(events) + len(dead) == 2 * len(ODD_BATCH)


# -- HTTP ingest ----------------------------------------------------------------------------


def pipeline_records(n: int) -> list[bytes]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return [
        orjson.dumps(
            {"timestamp": now, "type": "pipeline", "status": "success", "project": f"p{i}"}
        )
        for i in range(n)
    ]


async def post(tmp_path: Path, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    d = Direct(tmp_path)
    async with TestClient(served(d.ingest)) as client:
        answer = await client.post("/api/v1/events/cicd-events", data=body, headers=headers)
        return answer.status, await answer.json()


NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.mark.parametrize(
    "encode, encoding",
    [(gzip.compress, "gzip"), (gzip.compress, "GZip"), (zlib.compress, "deflate")],
)
async def test_a_compressed_body_is_read_whole(tmp_path: Path, encode: Any, encoding: str) -> None:
    # Content-Length is the compressed size: reading that many bytes of the decoded stream
    # kept the first record or two and dropped the rest without a word
    body = encode(b"\n".join(pipeline_records(50)))
    status, answer = await post(tmp_path, body, {**NDJSON, "Content-Encoding": encoding})
    assert (status, answer) == (200, {"accepted": 50, "rejected": 0})


async def test_a_corrupt_compressed_body_is_a_400_not_a_server_error(tmp_path: Path) -> None:
    body = gzip.compress(b"\n".join(pipeline_records(500)))
    corrupt = body[:20] + b"\xff" * 20 + body[40:]
    status, answer = await post(tmp_path, corrupt, {**NDJSON, "Content-Encoding": "gzip"})
    assert status == 400 and "gzip" in answer["error"]


async def test_a_compressed_body_is_limited_by_what_it_decodes_to(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\n" * 8_000_000)  # ~8 KB that decode to 8 MB
    status, answer = await post(tmp_path, bomb, {**NDJSON, "Content-Encoding": "gzip"})
    assert status == 413 and answer["max_body_bytes"] == 1024 * 1024


@pytest.mark.parametrize(
    "body, headers, want",
    [
        # a byte order mark: orjson refuses it, and says so
        (b"\xef\xbb\xbf" + b"\n".join(pipeline_records(3)), NDJSON, [(0, "not_json")]),
        (b"\r\n".join(pipeline_records(3)), NDJSON, []),  # and no newline after the last
        (b"\n\n".join(pipeline_records(3)) + b"\n\n", {}, []),
        (b'[{"a": "\xff"}]', {"Content-Type": "application/json"}, [(0, "not_utf8")]),
        (
            b"\n".join([pipeline_records(1)[0], b"\xff\xfe", b"x" * 10]),
            {},
            [(1, "not_utf8"), (2, "not_json")],
        ),
        (b"[" * 100_000 + b"]" * 100_000, {}, [(0, "too_deep")]),
        (b"[1, [2], null]", {}, [(0, "not_object"), (1, "not_object"), (2, "not_object")]),
    ],
)
async def test_odd_bodies_are_split_and_each_bad_record_named(
    tmp_path: Path, body: bytes, headers: dict[str, str], want: list[tuple[int, str]]
) -> None:
    status, answer = await post(tmp_path, body, headers)
    assert [(e["index"], e["reason"]) for e in answer.get("errors", [])] == want
    assert status in (200, 207, 400)


# -- MQTT payloads --------------------------------------------------------------------------


class Message:
    def __init__(self, payload: Any, topic: str = "streamproc/auth-logs/a", mid: int = 1) -> None:
        self.payload = payload
        self.topic = topic
        self.mid = mid
        self.qos = 1
        self.retain = False


async def test_mqtt_payloads_of_any_type_reach_the_decoder_as_bytes() -> None:
    source = MqttSource(MqttConfig(), ["streamproc/#"], linger=0)
    payloads = [b"", None, "text", b"\xff\xfe", 42, bytearray(b"{}"), b'{"status": "x"}']
    for i, payload in enumerate(payloads):
        source._queue.put_nowait(Message(payload, mid=i))  # type: ignore[arg-type]
    source._queue.put_nowait(Message(b"\xff", "streamproc/host-status/h"))  # type: ignore[arg-type]
    batch = await asyncio.wait_for(source.next_batch(), 5)
    assert batch is not None
    values = [r.value for r in batch.records]
    assert values == [b"", b"", b"text", b"\xff\xfe", b"42", b"{}", b'{"status": "x"}', b"\xff"]
    decoder = RecordDecoder(AUTH)
    assert [reason(decoder.decode(v)) for v in values] == [
        "empty",
        "empty",
        "not_json",
        "not_utf8",
        "not_object",
        "missing_field",
        "missing_field",
        "not_utf8",
    ]


# -- replay of a compressed file ------------------------------------------------------------


@pytest.mark.parametrize("cut", ["truncated", "corrupt"])
def test_replay_of_a_broken_gzip_input_judges_what_it_could_read_says_so_and_exits_3(
    tmp_path: Path, cut: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "topics:\n  - topic: nginx\n    family: api-access-logs\n    format: combined\n"
    )
    whole = gzip.compress(("\n".join([LINE] * 5000) + "\n").encode())
    log = tmp_path / "access.log.gz"
    log.write_bytes(
        whole[: len(whole) // 2] if cut == "truncated" else whole[:30] + b"\xff" * 30 + whole[60:]
    )
    argv = ["replay", "-c", str(config), "--input", f"nginx={log}", "--alerts-out", "-"]
    assert cli_main(argv) == 3
    captured = capsys.readouterr()
    err = captured.err.splitlines()[-1]
    assert err.startswith(f"streamproc replay: {log}: cannot read past line ")
    read = int(err.split("cannot read past line ")[1].split(" ")[0])
    assert (read > 0) == (cut == "truncated")  # the corrupt bytes are in the first block
    assert f"{read} records, {read} events judged" in captured.err  # (the summary, alerts on -)


# -- dead letters say which field -----------------------------------------------------------


@pytest.mark.parametrize(
    "decoder, value, field",
    [
        (RecordDecoder(AUTH, mapping=ECS), {**ECS_RECORD, "user": {"name": {"a": 1}}}, "username"),
        (
            RecordDecoder(AUTH),
            orjson.loads(auth_record("2026-01-01T00:00:00Z")) | {"success": 2},
            "success",
        ),
        (
            RecordDecoder(get_contract("cicd-events")),
            {"timestamp": 0, "type": ["pipeline"]},
            "type",
        ),
        (
            RecordDecoder(ACCESS, fmt="combined"),
            LINE.replace(" 200 5 ", " 200 99999999999999999999 "),
            "bytes_sent",
        ),
        (
            RecordDecoder(AUTH, fmt="sshd", lines=named_format("sshd", year=2026)),
            SSHD.replace("port 22", "port 99999999999999999999"),
            "port",
        ),
    ],
)
def test_a_wrong_type_dead_letter_names_its_field(
    decoder: RecordDecoder, value: Any, field: str
) -> None:
    raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
    out = decoded(decoder, raw)
    assert type(out) is DeadLetter and out.reason == "wrong_type"
    assert out.detail.startswith(f"field {field!r}: ")


# -- a repartition topic, written to by someone else ----------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        b'{"ts":"nan","data":{},"src":["t",0,1]}',  # a NaN time would reach the watermark
        b'{"ts":"-inf","data":{},"src":["t",0,1]}',
        b'{"ts":-1,"data":{},"src":["t",0,1]}',
        b'{"ts":1,"data":5,"src":["t",0,1]}',  # the detectors read data as an object
        b'{"ts":1,"data":["a"],"src":["t",0,1]}',
        b'{"ts":1,"data":{},"src":["t",1e300,1]}',  # a partition no checkpoint can write
        b'{"ts":1,"data":{},"src":[5,0,1]}',
        b'{"ts":1,"data":{},"src":"abc"}',
        b'{"ts":1,"data":{}}',
    ],
)
def test_a_repartitioned_record_not_as_streamproc_writes_it_is_dead_lettered(
    value: bytes,
) -> None:
    assert reason(decoded(RecordDecoder(AUTH, fmt="internal"), value)) == "not_json"


def test_a_repartitioned_record_keeps_its_source_coordinates() -> None:
    value = b'{"ts":1.5,"data":{"username":"a"},"src":["auth",3,4]}'
    out = decoded(RecordDecoder(AUTH, fmt="internal"), value)
    assert type(out) is Event
    assert (out.ts, out.data, out.source()) == (
        1.5,
        {"username": "a"},
        {"topic": "auth", "partition": 3, "offset": 4},
    )


async def test_a_retained_copy_is_judged_once_unless_its_topic_moved_on() -> None:
    """What a broker sends again on a new subscription (retain flag set): skipped when it is
    the last payload judged on its topic, judged when the topic has a new one, acked both
    ways; messages sent live are judged however alike."""
    source = MqttSource(MqttConfig(protocol="3.1.1"), ["streamproc/#"], linger=0)

    def message(payload: bytes, retain: bool, mid: int, topic: str = "d/1") -> aiomqtt.Message:
        return aiomqtt.Message(topic, payload, 1, retain, mid, None)

    sent = [
        message(b"a", True, 1),  # on the first subscription: never judged yet
        message(b"b", False, 2),  # live, published retained: b is now the retained one
        message(b"b", False, 3),  # the same payload again, live: a message of its own
        message(b"b", True, 4),  # sent again on a new subscription: judged already
        message(b"b", True, 5, "d/2"),  # another topic's
        message(b"c", True, 6),  # changed while the source was away: new
    ]
    for m in sent:
        source._queue.put_nowait(m)
    batch = await asyncio.wait_for(source.next_batch(), 5)
    assert batch is not None
    assert [(r.topic, r.value, r.offset) for r in batch.records] == [
        ("d/1", b"a", 1),
        ("d/1", b"b", 2),
        ("d/1", b"b", 3),
        ("d/2", b"b", 5),
        ("d/1", b"c", 6),
    ]
    assert [mid for mid, _ in batch.ack] == [1, 2, 3, 4, 5, 6]
    assert source.retained_repeats == 1
