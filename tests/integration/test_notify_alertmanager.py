"""Alerts out in Alertmanager's shapes: the alertmanager:// channel against a real
Alertmanager (whose webhook posts to a local receiver), and the alertmanager-webhook format
on a json:// channel against a real local receiver. No timed asserts: tests wait for
arrivals, then check what arrived."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from streamproc.alerts import Alert, fingerprint
from streamproc.errors import ConfigError
from streamproc.notify import Notifier, load_channels, parse_settings
from streamproc.notify.am_payloads import am_labels, label_name, postable_alert, rfc3339
from streamproc.notify.resend import FiringTable
from streamproc.notify.store import Tx, open_db
from tests.waiting import wait_until


def mk(
    i: int,
    *,
    status: str = "firing",
    kind: str = "brute_force",
    severity: str = "high",
    at: float | None = None,
    title: str | None = None,
) -> Alert:
    key = {"username": f"user{i}", "ip_address": f"10.0.0.{i}"}
    return Alert(
        kind=kind,
        severity=severity,
        status=status,
        key=key,
        fingerprint=fingerprint(kind, key, i),
        event_time=time.time() if at is None else at,
        title=title or f"{kind} for user{i}",
        body=f"5 failures for user{i}",
        labels={"kind": kind, "family": "auth-logs", "binding": "auth", "env.name": "prod"},
        family="auth-logs",
    )


def resolve(a: Alert, at: float | None = None) -> Alert:
    return Alert(
        kind=a.kind,
        severity=a.severity,
        status="resolved",
        key=a.key,
        fingerprint=a.fingerprint,
        event_time=time.time() if at is None else at,
        title=a.title,
        body="cleared",
        labels=a.labels,
        family=a.family,
    )


def config(*urls: Any, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "urls": list(urls),
        "group_wait": 0,
        "group_interval": 0,
        "group_by": ["fingerprint"],
        "rate": 0,
        "close_timeout": "2s",
        "retry": {"initial": "20ms", "max_delay": "200ms", "max_attempts": 4},
    }
    cfg.update(over)
    return cfg


async def started(cfg: dict[str, Any], state: Path) -> Notifier:
    n = Notifier.from_config(cfg, state_dir=state)
    await n.start()
    return n


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def hook_alerts(am: Any, status: str) -> list[dict[str, Any]]:
    """Alerts of the given status in what Alertmanager's webhook delivered."""
    return [
        a
        for r in am.hook.accepted
        if r["json"]
        for a in r["json"]["alerts"]
        if a["status"] == status
    ]


EXPECTED_LABELS = {
    "alertname": "brute_force",
    "severity": "high",
    "username": "user1",
    "ip_address": "10.0.0.1",
    "family": "auth-logs",
    "binding": "auth",
    "env_name": "prod",
}


# -- the mapping ------------------------------------------------------------------------------


def test_labels_are_kind_severity_key_fields_and_alert_labels_without_kind() -> None:
    a = mk(1)
    a.key["0bad-name"] = 7
    a.labels["severity"] = "low"  # the alert's own severity wins
    assert am_labels(a) == {**EXPECTED_LABELS, "_0bad_name": "7"}
    assert label_name("") == "_" and label_name("a.b-c") == "a_b_c"


def test_postable_alert_carries_summary_description_and_rfc3339_times() -> None:
    a = mk(1, at=1_700_000_000.25, title="*not* _markdown_ <b>")
    p = postable_alert(a, ends_at=1_700_000_240.0, generator_url="http://sp/x")
    assert p == {
        "labels": EXPECTED_LABELS,
        "annotations": {"summary": "*not* _markdown_ <b>", "description": "5 failures for user1"},
        "startsAt": "2023-11-14T22:13:20.250Z",
        "endsAt": "2023-11-14T22:17:20.000Z",
        "generatorURL": "http://sp/x",
    }
    assert rfc3339(float("nan")) == "1970-01-01T00:00:00.000Z"


# -- alertmanager:// against a real Alertmanager -------------------------------------------


async def test_firing_alert_reaches_alertmanager_with_labels_and_its_resolve_follows(
    alertmanager: Any, tmp_path: Path
) -> None:
    cfg = config(
        f"alertmanager://127.0.0.1:{alertmanager.port}",
        channels={"Alertmanager": {"resend": "1s", "generator_url": "http://sp/"}},
    )
    n = await started(cfg, tmp_path)
    fired = mk(1, at=time.time() - 30)
    await n.submit([fired])
    firing = (
        await wait_until(
            lambda: hook_alerts(alertmanager, "firing"), 30, "Alertmanager's webhook: firing"
        )
    )[0]
    assert firing["labels"] == EXPECTED_LABELS
    assert firing["annotations"] == {"summary": fired.title, "description": fired.body}
    assert abs(parse_time(firing["startsAt"]) - fired.event_time) < 0.01
    assert firing["generatorURL"] == "http://sp/"
    held = alertmanager.alerts()
    assert [a["labels"] for a in held] == [EXPECTED_LABELS]
    assert held[0]["status"]["state"] == "active"
    first_end = parse_time(held[0]["endsAt"])
    assert first_end > time.time() + 1  # now + 4 resend intervals: it stays firing
    # re-sent while firing: Alertmanager's endsAt moves on
    await wait_until(
        lambda: parse_time(alertmanager.alerts()[0]["endsAt"]) > first_end + 0.5,
        30,
        "the resent alert to move endsAt on",
    )
    # Alertmanager shows the resend before the notifier has counted its answer
    await wait_until(lambda: n.counters["resent"] >= 1, 30, "a resend")
    cleared = resolve(fired)
    await n.submit([cleared])
    resolved = (
        await wait_until(
            lambda: hook_alerts(alertmanager, "resolved"), 30, "Alertmanager's webhook: resolved"
        )
    )[0]
    assert resolved["labels"] == EXPECTED_LABELS
    assert abs(parse_time(resolved["endsAt"]) - cleared.event_time) < 0.01
    assert abs(parse_time(resolved["startsAt"]) - fired.event_time) < 0.01
    resent = n.counters["resent"]
    await asyncio.sleep(1.5)  # no more re-sends once resolved
    assert n.counters["resent"] == resent
    await n.close()


async def test_a_restarted_notifier_goes_on_resending_what_it_had_sent(
    alertmanager: Any, tmp_path: Path
) -> None:
    cfg = config(
        f"alertmanager://127.0.0.1:{alertmanager.port}", channels={"Alertmanager": {"resend": "1s"}}
    )
    n = await started(cfg, tmp_path)
    await n.submit([mk(2)])
    await wait_until(alertmanager.alerts, 30, "Alertmanager to hold the alert")
    await n.close()
    first_end = parse_time(alertmanager.alerts()[0]["endsAt"])
    n2 = await started(cfg, tmp_path)  # nothing submitted: the state is on disk
    await wait_until(lambda: n2.counters["resent"] >= 1, 30, "the restarted notifier's resend")
    assert parse_time(alertmanager.alerts()[0]["endsAt"]) > first_end
    await n2.close()


async def test_alertmanager_credentials_stay_out_of_names_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from streamproc.ops.broker import free_port

    port = free_port()  # nothing listens: every send fails
    url = f"alertmanager://admin:Pa55word-x@127.0.0.1:{port}/am/?token=Tok3n-secret"
    cfg = config(url, retry={"initial": "20ms", "max_delay": "50ms", "max_attempts": 2})
    caplog.set_level(logging.DEBUG)
    n = await started(cfg, tmp_path)
    [ch] = n.channels.values()
    assert ch.name == f"alertmanager://127.0.0.1:{port}"
    await n.submit([mk(3)])
    await wait_until(lambda: n.counters["dead_lettered"] >= 1, 30, "a dead letter")
    await n.close()
    text = caplog.text + repr(n.stats())
    for secret in ("Pa55word-x", "Tok3n-secret", "admin"):
        assert secret not in text


# -- resend bookkeeping -----------------------------------------------------------------------


def test_resends_stop_when_the_resolve_is_on_its_way_or_resend_for_is_over(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    table = FiringTable(db)
    a, b, c = mk(1), mk(2), mk(3)
    with Tx(db):
        table.record("am", [a, b], now=100.0)
        table.record("am", [c], now=50.0)

    def due(now: float) -> list[str]:
        return sorted(x.fingerprint for x, _ in table.due("am", now, resend=60, resend_for=3600))

    assert due(109.0) == []
    assert due(110.0) == [c.fingerprint]
    assert due(160.0) == sorted([a.fingerprint, b.fingerprint, c.fingerprint])
    with Tx(db):  # b's resolve waits in a group, c was first sent over an hour ago
        db.execute(
            "INSERT INTO group_members VALUES ('am', 'g', ?, 'resolved', x'', 0)", (b.fingerprint,)
        )
    assert due(3655.0) == [a.fingerprint]
    with Tx(db):  # a's resolve was sent
        table.record("am", [resolve(a)], now=200.0)
    assert due(3655.0) == []


# -- format: alertmanager-webhook on a json:// channel ---------------------------------------

PATHS = pytest.mark.parametrize("threads", [False, True], ids=["fast-path", "threads"])


@PATHS
async def test_webhook_format_posts_alertmanager_json_and_a_resolve_as_resolved(
    receiver: Any, tmp_path: Path, threads: bool
) -> None:
    url = receiver.url("json").replace("json://", "json://bot:hunter22@")
    cfg = config(
        {"url": url, "tags": ["machines"]},
        channels={
            "machines": {
                "format": "alertmanager-webhook",
                "external_url": "http://sp:8080",
                "fast": not threads,
            }
        },
        routes=[{"match": {}, "tags": ["machines"]}],
    )
    n = await started(cfg, tmp_path)
    fired = mk(1, at=time.time() - 60, title="*bold* _x_ [link](http://evil) @here")
    await n.submit([fired])
    [first] = await receiver.await_for(1)
    assert first["headers"]["Authorization"].startswith("Basic ")  # Apprise built it
    body = first["json"]
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["truncatedAlerts"] == 0 and body["externalURL"] == "http://sp:8080"
    assert body["commonLabels"] == EXPECTED_LABELS
    assert body["receiver"] == n.channels[next(iter(n.channels))].name
    [alert] = body["alerts"]
    assert alert["status"] == "firing" and alert["fingerprint"] == fired.fingerprint
    assert alert["labels"] == EXPECTED_LABELS
    # machine JSON: the title exactly as the detector wrote it, no escaping
    assert alert["annotations"]["summary"] == "*bold* _x_ [link](http://evil) @here"
    assert abs(parse_time(alert["startsAt"]) - fired.event_time) < 0.01
    cleared = resolve(fired)
    await n.submit([cleared])
    second = (await receiver.await_for(2))[1]["json"]
    await n.close()
    assert second["status"] == "resolved"
    [alert] = second["alerts"]
    assert alert["status"] == "resolved" and alert["fingerprint"] == fired.fingerprint
    assert abs(parse_time(alert["startsAt"]) - fired.event_time) < 0.01
    assert abs(parse_time(alert["endsAt"]) - cleared.event_time) < 0.01


async def test_a_group_becomes_one_payload_with_its_common_and_group_labels(
    receiver: Any, tmp_path: Path
) -> None:
    cfg = config(
        receiver.url("json"),
        group_by=["kind"],
        group_wait="300ms",
        channels={"JSON": {"format": "alertmanager-webhook"}},
    )
    n = await started(cfg, tmp_path)
    alerts = [mk(i) for i in range(3)]
    await n.submit(alerts)
    [got] = await receiver.await_for(1)
    await n.close()
    body = got["json"]
    assert sorted(a["fingerprint"] for a in body["alerts"]) == sorted(a.fingerprint for a in alerts)
    assert body["groupLabels"] == {"alertname": "brute_force"}
    assert body["commonLabels"] == {
        "alertname": "brute_force",
        "severity": "high",
        "family": "auth-logs",
        "binding": "auth",
        "env_name": "prod",
    }
    assert body["commonAnnotations"] == {}


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"format": "alertmanager-webhook"}, "needs a JSON webhook channel"),
        ({"format": "yaml"}, "unknown format"),
        ({"resend": 0}, "must be more than 0"),
        ({"rat": 5}, "unknown key 'rat'"),
    ],
)
def test_channel_options_that_cannot_work_are_config_errors(
    over: dict[str, Any], message: str
) -> None:
    settings = parse_settings({"urls": ["form://127.0.0.1:9/hook"], "channels": {"Form": over}})
    with pytest.raises(ConfigError, match=message):
        load_channels(settings)


async def test_alertmanager_url_prefix_and_bearer_token_and_ends_at_four_resends_ahead(
    receiver: Any, tmp_path: Path
) -> None:
    # the conftest receiver stands in for Alertmanager's HTTP API to show the raw request
    url = f"alertmanager://127.0.0.1:{receiver.port}/mon/am/?token=T0ken-abc"
    n = await started(config(url, channels={"Alertmanager": {"resend": "30s"}}), tmp_path)
    before = time.time()
    await n.submit([mk(1)])
    [got] = await receiver.await_for(1)
    await n.close()
    assert got["path"] == "/mon/am/api/v2/alerts"
    assert got["headers"]["Authorization"] == "Bearer T0ken-abc"
    [posted] = got["json"]
    assert posted["labels"] == EXPECTED_LABELS
    # endsAt is written to the millisecond, cut: up to 1 ms before the instant it names
    assert before + 120 - 0.001 <= parse_time(posted["endsAt"]) <= time.time() + 120


async def test_a_firing_alert_that_crosses_its_sent_resolve_is_not_sent_again(
    receiver: Any, tmp_path: Path
) -> None:
    """A retried firing can reach the front of the outbox after its resolve was sent: it
    must not make Alertmanager fire again, nor be re-sent."""
    url = f"alertmanager://127.0.0.1:{receiver.port}"
    n = await started(config(url, channels={"Alertmanager": {"resend": "50ms"}}), tmp_path)
    fired = mk(1)
    [ch] = n.channels.values()
    with Tx(n.db):
        n.dedup.mark(ch.id, [(fired.fingerprint, "resolved")], "sent", time.time())
    await n.submit([fired])
    [got] = await receiver.await_for(1)
    await asyncio.sleep(0.3)
    await n.close()
    assert got["json"] == []
    assert len(receiver.accepted) == 1 and n.counters["resent"] == 0


def test_check_config_reports_a_bad_channel_option_with_the_other_problems() -> None:
    settings = parse_settings(
        {
            "urls": ["form://127.0.0.1:9/hook", "nosuchservice://x"],
            "channels": {"Form": {"format": "alertmanager-webhook"}},
        }
    )
    errors: list[ConfigError] = []
    load_channels(settings, errors=errors)
    assert len(errors) == 2
    assert "nosuchservice" in str(errors[0]) and "JSON webhook" in str(errors[1])
