"""ECS-mapped records and nginx combined lines produce the same events and alerts as native
records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamproc.config import parse_config_text
from streamproc.decode import RawRecord
from streamproc.pipeline.runtime import Judge
from tests.streams import auth_stream, to_ecs

ECS_CONFIG = """
topics:
  - topic: auth-logs
    family: auth-logs
  - topic: ecs-auth
    family: auth-logs
    fields:
      timestamp: "@timestamp"
      username: user.name
      ip_address: source.ip
      success: {path: event.outcome, map: {success: true, failure: false}}
      user_agent: user_agent.original
      country: source.geo.country_iso_code
  - topic: api-access-logs
    family: api-access-logs
  - topic: nginx-access
    family: api-access-logs
    format: combined
  - topic: ecs-http
    family: api-access-logs
    fields:
      timestamp: "@timestamp"
      endpoint: url.original
      method: http.request.method
      status_code: http.response.status_code
      ip_address: source.ip
      user_agent: user_agent.original
"""


def _alert_keys(alerts: list) -> list[tuple]:
    return sorted((a.kind, a.fingerprint, a.status, a.severity) for a in alerts)


def test_ecs_auth_records_produce_the_same_alerts_as_native_records() -> None:
    config = parse_config_text(ECS_CONFIG, file="test.yaml")
    stream = auth_stream(3000, 3)
    native = Judge(config)
    a_native, d_native = native.judge(
        [RawRecord(orjson.dumps(e), "auth-logs", 0, i) for i, e in enumerate(stream)]
    )
    native_alerts = a_native + native.finish()
    ecs = Judge(config)
    a_ecs, d_ecs = ecs.judge(
        [RawRecord(orjson.dumps(to_ecs(e)), "ecs-auth", 0, i) for i, e in enumerate(stream)]
    )
    ecs_alerts = a_ecs + ecs.finish()
    assert d_native == [] and d_ecs == []
    assert len([a for a in native_alerts if a.kind == "brute_force"]) == 3
    assert _alert_keys(native_alerts) == _alert_keys(ecs_alerts)


def _api_requests() -> list[dict]:
    base = 1_790_000_000
    reqs = []
    for i in range(700):  # one client hammering: rate abuse territory
        reqs.append(
            {
                "timestamp": base + i * 0.3,
                "ip_address": "192.0.2.50",
                "method": "GET",
                "endpoint": f"/api/v1/items?page={i}",
                "status_code": 200,
                "user_agent": "curl/8.4.0",
            }
        )
    attacks = [
        "/products?id=1%27%20OR%20%271%27=%271",
        "/search?q=1+UNION+SELECT+username,password+FROM+users--",
        "/item?id=1;DROP TABLE users",
        "/login?user=admin'--",
    ]
    for j, path in enumerate(attacks):
        reqs.append(
            {
                "timestamp": base + 100 + j,
                "ip_address": f"198.51.100.{j + 1}",
                "method": "GET",
                "endpoint": path,
                "status_code": 500,
                "user_agent": "sqlmap/1.7.2#stable (https://sqlmap.org)",
            }
        )
    for k in range(200):
        reqs.append(
            {
                "timestamp": base + 50 + k,
                "ip_address": f"203.0.113.{k % 50 + 1}",
                "method": "POST" if k % 3 else "GET",
                "endpoint": "/api/v1/orders",
                "status_code": 201 if k % 3 else 200,
                "user_agent": "Mozilla/5.0 (X11)",
            }
        )
    reqs.sort(key=lambda r: r["timestamp"])
    return reqs


def _combined(r: dict) -> bytes:
    when = datetime.fromtimestamp(r["timestamp"], tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'{r["ip_address"]} - - [{when}] "{r["method"]} {r["endpoint"]} HTTP/1.1" '
        f'{r["status_code"]} 512 "-" "{r["user_agent"]}"'
    ).encode()


def _ecs_http(r: dict) -> bytes:
    when = datetime.fromtimestamp(r["timestamp"], tz=UTC).isoformat()
    return orjson.dumps(
        {
            "@timestamp": when,
            "url": {"original": r["endpoint"]},
            "http": {
                "request": {"method": r["method"]},
                "response": {"status_code": r["status_code"]},
            },
            "source": {"ip": r["ip_address"]},
            "user_agent": {"original": r["user_agent"]},
        }
    )


def test_nginx_combined_and_ecs_http_records_decode_to_the_same_events_and_alerts() -> None:
    config = parse_config_text(ECS_CONFIG, file="test.yaml")
    # combined logs have whole seconds only: compare on whole-second traffic
    reqs = [dict(r, timestamp=float(int(r["timestamp"]))) for r in _api_requests()]
    results = {}
    for topic, encode in (
        ("api-access-logs", orjson.dumps),
        ("nginx-access", _combined),
        ("ecs-http", _ecs_http),
    ):
        judge = Judge(config)
        records = [RawRecord(encode(r), topic, 0, i) for i, r in enumerate(reqs)]
        decoder = judge.decoders[judge.binding_for("kafka", topic).name]
        events = [decoder.decode(r.value, topic, 0, r.offset) for r in records]
        assert all(type(e).__name__ == "Event" for e in events), topic
        fields = [
            (
                e.ts,
                e.data["ip_address"],
                e.data["method"],
                e.data["endpoint"],
                e.data["status_code"],
                e.data.get("user_agent"),
            )
            for e in events
        ]
        alerts, dead = judge.judge(records)
        results[topic] = (fields, _alert_keys(alerts + judge.finish()), dead)
    native = results["api-access-logs"]
    for topic in ("nginx-access", "ecs-http"):
        assert results[topic][0] == native[0], topic
        assert results[topic][1] == native[1], topic
        assert results[topic][2] == []


def test_combined_decoder_keeps_garbage_request_lines_and_rejects_non_log_lines() -> None:
    config = parse_config_text(ECS_CONFIG, file="test.yaml")
    judge = Judge(config)
    scan = (
        b'45.155.205.1 - - [12/Nov/2026:03:14:07 +0000] "\\x16\\x03\\x01\\x00\\xa5\\x01" '
        b'400 157 "-" "-"'
    )
    escaped = (
        b'192.0.2.9 - bob [12/Nov/2026:04:14:08 +0100] "GET /q?s=\\x22x\\x22 HTTP/1.1" '
        b'200 5 "https://ex.com/" "Mozilla \\"quoted\\""'
    )
    common = b'192.0.2.10 - - [12/Nov/2026:03:14:09 +0000] "POST /login HTTP/1.0" 401 0'
    alerts, dead = judge.judge(
        [
            RawRecord(scan, "nginx-access", 0, 0),
            RawRecord(escaped, "nginx-access", 0, 1),
            RawRecord(common, "nginx-access", 0, 2),
            RawRecord(b"just some text", "nginx-access", 0, 3),
        ]
    )
    assert [d.reason for d in dead] == ["not_access_log"]
    assert judge.stats.events == 3
    decoder = judge.decoders["nginx-access"]
    ev = decoder.decode(escaped)
    assert ev.data["endpoint"] == '/q?s="x"'
    assert ev.data["user_agent"] == 'Mozilla "quoted"'
    assert ev.data["remote_user"] == "bob"
    assert ev.ts == datetime(2026, 11, 12, 3, 14, 8, tzinfo=UTC).timestamp()
    garbage = decoder.decode(scan)
    assert garbage.data["method"] == "-" and garbage.data["status_code"] == 400


def test_flattened_ecs_keys_with_dots_are_found_too() -> None:
    config = parse_config_text(ECS_CONFIG, file="test.yaml")
    judge = Judge(config)
    flat = orjson.dumps(
        {
            "@timestamp": "2026-11-12T03:00:00Z",
            "user.name": "carol",
            "source.ip": "192.0.2.1",
            "event.outcome": "failure",
        }
    )
    ev = judge.decoders["ecs-auth"].decode(flat)
    assert ev.data["username"] == "carol" and ev.data["success"] is False


def test_a_flattened_key_below_a_nested_object_is_found() -> None:
    from streamproc.decode.mapping import compile_path

    falco = {
        "output_fields": {"container.id": "5e3f0c1d2b4a", "k8s.pod.name": "web-0"},
        "k8s": {"pod": {"name": "nested"}},
    }
    assert compile_path("output_fields.container.id")(falco) == "5e3f0c1d2b4a"
    assert compile_path("output_fields.k8s.pod.name")(falco) == "web-0"
    assert compile_path("k8s.pod.name")(falco) == "nested"


def test_a_list_index_in_a_path_is_a_decimal_number_or_no_index() -> None:
    from streamproc.decode.mapping import _MISSING, compile_path

    record = {"tags": ["a", "b"], "ips": {"\u00b2": "x"}}
    assert compile_path("tags.1")(record) == "b"
    assert compile_path("tags.\u0661")(record) == "b"  # an Arabic-Indic one, as int() reads it
    assert compile_path("tags.\u00b2")(record) is _MISSING  # a superscript two: no index
    assert compile_path("tags.9")(record) is _MISSING


def _found_by_the_rule(record: dict[str, Any], path: str) -> Any:
    """The mapping's lookup, stated plainly: the whole path as one key, else its first
    segment into an object (where the rest may again be one key) or, a decimal number, into
    a list; ``_MISSING`` where that finds nothing."""
    from streamproc.decode.mapping import _MISSING

    def walk(node: Any, parts: list[str]) -> Any:
        rest = ".".join(parts)
        if isinstance(node, dict):
            if rest in node:
                return node[rest]
            if len(parts) == 1:
                return _MISSING
            return walk(node.get(parts[0], _MISSING), parts[1:])
        if isinstance(node, list) and parts[0].isdecimal() and int(parts[0]) < len(node):
            child = node[int(parts[0])]
            return child if len(parts) == 1 else walk(child, parts[1:])
        return _MISSING

    return walk(record, path.split("."))


_SEGMENTS = st.sampled_from(["a", "b", "a.b", "0", "1", "\u0661", "\u00b2"])
_LEAVES = st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["x", "y"]))
_NODES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_SEGMENTS, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@example({"a": ["x", "y"]}, ["a", "0"])
@example({"a": {"b": 1}, "a.b": None}, ["a", "b"])
@given(st.dictionaries(_SEGMENTS, _NODES, max_size=4), st.lists(_SEGMENTS, min_size=1, max_size=4))
def test_every_path_finds_what_the_lookup_rule_says(
    record: dict[str, Any], parts: list[str]
) -> None:
    from streamproc.decode.mapping import compile_path

    path = ".".join(parts)
    assert compile_path(path)(record) == _found_by_the_rule(record, path)
