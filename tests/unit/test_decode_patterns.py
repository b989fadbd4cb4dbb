"""Lines read by pattern: ``format: {regex: ...}``, ``format: sshd`` and ``format: syslog``.

A real-format auth.log (tests/samples/auth.log: sshd, PAM, CRON and sudo lines, a brute force
on root from 203.0.113.9) replayed with ``format: sshd`` fires brute_force; lines no format
matches are dead letters ``no_match``; a regex that can backtrack catastrophically is refused
when the config is read, with its file and line."""

from __future__ import annotations

import calendar
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from streamproc.commands.cli import main as cli_main
from streamproc.config import parse_config_text
from streamproc.contracts import get_contract
from streamproc.decode import DeadLetter
from streamproc.decode.patterns import (
    MAX_LINE_BYTES,
    SyslogClock,
    backtracking_risk,
    named_format,
    regex_format,
    sshd_format,
)
from streamproc.decode.records import RecordDecoder
from streamproc.errors import ConfigError
from streamproc.events import MAX_EPOCH, Event, parse_timestamp
from tests.paths import REPO, SAMPLES

AUTH_LOG = SAMPLES / "auth.log"
AUTH = get_contract("auth-logs")


def utc(*args: int) -> float:
    return float(calendar.timegm((*args, 0, 0, 0)[:6]))


def sshd(line: str, **kw: object) -> Event | DeadLetter:
    return RecordDecoder(AUTH, fmt="sshd", lines=named_format("sshd", year=2026, **kw)).decode(
        line.encode()
    )


# -- sshd -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, want",
    [
        (
            "Nov 29 17:38:53 bastion sshd[4121]: Failed password for root from 203.0.113.9 port 22 "
            "ssh2",
            {
                "username": "root",
                "ip_address": "203.0.113.9",
                "success": False,
                "port": 22,
                "method": "password",
                "event": "failed",
                "invalid_user": False,
            },
        ),
        (
            "Nov 29 17:38:53 bastion sshd[4121]: Failed password for invalid user admin from "
            "198.51.100.23 port 40112 ssh2",
            {"username": "admin", "success": False, "invalid_user": True, "event": "failed"},
        ),
        (
            "Nov 29 17:38:53 bastion sshd[4121]: Accepted publickey for deploy from 10.20.0.15 "
            "port "
            "51544 ssh2: ED25519 SHA256:3m7c1SjJ0v1J8fQm0nQeYQ4xZb2l5Z0pP1yq3o9w6Hk",
            {"username": "deploy", "success": True, "method": "publickey", "event": "accepted"},
        ),
        (
            "Nov 29 17:38:53 bastion sshd[4121]: Invalid user oracle from 198.51.100.23 port 40388",
            {
                "username": "oracle",
                "ip_address": "198.51.100.23",
                "success": False,
                "event": "invalid_user",
                "port": 40388,
            },
        ),
        (
            "Nov 29 17:38:53 bastion sshd[4121]: Connection closed by authenticating user root "
            "203.0.113.9 port 52490 [preauth]",
            {"username": "root", "success": False, "event": "closed_preauth", "port": 52490},
        ),
        (
            "Nov 29 17:38:53 bastion sshd-session[4121]: Failed password for root from 2001:db8::7 "
            "port 22 ssh2",
            {"ip_address": "2001:db8::7", "hostname": "bastion", "pid": 4121},
        ),
    ],
)
def test_sshd_lines_become_auth_logs_records(line: str, want: dict) -> None:
    out = sshd(line)
    assert isinstance(out, Event), out
    assert {k: out.data[k] for k in want} == want
    assert out.ts == utc(2026, 11, 29, 17, 38, 53)


def test_sshd_time_is_read_in_the_configured_zone() -> None:
    out = sshd(
        "Jul  4 09:00:00 h sshd[1]: Failed password for root from 192.0.2.1 port 2 ssh2",
        timezone="Europe/Berlin",
    )
    assert isinstance(out, Event)
    assert out.ts == datetime(2026, 7, 4, 9, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert out.ts == utc(2026, 7, 4, 7, 0, 0)  # CEST is UTC+2


def test_sshd_without_a_year_takes_this_year_and_a_later_month_as_last_year() -> None:
    now = utc(2026, 1, 3, 12, 0, 0).__float__
    fmt = sshd_format(SyslogClock(now=now))
    dec = RecordDecoder(AUTH, fmt="sshd", lines=fmt)
    line = "{} h sshd[1]: Failed password for root from 192.0.2.1 port 2 ssh2"
    december = dec.decode(line.format("Dec 31 23:59:59").encode())
    january = dec.decode(line.format("Jan  2 08:00:00").encode())
    assert december.ts == utc(2025, 12, 31, 23, 59, 59)  # type: ignore[union-attr]
    assert january.ts == utc(2026, 1, 2, 8, 0, 0)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "line",
    [
        "Nov 29 17:38:53 bastion sshd[4121]: pam_unix(sshd:session): session opened for user x",
        "Nov 29 17:38:53 bastion CRON[20211]: pam_unix(cron:session): session closed for user root",
        "Failed password for root from 203.0.113.9 port 22 ssh2",  # no syslog header
        '{"username": "root"}',
    ],
)
def test_lines_sshd_does_not_describe_are_no_match_dead_letters(line: str) -> None:
    out = sshd(line)
    assert isinstance(out, DeadLetter) and out.reason == "no_match"


def test_auth_log_replayed_with_format_sshd_fires_brute_force(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "topics:\n  - topic: auth-logs\n    family: auth-logs\n"
        "    format: {name: sshd, year: 2026, timezone: UTC}\n"
    )
    alerts, dead = tmp_path / "alerts.jsonl", tmp_path / "dead.jsonl"
    code = cli_main(
        [
            "replay",
            "-c",
            str(config),
            "--input",
            f"auth-logs={AUTH_LOG}",
            "--alerts-out",
            str(alerts),
            "--dead-letters-out",
            str(dead),
        ]
    )
    assert code == 0
    fired = [orjson.loads(x) for x in alerts.read_bytes().splitlines()]
    brute = [a for a in fired if a["kind"] == "brute_force" and a["status"] == "firing"]
    assert [(a["key"]["username"], a["key"]["ip_address"]) for a in brute] == [
        ("root", "203.0.113.9")
    ]
    assert brute[0]["event_time"] == utc(2026, 11, 29, 17, 37, 55)  # the fifth failure
    assert {a["kind"] for a in fired} == {"brute_force"}  # the scanner tried 3 times a name
    letters = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    lines = AUTH_LOG.read_text().splitlines()
    assert {d["reason"] for d in letters} == {"no_match"}
    # every line that is not an sshd authentication line, and only those
    assert len(letters) == sum(
        1
        for x in lines
        if not any(s in x for s in ("Failed ", "Accepted ", "Invalid user", "Connection closed by"))
    )


# -- syslog ---------------------------------------------------------------------------------


def syslog(line: str) -> dict:
    fmt = named_format("syslog", year=2026)
    out = fmt.parse(line)
    assert out is not None, line
    return out


def test_rfc5424_with_structured_data_and_bom() -> None:
    out = syslog(
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
        "\ufeffAn application event log entry..."
    )
    assert out == {
        "timestamp": "2003-10-11T22:14:15.003Z",
        "hostname": "mymachine.example.com",
        "app_name": "evntslog",
        "msgid": "ID47",
        "facility": 20,
        "severity": 5,
        "structured_data": '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]',
        "message": "An application event log entry...",
    }


def test_rfc5424_with_nil_values_and_offset_time() -> None:
    out = syslog(
        "<34>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
        "%% It's time to make the do-nuts."
    )
    assert out == {
        "timestamp": "2003-08-24T05:14:15.000003-07:00",
        "hostname": "192.0.2.1",
        "app_name": "myproc",
        "procid": "8710",
        "facility": 4,
        "severity": 2,
        "message": "%% It's time to make the do-nuts.",
    }


def test_rfc3164_with_and_without_pri() -> None:
    out = syslog("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
    assert out == {
        "timestamp": utc(2026, 10, 11, 22, 14, 15),
        "hostname": "mymachine",
        "app_name": "su",
        "facility": 4,
        "severity": 2,
        "message": "'su root' failed for lonvick on /dev/pts/8",
    }
    out = syslog("Nov  2 06:25:01 web-3 CRON[20211]: (root) CMD (command -v debian-sa1)")
    assert out["procid"] == "20211" and out["app_name"] == "CRON" and "facility" not in out


def test_syslog_binding_maps_fields_onto_a_contract() -> None:
    config = parse_config_text(
        """
topics:
  - topic: auth-syslog
    family: auth-logs
    format: syslog
    fields:
      username: {path: app_name}
      ip_address: hostname
      success: {path: severity, map: {"6": true}, default: false}
""",
        file="c.yaml",
    )
    dec = RecordDecoder(
        AUTH, fmt="syslog", lines=config.bindings[0].lines, mapping=config.bindings[0].mapping
    )
    out = dec.decode(b"<38>1 2026-03-01T10:00:00Z 10.0.0.9 alice - - - logged in")
    assert isinstance(out, Event), out
    assert (out.data["username"], out.data["ip_address"], out.ts) == (
        "alice",
        "10.0.0.9",
        utc(2026, 3, 1, 10, 0, 0),
    )


# -- regex ----------------------------------------------------------------------------------

VPN = (
    r"^(?P<timestamp>\S+) vpn: login (?P<result>ok|failed) user=(?P<username>\S+) "
    r"src=(?P<ip_address>[0-9a-f.:]+)$"
)


def test_regex_named_groups_become_fields_then_mapping_and_coercion_apply() -> None:
    config = parse_config_text(
        f"""
topics:
  - topic: vpn
    family: auth-logs
    format: {{regex: '{VPN}'}}
    fields:
      success: {{path: result, map: {{ok: true, failed: false}}}}
""",
        file="c.yaml",
    )
    b = config.bindings[0]
    assert b.format == "regex"
    dec = RecordDecoder(AUTH, fmt=b.format, lines=b.lines, mapping=b.mapping)
    out = dec.decode(b"2026-03-01T10:00:00Z vpn: login failed user=bob src=192.0.2.8")
    assert isinstance(out, Event), out
    assert (out.data["username"], out.data["ip_address"], out.data["success"]) == (
        "bob",
        "192.0.2.8",
        False,
    )
    miss = dec.decode(b"2026-03-01T10:00:00Z vpn: keepalive")
    assert isinstance(miss, DeadLetter) and miss.reason == "no_match"


def test_a_line_over_the_cap_is_too_large_before_any_regex_runs() -> None:
    dec = RecordDecoder(AUTH, fmt="regex", lines=regex_format(VPN))
    out = dec.decode(b"x" * (MAX_LINE_BYTES + 1))
    assert isinstance(out, DeadLetter) and out.reason == "too_large"


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(?P<x>.*)*", r"(?P<w>\w+\s?)*$", r"(?P<x>(?:\d+|[a-z]+)+)", r"(?P<x>(?:a|b+){2,})"],
)
def test_patterns_with_nested_unbounded_repeats_are_refused(pattern: str) -> None:
    assert backtracking_risk(pattern)


@pytest.mark.parametrize(
    "pattern",
    [VPN, r"(?P<ip>(?:\d{1,3}\.){3}\d{1,3})", r'"(?P<q>(?:[^"\\]|\\.)*)"', r"(?P<a>\S+) (?P<b>.*)"],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert backtracking_risk(pattern) is None


def test_check_config_refuses_a_catastrophic_pattern_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "topics:\n  - topic: app\n    family: auth-logs\n"
        "    format:\n      regex: '^(?P<username>\\w+\\s?)*$'\n"
    )
    assert cli_main(["check-config", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{config}:5: topics[0]: format regex refused: the regex may backtrack "
        "catastrophically" in err
    )


@pytest.mark.parametrize(
    "fmt, message",
    [
        ("{regex: '(?P<a>'}", "not a valid regex"),
        ("{regex: 'no groups'}", "no named groups"),
        ("{name: sshd, year: 26}", "format year must be a year"),
        ("{name: sshd, timezone: Mars/Olympus}", "unknown timezone 'Mars/Olympus'"),
        ("{name: apache}", "unknown line format 'apache'"),
        ("xml", "unknown line format 'xml'"),
        ("{name: sshd, regex: '(?P<a>.)'}", "format must be one of json, combined, sshd, syslog"),
        ("{regex: '(?P<a>.)', year: 2026}", "format regex takes no year"),
    ],
)
def test_bad_formats_are_config_errors_with_their_line(fmt: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config_text(
            f"topics:\n  - topic: a\n    family: auth-logs\n    format: {fmt}\n", file="c.yaml"
        )
    assert message in str(err.value) and "c.yaml:4" in str(err.value)


def test_the_readme_lines_example_is_a_valid_config_that_reads_its_lines(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("**Lines by pattern.**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my-syslog.yaml").write_text(
        "family: my-syslog\nfields:\n  timestamp: {type: timestamp, required: true}\n"
        "  app_name: {type: string}\n  message: {type: string}\n"
    )
    (tmp_path / "c.yaml").write_text("contracts: [my-syslog.yaml]\n" + block)
    from streamproc.config import load_config

    sshd_b, syslog_b, vpn_b = load_config(tmp_path / "c.yaml").bindings
    assert (sshd_b.format, syslog_b.format, vpn_b.format) == ("sshd", "syslog", "regex")
    vpn = RecordDecoder(AUTH, fmt="regex", lines=vpn_b.lines, mapping=vpn_b.mapping).decode(
        b"2026-11-29T17:38:53Z vpn[311]: login ok user=ann src=192.0.2.4"
    )
    assert isinstance(vpn, Event) and vpn.data["success"] is True
    log = RecordDecoder(syslog_b.contract, fmt="syslog", lines=syslog_b.lines).decode(
        b"<13>1 2026-11-29T17:38:53Z web-1 nginx 12 - - reloaded"
    )
    assert isinstance(log, Event) and log.data["app_name"] == "nginx"


@pytest.mark.parametrize("stamp", ["Feb 30 10:00:00", "Jan  1 24:00:00", "Jan  1 10:61:00"])
def test_a_time_that_does_not_exist_is_a_bad_timestamp(stamp: str) -> None:
    for zone in ("UTC", "Europe/Berlin"):
        out = sshd(
            f"{stamp} h sshd[1]: Failed password for root from 192.0.2.1 port 2 ssh2", timezone=zone
        )
        assert isinstance(out, DeadLetter) and out.reason == "bad_timestamp", (stamp, zone)


def test_a_slow_regex_the_check_lets_through_is_cut_off_per_line() -> None:
    # adjacent .* groups: no nested repeat, but cubic on a line of spaces (~40 s on re);
    # without the budget the line would end, much later, as no_match
    fmt = regex_format(r"^(?P<timestamp>.*) (?P<username>.*) (?P<ip_address>.*)x$")
    dec = RecordDecoder(AUTH, fmt="regex", lines=fmt)
    out = dec.decode(b" " * 4000)
    assert isinstance(out, DeadLetter) and out.reason == "match_timeout"
    assert "took over 50 ms" in out.detail


def test_a_bsd_time_of_a_late_year_is_that_year_up_to_the_last_second_in_range() -> None:
    def read(stamp: str, year: int, timezone: str = "UTC") -> Event | DeadLetter:
        fmt = named_format("sshd", year=year, timezone=timezone)
        line = f"{stamp} h sshd[1]: Failed password for root from 192.0.2.1 port 2 ssh2"
        return RecordDecoder(AUTH, fmt="sshd", lines=fmt).decode(line.encode())

    # past 1e11 s (the year 5138) a number is read as milliseconds: not the time of a line
    late = read("Jan  1 23:59:59", 6000)
    assert isinstance(late, Event) and late.ts == parse_timestamp("6000-01-01T23:59:59Z")
    last = read("Dec 31 23:59:59", 9999)
    assert isinstance(last, Event) and last.ts == MAX_EPOCH
    # the same wall time in New York is five hours later: past the range, as the year 10000
    out = read("Dec 31 23:59:59", 9999, "America/New_York")
    assert isinstance(out, DeadLetter) and out.reason == "bad_timestamp", out
    assert "out of range" in out.detail
