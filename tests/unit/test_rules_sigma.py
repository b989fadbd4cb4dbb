"""Sigma rules written from the specification, over hand-built api-access-logs and auth-logs
streams: every supported modifier, the condition forms, each correlation type, near misses
that must not fire, and rules that cannot run reported and skipped."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.commands.replay import ReplayInput, replay_records
from streamproc.config import parse_config_text
from tests.api_records import T0, iso, req
from tests.paths import REPO


def login(
    t: float, user: str = "alice", ip: str = "198.51.100.7", success: bool = False, **extra: Any
) -> bytes:
    return orjson.dumps(
        {"timestamp": iso(T0 + t), "username": user, "ip_address": ip, "success": success, **extra}
    )


def sigma_config(tmp_path: Path, *rules: str, section: str = "sigma: [sigma/]\n") -> Any:
    folder = tmp_path / "sigma"
    folder.mkdir(exist_ok=True)
    for i, rule in enumerate(rules):
        (folder / f"r{i}.yml").write_text(textwrap.dedent(rule))
    cfg = tmp_path / "streamproc.yaml"
    cfg.write_text(section)
    return parse_config_text(cfg.read_text(), file=str(cfg))


def fired_lines(config: Any, lines: list[bytes], topic: str = "api-access-logs") -> list[Any]:
    return replay_records(config, [ReplayInput(topic, lines=lines)]).alerts


def web_rule(detection: str, name: str = "t") -> str:
    return f"""
        title: Test {name}
        name: {name}
        id: 00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}
        status: test
        level: high
        logsource:
          category: webserver
        detection:
{textwrap.indent(textwrap.dedent(detection), " " * 10)}
    """


def matching(tmp_path: Path, detection: str, lines: list[bytes]) -> list[float]:
    """The times (from T0) of the events the detection fires on."""
    config = sigma_config(tmp_path, web_rule(detection))
    assert not config.rules.skipped, config.rules.skipped
    return [a.event_time - T0 for a in fired_lines(config, lines) if a.kind == "sigma:t"]


# -- modifiers --------------------------------------------------------------------------------


def test_contains_is_case_insensitive_and_all_needs_every_value(tmp_path: Path) -> None:
    det = """
        sel:
          cs-uri-query|contains|all: [union, select]
        condition: sel
    """
    lines = [
        req(0, endpoint="/s?q=1 UNION SELECT pw"),
        req(1, endpoint="/s?q=union"),
        req(2, endpoint="/s?q=select+x+union"),
    ]
    assert matching(tmp_path, det, lines) == [0, 2]


def test_startswith_endswith_and_plain_equality(tmp_path: Path) -> None:
    det = """
        a:
          cs-uri-query|startswith: /admin
        b:
          cs-uri-query|endswith: .php
        c:
          cs-method: TRACE
        condition: a or b or c
    """
    lines = [
        req(0, endpoint="/ADMIN/x"),
        req(1, endpoint="/x/admin"),
        req(2, endpoint="/a.php"),
        req(3, endpoint="/a.php5"),
        req(4, method="trace"),
        req(5, method="TRACEX"),
    ]
    assert matching(tmp_path, det, lines) == [0, 2, 4]


def test_cased_modifier_matches_case(tmp_path: Path) -> None:
    det = """
        sel:
          cs-user-agent|cased|contains: Nikto
        condition: sel
    """
    lines = [req(0, user_agent="Mozilla (Nikto/2.5)"), req(1, user_agent="nikto")]
    assert matching(tmp_path, det, lines) == [0]


def test_wildcards_inside_a_value(tmp_path: Path) -> None:
    det = """
        sel:
          cs-uri-query: '/api/v?/users/*/delete'
        condition: sel
    """
    lines = [
        req(0, endpoint="/api/v1/users/42/delete"),
        req(1, endpoint="/api/v10/users/4/delete"),
        req(2, endpoint="/API/V2/USERS/x/DELETE"),
        req(3, endpoint="/api/v1/users/42/deletex"),
    ]
    assert matching(tmp_path, det, lines) == [0, 2]


def test_re_modifier_with_ignore_case_flag(tmp_path: Path) -> None:
    det = """
        a:
          cs-user-agent|re: '^(sqlmap|nikto)/'
        b:
          cs-uri-query|re|i: 'etc/pass(wd|word)'
        condition: a or b
    """
    lines = [
        req(0, user_agent="sqlmap/1.7"),
        req(1, user_agent="SQLMAP/1.7"),
        req(2, user_agent="x sqlmap/1"),
        req(3, endpoint="/f?p=../../ETC/PASSWD"),
        req(4, endpoint="/f?p=etc/passw"),
    ]
    assert matching(tmp_path, det, lines) == [0, 3]


def test_cidr_modifier_ipv4_and_ipv6(tmp_path: Path) -> None:
    det = """
        sel:
          c-ip|cidr: [10.0.0.0/8, '2001:db8::/32']
        condition: sel
    """
    lines = [
        req(0, ip="10.20.30.40"),
        req(1, ip="11.0.0.1"),
        req(2, ip="2001:db8::1"),
        req(3, ip="2001:db9::1"),
        req(4, ip="not-an-ip"),
    ]
    assert matching(tmp_path, det, lines) == [0, 2]


def test_base64_and_base64offset_modifiers(tmp_path: Path) -> None:
    import base64

    det = """
        exact:
          cs-uri-query|base64: /bin/sh
        inside:
          cs-uri-query|base64offset|contains: whoami
        condition: exact or inside
    """
    shell = base64.b64encode(b"/bin/sh").decode()
    offsets = [base64.b64encode(prefix + b"whoami && id").decode() for prefix in (b"", b"x", b"xy")]
    lines = [
        req(0, endpoint=shell),
        req(1, endpoint=shell + "x"),
        req(2, endpoint="/c?cmd=" + offsets[0]),
        req(3, endpoint="/c?cmd=" + offsets[1]),
        req(4, endpoint="/c?cmd=" + offsets[2]),
        req(5, endpoint="/c?cmd=" + base64.b64encode(b"who am i").decode()),
    ]
    assert matching(tmp_path, det, lines) == [0, 2, 3, 4]


def test_windash_modifier_matches_every_dash_form(tmp_path: Path) -> None:
    det = """
        sel:
          cs-uri-query|windash|contains: ' -enc '
        condition: sel
    """
    lines = [
        req(0, endpoint="/r?c=powershell -enc AAA"),
        req(1, endpoint="/r?c=powershell /enc A"),
        req(2, endpoint="/r?c=powershell \u2013enc A"),
        req(3, endpoint="/r?c=powershell enc A"),
    ]
    assert matching(tmp_path, det, lines) == [0, 1, 2]


def test_exists_modifier_both_ways(tmp_path: Path) -> None:
    det = """
        has_ref:
          referer|exists: true
        no_agent:
          cs-user-agent|exists: false
        condition: has_ref or no_agent
    """
    lines = [
        req(0, referer="https://x"),
        req(1),
        orjson.dumps(
            {
                "timestamp": iso(T0 + 2),
                "endpoint": "/",
                "method": "GET",
                "status_code": 200,
                "ip_address": "1.2.3.4",
            }
        ),
    ]
    assert matching(tmp_path, det, lines) == [0, 2]


def test_numeric_comparisons_and_number_equality(tmp_path: Path) -> None:
    det = """
        big:
          bytes_sent|gt: 1000000
        slow:
          response_time_ms|gte: 5000
        tiny:
          bytes_sent|lt: 10
        small:
          bytes_sent|lte: 10
        teapot:
          sc-status: 418
        condition: 1 of big or slow or (tiny and small) or teapot
    """
    lines = [
        req(0, bytes_sent=2_000_000),
        req(1, bytes_sent=1_000_000),
        req(2, response_time_ms=5000),
        req(3, response_time_ms=4999.9),
        req(4, bytes_sent=9),
        req(5, bytes_sent=10),
        req(6, status=418),
        req(7, status=419),
        req(8, bytes_sent="lots"),
    ]
    assert matching(tmp_path, det, lines) == [0, 2, 4, 6]


# -- conditions -----------------------------------------------------------------------------


def test_one_of_selection_pattern_and_not_filter(tmp_path: Path) -> None:
    det = """
        sel_traversal:
          cs-uri-query|contains: '../'
        sel_shell:
          cs-uri-query|endswith: [cmd.php, shell.jsp]
        filter_ok:
          sc-status: 404
        condition: 1 of sel_* and not filter_ok
    """
    lines = [
        req(0, endpoint="/f?p=../../x"),
        req(1, endpoint="/f?p=../../x", status=404),
        req(2, endpoint="/up/cmd.php"),
        req(3, endpoint="/up/shell.jsp", status=404),
        req(4, endpoint="/ok"),
    ]
    assert matching(tmp_path, det, lines) == [0, 2]


def test_all_of_them_needs_every_selection(tmp_path: Path) -> None:
    det = """
        method:
          cs-method: [PUT, DELETE]
        path:
          cs-uri-query|startswith: /api/admin
        condition: all of them
    """
    lines = [
        req(0, method="PUT", endpoint="/api/admin/u"),
        req(1, method="GET", endpoint="/api/admin/u"),
        req(2, method="DELETE", endpoint="/api/users"),
    ]
    assert matching(tmp_path, det, lines) == [0]


def test_keywords_match_any_string_field(tmp_path: Path) -> None:
    det = """
        keywords:
          - 'masscan'
          - 'zgrab'
        condition: keywords
    """
    lines = [req(0, user_agent="masscan/1.3"), req(1, endpoint="/?via=ZGrab"), req(2)]
    assert matching(tmp_path, det, lines) == [0, 1]


def test_an_sshd_rule_reads_auth_logs(tmp_path: Path) -> None:
    rule = """
        title: Root login attempt
        id: 11111111-0000-4000-8000-000000000001
        level: medium
        logsource: {product: linux, service: sshd}
        detection:
          sel:
            User: root
            success: false
          condition: sel
    """
    config = sigma_config(tmp_path, rule)
    alerts = fired_lines(
        config,
        [
            login(0, user="root"),
            login(1, user="root", success=True),
            login(2, user="ROOT"),
            login(3),
        ],
        topic="auth-logs",
    )
    got = [(a.kind, a.event_time - T0, a.severity) for a in alerts if a.kind.startswith("sigma")]
    assert got == [
        ("sigma:11111111-0000-4000-8000-000000000001", 0, "medium"),
        ("sigma:11111111-0000-4000-8000-000000000001", 2, "medium"),
    ]


def test_config_logsources_map_a_new_logsource_and_fields(tmp_path: Path) -> None:
    rule = """
        title: Proxy blocked
        name: proxy_blocked
        logsource: {category: proxy}
        detection:
          sel:
            c-uri|contains: /wp-login
            r-code: 403
          condition: sel
    """
    section = (
        "sigma:\n  rules: [sigma/]\n  logsources:\n"
        "    - {category: proxy, family: api-access-logs,"
        " fields: {c-uri: endpoint, r-code: status_code}}\n"
    )
    config = sigma_config(tmp_path, rule, section=section)
    alerts = fired_lines(
        config,
        [
            req(0, endpoint="/wp-login.php", status=403),
            req(1, endpoint="/wp-login.php", status=200),
        ],
    )
    assert [a.event_time - T0 for a in alerts if a.kind == "sigma:proxy_blocked"] == [0]


# -- correlations ---------------------------------------------------------------------------

FAILED = """
    title: Failed login
    name: failed_login
    logsource: {category: authentication}
    detection:
      sel: {success: false}
      condition: sel
"""
SUCCESS = """
    title: Successful login
    name: good_login
    logsource: {category: authentication}
    detection:
      sel: {success: true}
      condition: sel
"""


def correlation(body: str) -> str:
    return "title: Correlation\nname: corr\nlevel: critical\ncorrelation:\n" + textwrap.indent(
        textwrap.dedent(body), "  "
    )


def corr_alerts(tmp_path: Path, body: str, lines: list[bytes], *rules: str) -> list[Any]:
    config = sigma_config(tmp_path, *(rules or (FAILED,)), correlation(body))
    assert not config.rules.skipped, config.rules.skipped
    return [a for a in fired_lines(config, lines, "auth-logs") if a.kind.startswith("sigma:")]


def test_event_count_fires_at_the_fifth_failure_per_user_within_ten_minutes(tmp_path: Path) -> None:
    body = """
        type: event_count
        rules: [failed_login]
        group-by: [User]
        timespan: 10m
        condition: {gte: 5}
    """
    lines = (
        [login(t) for t in (0, 60, 120, 180)] + [login(200, user="bob")] + [login(599), login(700)]
    )
    alerts = corr_alerts(tmp_path, body, lines)
    # the referenced rule raises nothing itself (generate: false)
    assert [(a.kind, a.key, a.event_time - T0, a.severity) for a in alerts] == [
        ("sigma:corr", {"username": "alice"}, 599, "critical")
    ]


def test_event_count_near_miss_spread_over_more_than_the_timespan(tmp_path: Path) -> None:
    body = """
        type: event_count
        rules: [failed_login]
        group-by: [User]
        timespan: 10m
        condition: {gte: 5}
    """
    lines = [login(t) for t in (0, 150, 300, 450, 601)] + [login(602, success=True)]
    assert corr_alerts(tmp_path, body, lines) == []


def test_value_count_distinct_users_from_one_address(tmp_path: Path) -> None:
    body = """
        type: value_count
        rules: [failed_login]
        group-by: [IpAddress]
        timespan: 5m
        condition: {field: User, gte: 3}
    """
    lines = [
        login(0, user="a"),
        login(1, user="a"),
        login(2, user="b"),
        login(3, user="c", ip="other"),
        login(4, user="c"),
    ]
    alerts = corr_alerts(tmp_path, body, lines)
    assert [(a.key, a.event_time - T0) for a in alerts] == [({"ip_address": "198.51.100.7"}, 4)]


def test_temporal_both_rules_within_the_timespan_in_any_order(tmp_path: Path) -> None:
    body = """
        type: temporal
        rules: [good_login, failed_login]
        group-by: [User]
        timespan: 1m
    """
    lines = [
        login(0, user="a", success=True),
        login(30, user="a"),  # fires at 30
        login(100, user="b"),
        login(200, user="b", success=True),
    ]  # too far apart
    alerts = corr_alerts(tmp_path, body, lines, FAILED, SUCCESS)
    assert [(a.key, a.event_time - T0) for a in alerts] == [({"username": "a"}, 30)]


def test_temporal_ordered_needs_the_listed_order(tmp_path: Path) -> None:
    body = """
        type: temporal_ordered
        rules: [failed_login, good_login]
        group-by: [User]
        timespan: 1m
    """
    lines = [
        login(0, user="a", success=True),
        login(10, user="a"),  # wrong order
        login(100, user="b"),
        login(110, user="b", success=True),  # fires at 110
        login(200, user="c"),
        login(300, user="c", success=True),
    ]  # too far apart
    alerts = corr_alerts(tmp_path, body, lines, FAILED, SUCCESS)
    assert [(a.key, a.event_time - T0) for a in alerts] == [({"username": "b"}, 110)]


def test_generate_true_keeps_the_referenced_rule_alerting(tmp_path: Path) -> None:
    body = """
        type: event_count
        rules: [failed_login]
        generate: true
        timespan: 1m
        condition: {gte: 2}
    """
    alerts = corr_alerts(tmp_path, body, [login(0), login(1)])
    assert sorted(a.kind for a in alerts) == [
        "sigma:corr",
        "sigma:failed_login",
        "sigma:failed_login",
    ]


# -- what does not load ---------------------------------------------------------------------


def test_unsupported_rules_are_reported_and_skipped_the_rest_load(tmp_path: Path) -> None:
    fieldref = web_rule(
        """
        sel:
          cs-uri-query|fieldref: cs-method
        condition: sel
    """,
        name="fieldref",
    )
    windows = """
        title: Windows process
        id: 22222222-0000-4000-8000-000000000002
        logsource: {product: windows, category: process_creation}
        detection:
          sel: {Image|endswith: '\\\\cmd.exe'}
          condition: sel
    """
    broken = "title: broken\nlogsource: {category: webserver}\ndetection: {condition: nope}\n"
    ok = web_rule(
        """
        sel:
          cs-uri-query|contains: ok
        condition: sel
    """,
        name="fine",
    )
    lt = correlation("""
        type: event_count
        rules: [fine]
        timespan: 1m
        condition: {lt: 2}
    """)
    config = sigma_config(tmp_path, fieldref, windows, broken, ok, lt)
    kinds = [s.kind for s in config.rules.specs]
    assert kinds == ["sigma:fine"]
    text = "\n".join(str(s) for s in config.rules.skipped)
    assert (
        "field 'endpoint': the fieldref modifier (a comparison between fields) is not "
        "supported" in text
    )
    assert "22222222-0000-4000-8000-000000000002: no family for logsource" in text
    assert "r2.yml" in text
    assert "corr: condition lt" in text


def test_rules_check_lists_what_loads_and_what_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamproc.commands.cli import main

    sigma_config(
        tmp_path,
        web_rule(
            """
        sel: {cs-uri-query|contains: x}
        condition: sel
    """,
            name="good",
        ),
        "title: broken\nlogsource: {category: webserver}\ndetection: {condition: nope}\n",
    )
    rc = main(["rules", "check", str(tmp_path / "sigma")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "sigma:good" in out and "api-access-logs" in out
    assert "r1.yml" in out and "skipped" in out


def test_check_config_lists_rule_detectors_and_skipped_sigma_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamproc.commands.cli import main

    sigma_config(
        tmp_path,
        web_rule(
            """
        sel: {cs-uri-query|contains: x}
        condition: sel
    """,
            name="good",
        ),
        "title: broken\nlogsource: {category: webserver}\ndetection: {condition: nope}\n",
    )
    assert main(["check-config", "-c", str(tmp_path / "streamproc.yaml")]) == 0
    out = capsys.readouterr().out
    assert "    sigma:good [high]" in out
    assert "Sigma rules skipped" in out and "r1.yml: broken: " in out


def test_replay_runs_rules_given_on_the_command_line(tmp_path: Path) -> None:
    from streamproc.commands.cli import main

    sigma_config(
        tmp_path,
        web_rule(
            """
        sel: {cs-uri-query|contains: /etc/passwd}
        condition: sel
    """,
            name="passwd",
        ),
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(
        "name: posts\nfamily: api-access-logs\ntype: frequency\n"
        "filter: {method: POST}\nwindow: 1m\nthreshold: 2\n"
    )
    data = tmp_path / "access.jsonl"
    data.write_bytes(
        b"\n".join(
            [
                req(0, endpoint="/x?f=/etc/passwd"),
                req(1, method="POST"),
                req(2, method="POST"),
                req(3),
            ]
        )
        + b"\n"
    )
    out = tmp_path / "alerts.jsonl"
    assert (
        main(
            [
                "replay",
                "--input",
                f"api-access-logs={data}",
                "--alerts-out",
                str(out),
                "--sigma",
                str(tmp_path / "sigma"),
                "--rules",
                str(rules),
            ]
        )
        == 0
    )
    kinds = [orjson.loads(line)["kind"] for line in out.read_bytes().splitlines()]
    assert kinds == ["sigma:passwd", "rule:posts"]


def test_a_correlation_keeps_its_state_across_a_checkpoint_restore(tmp_path: Path) -> None:
    from streamproc.decode import BatchDecoder
    from streamproc.detectors import build_engine

    body = """
        type: temporal_ordered
        rules: [failed_login, good_login]
        group-by: [User]
        timespan: 1m
    """
    config = sigma_config(tmp_path, FAILED, SUCCESS, correlation(body))
    binding = next(b for b in config.bindings if b.family == "auth-logs")
    lines = [login(0, user="b"), login(10, user="b", success=True)]
    events, _ = BatchDecoder.for_binding(binding).decode_batch(lines, "auth-logs", 0, [0, 1])
    first = build_engine(config, binding)
    assert first.process(events[:1])[0] == []
    second = build_engine(config, binding)
    second.restore(orjson.loads(orjson.dumps(first.snapshot())))
    alerts = [a for a in second.process(events[1:])[0] if a.kind == "sigma:corr"]
    assert [(a.key, a.event_time - T0) for a in alerts] == [({"username": "b"}, 10)]


def test_bench_detect_sigma_row_times_the_shipped_rules_against_the_built_ins() -> None:
    from bench.common import Context
    from bench.detect import sigma_rules

    folder = REPO / "bench" / "sigma"
    row = sigma_rules(Context(events=3000, runs=1, out="unused"), str(folder))
    assert row.extra["rules"] == 100 and row.extra["skipped"] == 0
    assert row.runs and row.baseline_runs and row.target_met is not None


def test_event_count_counts_an_event_once_whichever_rules_it_matched(tmp_path: Path) -> None:
    root = """
        title: Root login
        name: root_login
        logsource: {category: authentication}
        detection:
          sel: {User: root}
          condition: sel
    """
    body = """
        type: event_count
        rules: [failed_login, root_login]
        group-by: [User]
        timespan: 1m
        condition: {gte: 3}
    """
    # two failed root logins match both rules: two events, not four
    near = corr_alerts(tmp_path, body, [login(0, user="root"), login(1, user="root")], FAILED, root)
    assert near == []


def test_two_sigma_rules_of_one_name_the_second_is_skipped(tmp_path: Path) -> None:
    one = web_rule(
        """
        sel: {cs-uri-query|contains: a}
        condition: sel
    """,
        name="same",
    )
    config = sigma_config(tmp_path, one, one.replace("contains: a", "contains: b"))
    assert [s.kind for s in config.rules.specs] == ["sigma:same"]
    assert "sigma:same is also the kind of a rule in" in str(config.rules.skipped[0])


def test_null_values_and_dotted_fields_into_nested_objects(tmp_path: Path) -> None:
    det = """
        no_agent:
          cs-user-agent: null
        nested:
          tls.client.ja3|startswith: e7d705a3
        condition: no_agent or nested
    """
    bare = orjson.dumps(
        {
            "timestamp": iso(T0 + 2),
            "endpoint": "/",
            "method": "GET",
            "status_code": 200,
            "ip_address": "1.2.3.4",
        }
    )
    lines = [
        req(0, tls={"client": {"ja3": "E7D705A3286E19EA"}}),
        req(1, tls={"client": {}}),
        bare,
        req(3, **{"tls.client.ja3": "e7d705a3x"}),
    ]
    assert matching(tmp_path, det, lines) == [0, 2, 3]
