"""Alerts and silences in Alertmanager's shapes, its matcher syntax, the active-alerts table
and inhibition among active alerts: the pure parts of the Alertmanager API."""

from __future__ import annotations

import pytest

from streamproc.alerts import Alert
from streamproc.http.am_shapes import (
    BadMatcher,
    am_labels,
    gettable_alert,
    gettable_silence,
    parse_filter,
    parse_matchers,
    parse_time,
    rfc3339,
    silence_from_postable,
)
from streamproc.notify.active import ActiveAlert, ActiveAlerts
from streamproc.notify.inhibit import inhibited_by, parse_rules
from streamproc.notify.silences import LabelMatcher, match_labels, new_silence

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z


def alert(
    kind: str = "brute_force",
    severity: str = "high",
    status: str = "firing",
    fp: str = "f1",
    key: dict | None = None,
    at: float = NOW - 600,
) -> Alert:
    return Alert(
        kind=kind,
        severity=severity,
        status=status,
        key=key if key is not None else {"username": "bob", "ip_address": "1.2.3.4"},
        fingerprint=fp,
        event_time=at,
        title="Brute force on bob",
        body="6 failures in 10 minutes",
        labels={"kind": kind, "binding": "auth-logs", "family": "auth-logs"},
        family="auth-logs",
    )


def test_alert_labels_are_alertname_severity_key_fields_and_binding_without_kind() -> None:
    a = alert(key={"user.name": "bob", "2fa": True, "ip": "1.2.3.4"})
    assert am_labels(a) == {
        "alertname": "brute_force",
        "severity": "high",
        "user_name": "bob",
        "_2fa": "True",
        "ip": "1.2.3.4",
        "binding": "auth-logs",
        "family": "auth-logs",
    }


def test_gettable_alert_has_every_field_of_the_openapi_shape() -> None:
    a = gettable_alert(
        alert(),
        updated=NOW,
        ends=NOW + 3600,
        receivers=["json://h/p"],
        silenced_by=["s1"],
        inhibited_by=[],
    )
    assert set(a) == {
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "updatedAt",
        "fingerprint",
        "receivers",
        "generatorURL",
        "status",
    }
    assert a["annotations"] == {
        "summary": "Brute force on bob",
        "description": "6 failures in 10 minutes",
    }
    assert a["startsAt"] == "2026-09-21T14:03:20.000Z"
    assert a["endsAt"] == "2026-09-21T15:13:20.000Z" and a["updatedAt"] == rfc3339(NOW)
    assert a["receivers"] == [{"name": "json://h/p"}]
    assert a["status"] == {"state": "suppressed", "silencedBy": ["s1"], "inhibitedBy": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{alertname="brute_force",severity=~"high|critical"}',
            [("alertname", "=", "brute_force"), ("severity", "=~", "high|critical")],
        ),
        ('{a!="x", b!~"y.*"}', [("a", "!=", "x"), ("b", "!~", "y.*")]),
        ("alertname=brute_force", [("alertname", "=", "brute_force")]),
        ('a="with \\"quotes\\", commas"', [("a", "=", 'with "quotes", commas')]),
        ("a=", [("a", "=", "")]),
        ("{}", []),
    ],
)
def test_alertmanager_matcher_syntax_is_read(text: str, expected: list[tuple]) -> None:
    assert [(m.name, m.op, m.value) for m in parse_matchers(text)] == expected


@pytest.mark.parametrize(
    "text", ["{a=b", "a", "a==b", '{a="b"} x', "a=~(", "1a=b", 'a="unterminated']
)
def test_unreadable_matchers_are_refused_in_alertmanagers_words(text: str) -> None:
    with pytest.raises(BadMatcher, match=r"^bad matcher format: "):
        parse_matchers(text)


def test_a_filter_matches_what_alertmanager_matches() -> None:
    labels = am_labels(alert())
    assert all(
        m.matches(labels)
        for m in parse_filter(['alertname="brute_force"', "severity=~hi.*", "nope="])
    )
    assert not all(m.matches(labels) for m in parse_filter(["severity=~hi"]))  # whole value


def test_times_are_rfc3339_utc_and_read_back_with_offsets_and_fractions() -> None:
    assert parse_time("2026-09-21T14:13:20.250Z", "t") == NOW + 0.25
    assert parse_time("2026-09-21T16:13:20+02:00", "t") == NOW
    assert parse_time(rfc3339(NOW + 0.123), "t") == pytest.approx(NOW + 0.123)
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_time("yesterday", "startsAt")


def postable(**over: object) -> dict:
    body = {
        "matchers": [
            {"name": "alertname", "value": "brute_force", "isRegex": False, "isEqual": True}
        ],
        "startsAt": rfc3339(NOW - 5),
        "endsAt": rfc3339(NOW + 3600),
        "createdBy": "alice",
        "comment": "maintenance",
    }
    body.update(over)
    return body


def test_a_postable_silence_becomes_a_streamproc_silence_and_back() -> None:
    update, s = silence_from_postable(
        postable(
            matchers=[
                {"name": "alertname", "value": "brute_force", "isRegex": False},
                {"name": "username", "value": "svc-.*", "isRegex": True, "isEqual": False},
            ]
        ),
        NOW,
    )
    assert update is None and s.starts == NOW  # a start in the past is now, as Alertmanager
    assert [str(m) for m in s.matchers] == ["alertname=brute_force", "username!~svc-.*"]
    shown = gettable_silence(s, NOW)
    assert shown["status"] == {"state": "active"} and shown["id"] == s.id
    assert shown["matchers"][1] == {
        "name": "username",
        "value": "svc-.*",
        "isRegex": True,
        "isEqual": False,
    }
    assert gettable_silence(s, NOW + 7200)["status"]["state"] == "expired"


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"matchers": []}, "at least one matcher"),
        ({"matchers": [{"name": "a", "value": "b"}]}, "isRegex"),
        ({"matchers": [{"name": "a", "value": ".*", "isRegex": True}]}, "empty string"),
        ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, "bad regex"),
        ({"endsAt": rfc3339(NOW - 60)}, "start time must be before end time"),
        ({"startsAt": rfc3339(NOW - 120), "endsAt": rfc3339(NOW - 60)}, "in the past"),
        ({"endsAt": "tomorrow"}, "RFC 3339"),
        ({"id": "../etc"}, "id must be"),
    ],
)
def test_a_bad_postable_silence_is_refused_with_the_reason(over: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        silence_from_postable(postable(**over), NOW)


def test_an_amtool_silence_on_alertname_mutes_the_alert_in_notify() -> None:
    s = new_silence(["alertname=brute_force"], duration=3600, now=NOW)
    assert s.matches(match_labels(alert()))
    assert not s.matches(match_labels(alert(kind="password_spray")))
    assert LabelMatcher("user_name", "=", "bob").matches(
        match_labels(alert(key={"user.name": "bob"}))
    )


def test_active_alerts_last_resolve_timeout_unless_resolved() -> None:
    table = ActiveAlerts(resolve_timeout=3600, clock=lambda: NOW)
    table.put(table.entries([alert(fp="a"), alert(fp="b")], NOW), NOW)
    assert [e.alert.fingerprint for e in table.current(NOW)] == ["a", "b"]
    assert table.current(NOW)[0].ends == NOW + 3600
    assert table.current(NOW)[0].alert.evidence == {}  # kept small
    table.put(table.entries([alert(fp="a", status="resolved", at=NOW - 1)], NOW + 10), NOW + 10)
    assert [e.alert.fingerprint for e in table.current(NOW + 10)] == ["b"]
    assert table.current(NOW + 3600) == []  # never resolved: gone after resolve_timeout
    e = ActiveAlert(alert(), NOW, NOW + 5)
    assert ActiveAlert.from_json(e.to_json()) == e


def test_an_active_critical_alert_inhibits_lower_ones_with_the_same_key() -> None:
    rules = parse_rules(None)  # the default rule
    critical = alert(kind="compromise_suspected", severity="critical", fp="c")
    high = alert(fp="h")
    other_user = alert(fp="o", key={"username": "eve", "ip_address": "1.2.3.4"})
    assert inhibited_by(rules, [critical, high, other_user]) == {"h": ["c"]}
    assert inhibited_by(rules, [high, other_user]) == {}


def test_silence_query_shows_local_silences_as_amtool_does(tmp_path, capsys) -> None:
    import json

    from streamproc.commands.cli import main

    config = tmp_path / "streamproc.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n")
    assert (
        main(
            [
                "silence",
                "-c",
                str(config),
                "add",
                "alertname=brute_force",
                "--comment",
                "pen test",
                "--author",
                "alice",
            ]
        )
        == 0
    )
    sid = capsys.readouterr().out.split()[0]
    assert main(["silence", "-c", str(config), "query"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "Matchers", "Ends", "At", "Created", "By", "Comment"]
    assert row.split()[:2] == [sid, "alertname=brute_force"] and "pen test" in row
    assert main(["silence", "-c", str(config), "query", "-o", "json", "alertname=brute_force"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert shown["id"] == sid and shown["createdBy"] == "alice"
    assert shown["matchers"] == [
        {"name": "alertname", "value": "brute_force", "isRegex": False, "isEqual": True}
    ]
    assert main(["silence", "-c", str(config), "query", "-o", "json", "alertname=other"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["silence", "-c", str(config), "query", "-e"]) == 0
    assert sid not in capsys.readouterr().out


async def test_without_kafka_workers_of_one_state_dir_share_active_alerts_across_restarts(
    tmp_path,
) -> None:
    from streamproc.notify.active import SqliteActiveAlerts
    from streamproc.notify.store import open_db

    def worker() -> SqliteActiveAlerts:
        return SqliteActiveAlerts(open_db(tmp_path), 3600, owns_db=True, clock=lambda: NOW)

    one, two = worker(), worker()
    await one.record([alert(fp="a")])
    await two.record([alert(fp="b"), alert(fp="c")])
    assert [e.alert.fingerprint for e in one.current()] == ["a", "b", "c"]
    await one.record([alert(fp="b", status="resolved", at=NOW - 1)])
    assert [e.alert.fingerprint for e in two.current()] == ["a", "c"]
    assert two.current(NOW + 3600) == []
    await one.stop()
    await two.stop()
    assert one.current() == []  # stopped: a late metrics scrape reads nothing, and no error
    again = worker()
    assert [e.alert.fingerprint for e in again.current()] == ["a", "c"]
    await again.stop()
