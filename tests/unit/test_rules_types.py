"""Rule files: each rule type over small hand-built api-access-logs streams, in replay."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.commands.replay import ReplayInput, replay_records
from streamproc.config import parse_config_text
from streamproc.detectors import build_detectors, build_engine
from streamproc.errors import ConfigError
from tests.api_records import T0, req


def config_with(tmp_path: Path, rules: str) -> Any:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(textwrap.dedent(rules))
    cfg = tmp_path / "streamproc.yaml"
    cfg.write_text("rules: [rules/]\n")
    return parse_config_text(cfg.read_text(), file=str(cfg))


def fired(tmp_path: Path, rules: str, lines: list[bytes], kind: str | None = None) -> list[Any]:
    config = config_with(tmp_path, rules)
    result = replay_records(config, [ReplayInput("api-access-logs", lines=lines)])
    return [a for a in result.alerts if kind is None or a.kind == kind]


FREQ = """
    name: api-5xx
    family: api-access-logs
    type: frequency
    filter: {status_code: {gte: 500}}
    key: [ip_address]
    window: 60
    threshold: 3
    severity: high
    title: "{count} server errors for {ip_address}"
"""


def test_frequency_fires_on_the_third_error_within_a_minute(tmp_path: Path) -> None:
    lines = [req(0, status=500), req(10, status=200), req(20, status=502), req(59, status=503)]
    alerts = fired(tmp_path, FREQ, lines, "rule:api-5xx")
    assert len(alerts) == 1
    a = alerts[0]
    assert a.title == "3 server errors for 203.0.113.9"
    assert a.key == {"ip_address": "203.0.113.9"} and a.severity == "high"
    assert a.event_time == T0 + 59 and a.labels["rule"] == "api-5xx"


def test_frequency_near_misses_do_not_fire(tmp_path: Path) -> None:
    # three errors over 61 s; three within a minute but from two addresses; 200s do not count
    lines = [
        req(0, status=500),
        req(30, status=500),
        req(61, status=500),
        req(100, ip="a", status=500),
        req(101, ip="b", status=500),
        req(102, ip="a", status=500),
        req(103, ip="a", status=200),
    ]
    assert fired(tmp_path, FREQ, lines, "rule:api-5xx") == []


def test_frequency_quiet_after_a_fire_then_fires_again(tmp_path: Path) -> None:
    lines = [req(t, status=500) for t in (0, 1, 2, 3, 4, 5, 70, 71, 72)]
    alerts = fired(tmp_path, FREQ, lines, "rule:api-5xx")
    assert [a.event_time - T0 for a in alerts] == [2, 72]
    assert alerts[0].fingerprint != alerts[1].fingerprint


def test_cardinality_counts_distinct_endpoints_per_address(tmp_path: Path) -> None:
    rule = """
        name: scanner
        family: api-access-logs
        type: cardinality
        field: endpoint
        key: ip_address
        window: 5m
        threshold: 4
    """
    lines = [
        req(0, endpoint="/a"),
        req(1, endpoint="/a"),
        req(2, endpoint="/b"),
        req(3, endpoint="/c"),
        req(4, ip="other", endpoint="/d"),
        req(400, endpoint="/d"),
        req(500, endpoint="/e"),
        req(501, endpoint="/f"),
        req(502, endpoint="/g"),
        req(503, endpoint="/h"),
    ]
    alerts = fired(tmp_path, rule, lines, "rule:scanner")
    assert [a.event_time - T0 for a in alerts] == [502]
    assert alerts[0].evidence["distinct"] == 4


def test_new_term_reports_a_new_method_for_a_known_address_only(tmp_path: Path) -> None:
    rule = """
        name: new-method
        family: api-access-logs
        type: new_term
        field: method
        key: [ip_address]
        lookback: 1h
    """
    lines = [
        req(0, method="GET"),
        req(1, method="GET"),
        req(2, ip="x", method="DELETE"),
        req(3, method="DELETE"),
        req(4, method="DELETE"),
        req(7205, method="GET"),
    ]
    alerts = fired(tmp_path, rule, lines, "rule:new-method")
    assert [(a.evidence["value"], a.event_time - T0) for a in alerts] == [
        ("DELETE", 3),
        ("GET", 7205),
    ]


def test_change_reports_a_status_that_changed_for_an_endpoint(tmp_path: Path) -> None:
    rule = """
        name: status-change
        family: api-access-logs
        type: change
        field: status_code
        key: [endpoint]
    """
    lines = [
        req(0, status=200),
        req(1, status=200),
        req(2, endpoint="/b", status=404),
        req(3, status=503),
        req(4, status=503),
    ]
    alerts = fired(tmp_path, rule, lines, "rule:status-change")
    assert [(a.evidence["old"], a.evidence["new"]) for a in alerts] == [("200", "503")]


def test_flatline_fires_at_the_deadline_and_resolves(tmp_path: Path) -> None:
    rule = """
        name: heartbeat
        family: api-access-logs
        type: flatline
        filter: {endpoint: /health}
        window: 60
        threshold: 2
    """
    beat = [req(t, endpoint="/health") for t in (0, 20, 40)]
    other = [req(t, endpoint="/x") for t in range(50, 400, 10)]
    back = [req(400, endpoint="/health"), req(410, endpoint="/health")]
    alerts = fired(tmp_path, rule, beat + other + back, "rule:heartbeat")
    assert [(a.status, a.event_time - T0) for a in alerts] == [("firing", 80), ("resolved", 410)]
    assert alerts[0].fingerprint == alerts[1].fingerprint


def test_spike_up_and_down_against_the_previous_window(tmp_path: Path) -> None:
    rule = """
        name: traffic-spike
        family: api-access-logs
        type: spike
        window: 60
        ratio: 3
        min_reference: 2
    """
    lines = [req(t) for t in (0, 10)]  # window 0: 2
    lines += [req(60 + t) for t in range(0, 60, 8)]  # window 1: 8 -> up
    lines += [req(130)]  # window 2: 1 -> down
    lines += [req(180 + t) for t in range(0, 60, 20)]  # window 3: 3 (1 -> 3, ref < 2)
    lines += [req(250)]  # window 4: 1 (3 -> 1: down)
    lines += [req(310)]
    alerts = fired(tmp_path, rule, lines, "rule:traffic-spike")
    assert [
        (a.evidence["direction"], a.evidence["reference"], a.evidence["current"]) for a in alerts
    ] == [("up", 2, 8), ("down", 8, 1), ("down", 3, 1)]
    assert [a.event_time - T0 for a in alerts] == [120, 180, 300]


def test_metric_aggregation_average_above_a_threshold(tmp_path: Path) -> None:
    rule = """
        name: slow-api
        family: api-access-logs
        type: metric_aggregation
        field: response_time_ms
        metric: avg
        key: endpoint
        window: 60
        max_threshold: 500
    """
    lines = [
        req(1, response_time_ms=400),
        req(2, response_time_ms=700),  # avg 550
        req(3, endpoint="/b", response_time_ms=100),
        req(61, response_time_ms=100),
        req(62, response_time_ms="n/a"),  # avg 100
        req(130),
    ]
    alerts = fired(tmp_path, rule, lines, "rule:slow-api")
    assert [(a.key, a.evidence["value"]) for a in alerts] == [
        ({"endpoint": "/api/v1/items"}, 550.0)
    ]


def test_any_with_every_filter_operator(tmp_path: Path) -> None:
    rule = """
        name: admin-writes
        family: api-access-logs
        type: any
        filter:
          method: [POST, PUT, DELETE]
          endpoint: {startswith: /admin, not_in: [/admin/health]}
          status_code: {lt: 400}
          user_agent: {regex: '^curl/'}
          country: {exists: false}
          not: {ip_address: {startswith: "10."}}
    """
    lines = [
        req(0, method="POST", endpoint="/admin/users"),  # fires
        req(1, method="GET", endpoint="/admin/users"),  # GET
        req(2, method="POST", endpoint="/admin/health"),  # not_in
        req(3, method="POST", endpoint="/admin/x", status=403),  # lt 400
        req(4, method="POST", endpoint="/admin/x", country="NL"),  # exists false
        req(5, method="POST", endpoint="/admin/x", ip="10.1.2.3"),  # not
        req(6, method="PUT", endpoint="/Admin/x"),  # case matters
        req(7, method="DELETE", endpoint="/admin/x"),
    ]  # fires
    alerts = fired(tmp_path, rule, lines, "rule:admin-writes")
    assert [a.event_time - T0 for a in alerts] == [0, 7]


def test_a_rule_is_a_detector_colocated_by_its_key(tmp_path: Path) -> None:
    from streamproc.pipeline.repartition import colocation

    config = config_with(tmp_path, FREQ)
    binding = next(b for b in config.bindings if b.family == "api-access-logs")
    rule = next(d for d in build_detectors(config, binding) if d.kind == "rule:api-5xx")
    assert colocation(type(rule), binding.contract.key) == (("ip_address",), False)


def test_state_survives_a_checkpoint_restore(tmp_path: Path) -> None:
    from streamproc.decode import BatchDecoder

    rules = FREQ + "---\n"
    config = config_with(tmp_path, FREQ)
    binding = next(b for b in config.bindings if b.family == "api-access-logs")
    decoder = BatchDecoder.for_binding(binding)
    lines = [req(0, status=500), req(10, status=500), req(20, status=500)]
    events, _ = decoder.decode_batch(lines, "api-access-logs", 0, [0, 1, 2])
    first = build_engine(config, binding)
    assert first.process(events[:2])[0] == []
    snap = orjson.loads(orjson.dumps(first.snapshot()))
    second = build_engine(config, binding)
    second.restore(snap)
    alerts, _ = second.process(events[2:])
    assert [a.kind for a in alerts] == ["rule:api-5xx"]
    assert rules


def test_rule_file_errors_name_file_rule_and_problem_all_at_once(tmp_path: Path) -> None:
    bad = """
        - name: one
          family: api-access-logs
          type: frequency
          window: 5m
        - name: two
          family: no-such-family
          type: any
        - name: three
          family: api-access-logs
          type: any
          filter: {status_code: {between: [1, 2]}}
    """
    with pytest.raises(ConfigError) as info:
        config_with(tmp_path, bad)
    text = str(info.value)
    assert "r.yaml" in text
    assert "rule 'one': frequency rules need 'threshold'" in text
    assert "rule 'two': unknown family 'no-such-family'" in text
    assert "rule 'three': filter.status_code: unknown operator between" in text


EVERY_TYPE = """
- {name: t-any, family: api-access-logs, type: any, filter: {status_code: 500}, key: ip_address,
   realert: 600}
- {name: t-freq, family: api-access-logs, type: frequency, key: ip_address, window: 60,
   threshold: 3}
- {name: t-card, family: api-access-logs, type: cardinality, key: ip_address, field: endpoint,
   window: 120, threshold: 3}
- {name: t-new, family: api-access-logs, type: new_term, key: ip_address, field: method}
- {name: t-change, family: api-access-logs, type: change, key: ip_address, field: status_code}
- {name: t-flat, family: api-access-logs, type: flatline, key: ip_address, window: 50,
   threshold: 2}
- {name: t-spike, family: api-access-logs, type: spike, window: 60, ratio: 2}
- {name: t-metric, family: api-access-logs, type: metric_aggregation, key: method,
   field: status_code, metric: max, window: 60, max_threshold: 499}
"""


def _stream() -> list[bytes]:
    import random

    rnd = random.Random(7)
    out = []
    t = 0.0
    for _ in range(600):
        t += rnd.choice([0.5, 1, 2, 5, 20])
        out.append(
            req(
                t,
                ip=f"10.0.0.{rnd.randint(1, 4)}",
                endpoint=f"/e{rnd.randint(1, 6)}",
                status=rnd.choice([200, 200, 200, 404, 500]),
                method=rnd.choice(["GET", "GET", "POST", "DELETE"]),
            )
        )
    return out


def test_every_rule_type_gives_the_same_alerts_across_a_checkpoint_restore(tmp_path: Path) -> None:
    from streamproc.decode import BatchDecoder

    config = config_with(tmp_path, EVERY_TYPE)
    binding = next(b for b in config.bindings if b.family == "api-access-logs")
    lines = _stream()
    events, _ = BatchDecoder.for_binding(binding).decode_batch(
        lines, "api-access-logs", 0, list(range(len(lines)))
    )

    def run(engine: Any, part: list[Any]) -> list[Any]:
        out = []
        for i in range(0, len(part), 50):
            out.extend(engine.process(part[i : i + 50])[0])
        return out

    whole = build_engine(config, binding)
    expected = run(whole, events) + whole.finish()
    first = build_engine(config, binding)
    got = run(first, events[:300])
    second = build_engine(config, binding)
    second.restore(orjson.loads(orjson.dumps(first.snapshot())))
    got += run(second, events[300:]) + second.finish()

    def ident(a: Any) -> tuple[Any, ...]:
        return a.kind, a.fingerprint, a.status, a.event_time

    kinds = {a.kind for a in expected if a.kind.startswith("rule:")}
    assert kinds == {
        f"rule:t-{k}" for k in ("any", "freq", "card", "new", "change", "flat", "spike", "metric")
    }
    assert [ident(a) for a in got] == [ident(a) for a in expected]


async def test_a_reload_applies_an_edited_rule_and_keeps_the_others(tmp_path: Path) -> None:
    from streamproc.config import load_config
    from streamproc.decode import RawRecord
    from streamproc.pipeline.reload import Reloader
    from streamproc.pipeline.runtime import Judge

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(textwrap.dedent(FREQ))
    (rules / "b.yaml").write_text(
        "name: posts\nfamily: api-access-logs\ntype: any\nfilter: {method: POST}\n"
    )
    path = tmp_path / "streamproc.yaml"
    path.write_text("topics:\n  - topic: api\n    family: api-access-logs\nrules: [rules/]\n")
    judge = Judge(load_config(path))

    def records(times: list[float], start: int) -> list[RawRecord]:
        return [RawRecord(req(t, status=500), "api", 0, start + i) for i, t in enumerate(times)]

    judge.judge(records([0], 0))
    before = {d.kind: d for e in judge.engines.values() for d in e.detectors}
    (rules / "a.yaml").write_text(textwrap.dedent(FREQ).replace("threshold: 3", "threshold: 2"))
    result = await Reloader(path, judge=judge).reload()
    assert result.ok and not result.needs_restart
    after = {d.kind: d for e in judge.engines.values() for d in e.detectors}
    assert after["rule:posts"] is before["rule:posts"]
    assert after["rule:api-5xx"] is not before["rule:api-5xx"]
    alerts, _ = judge.judge(records([1], 1))
    assert [a.kind for a in alerts] == ["rule:api-5xx"]  # the 2nd error now fires
    # a rule whose type changes starts afresh instead of reading the other type's state
    (rules / "a.yaml").write_text(
        textwrap.dedent(FREQ).replace("type: frequency", "type: cardinality\nfield: endpoint")
    )
    result = await Reloader(path, judge=judge).reload()
    assert result.ok and not result.needs_restart
    assert judge.judge(records([2], 2))[0] == []


def test_a_rule_has_a_key_cap_and_is_repartitioned_by_its_key(tmp_path: Path) -> None:
    from streamproc.pipeline.repartition import plan

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(textwrap.dedent(FREQ))
    cfg = tmp_path / "streamproc.yaml"
    cfg.write_text(
        "rules: [rules/]\ntopics:\n  - topic: web\n    family: api-access-logs\n"
        "    keyed_by: endpoint\n    detectors:\n"
        "      'rule:api-5xx': {key_cap: 2}\n"
    )
    config = parse_config_text(cfg.read_text(), file=str(cfg))
    binding = config.bindings[0]
    local, remote = plan(config, binding)
    assert "rule:api-5xx" in remote["ip_address"] and "rule:api-5xx" not in local
    engine = build_engine(config, binding)
    rule = next(d for d in engine.detectors if d.kind == "rule:api-5xx")
    from streamproc.decode import BatchDecoder

    lines = [req(i, ip=f"192.0.2.{i}", status=500) for i in range(5)]
    events, _ = BatchDecoder.for_binding(binding).decode_batch(lines, "web", 0, list(range(5)))
    engine.process(events)
    assert rule.state_size() == 2 and rule.evictions == 3


def test_a_binding_turns_a_rule_off_and_a_misspelt_rule_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(textwrap.dedent(FREQ))
    cfg = tmp_path / "streamproc.yaml"
    base = "rules: [rules/]\ntopics:\n  - topic: web\n    family: api-access-logs\n    detectors:\n"
    cfg.write_text(base + "      'rule:api-5xx': {enabled: false}\n")
    config = parse_config_text(cfg.read_text(), file=str(cfg))
    assert "rule:api-5xx" not in {d.kind for d in build_detectors(config, config.bindings[0])}
    cfg.write_text(base + "      'rule:api-5x': {enabled: false}\n")
    with pytest.raises(ConfigError, match="no rule 'rule:api-5x' is loaded"):
        parse_config_text(cfg.read_text(), file=str(cfg))


@pytest.mark.parametrize("trouble", [False, True], ids=["clean", "late-forged-broken"])
def test_rules_judged_from_columns_give_what_they_give_per_event(
    tmp_path: Path, trouble: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binding with rules (every type, and the 100 Sigma rules of bench/sigma) is judged
    from its columns: the rules' shared matcher reads the columns and makes Events of the
    records a condition may match alone. Same alerts and dead letters as per event, on the
    generator's api stream."""
    from streamproc.rules import add_rules
    from tests.unit.test_frames import _alert_rows, _dead_rows, _judge, _stream

    config = config_with(tmp_path, EVERY_TYPE)
    add_rules(config, sigma=[str(Path(__file__).parents[2] / "bench" / "sigma")])
    rules = config.rules.for_family("api-access-logs")
    assert len(rules) > 100
    records = _stream("api", "api-access-logs", 12000, seed=5, trouble=trouble)
    want_alerts, want_dead, _ = _judge(config, records, 500, False, monkeypatch)
    got_alerts, got_dead, judge = _judge(config, records, 500, True, monkeypatch)
    assert {a.kind for a in want_alerts} >= {"rule:t-any", "rule:t-freq", "rule:t-card"}
    assert any(a.kind.startswith("sigma:") for a in want_alerts)
    assert _alert_rows(got_alerts) == _alert_rows(want_alerts)
    assert _dead_rows(got_dead) == _dead_rows(want_dead)
    assert judge.frame_batches > 0 and judge.frame_strays == 0
