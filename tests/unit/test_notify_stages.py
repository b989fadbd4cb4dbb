"""Each notify stage on its own: settings, redaction, routing, templates, inhibition,
silences, grouping timers on a controlled clock, dedup, token bucket, retry policy."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest

from streamproc.alerts import Alert, fingerprint
from streamproc.errors import ConfigError, StreamprocError
from streamproc.notify import parse_duration, redact_url, routes_summary
from streamproc.notify.channels import load_channels
from streamproc.notify.dedup import Dedup
from streamproc.notify.group import Grouper
from streamproc.notify.inhibit import Inhibitor, parse_rules
from streamproc.notify.ratelimit import TokenBucket, plan
from streamproc.notify.retry import RetryPolicy
from streamproc.notify.routing import Router, build_routes
from streamproc.notify.settings import RetrySettings, parse_settings
from streamproc.notify.silences import SilenceStore
from streamproc.notify.silences import main as silence_main
from streamproc.notify.store import Tx, open_db
from streamproc.notify.templates import Renderer, escape_value


def alert(
    kind: str = "brute_force",
    severity: str = "high",
    *,
    family: str = "auth-logs",
    key: dict | None = None,
    status: str = "firing",
    labels: dict | None = None,
    audience: str = "internal",
    title: str = "t",
    incident: object = 1,
) -> Alert:
    key = key if key is not None else {"username": "alice", "ip_address": "203.0.113.9"}
    return Alert(
        kind=kind,
        severity=severity,
        status=status,
        key=key,
        fingerprint=fingerprint(kind, key, incident),
        event_time=1_700_000_000.0,
        title=title,
        body="b",
        labels={"kind": kind, **(labels or {})},
        family=family,
        audience=audience,
    )


# -- settings and secrets -----------------------------------------------------------------


def test_durations_accept_units_and_plain_seconds() -> None:
    assert parse_duration("30s") == 30 and parse_duration("5m") == 300
    assert parse_duration("4h") == 14400 and parse_duration(2) == 2.0
    assert parse_duration("250ms") == pytest.approx(0.25)
    with pytest.raises(ConfigError, match=r"notify\.group_wait"):
        parse_settings({"group_wait": "soon"})


def test_unknown_notify_key_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown key 'group_wiat'"):
        parse_settings({"group_wiat": "1s"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "json://user:s3cret@hooks.example.com:8443/path?token=abc",
            "json://hooks.example.com:8443",
        ),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "slack://***"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://***"),
        ("tgram://123456789:AABx8iXjE5C-vG4SDhf6ARgdFgxYxhuHb4A/-123", "tgram://***"),
        ("mailto://bob:pw@gmail.com", "mailto://gmail.com"),
        ("not a url", "***"),
    ],
)
def test_redact_url_keeps_only_scheme_and_a_real_host(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_missing_env_var_error_names_the_variable_not_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HOOK_TOKEN_X", raising=False)
    cfg = tmp_path / "apprise.yml"
    cfg.write_text("urls:\n  - json://127.0.0.1:1/${HOOK_TOKEN_X}:\n      tag: dev\n")
    with pytest.raises(ConfigError, match="HOOK_TOKEN_X"):
        load_channels(parse_settings({"apprise_config": str(cfg)}))
    monkeypatch.setenv("HOOK_TOKEN_X", "supersecret")
    channels, _ = load_channels(parse_settings({"apprise_config": str(cfg)}))
    assert [sorted(c.tags) for c in channels] == [["dev"]]
    assert all("supersecret" not in c.name and "supersecret" not in c.id for c in channels)


def test_bad_url_error_does_not_echo_the_secret() -> None:
    with pytest.raises(ConfigError) as err:
        load_channels(parse_settings({"urls": ["nosuchservice://tok3n-s3cret@host/x"]}))
    assert "s3cret" not in str(err.value)


# -- routing --------------------------------------------------------------------------------

ALL_TAGS = [
    "security-team",
    "devops-team",
    "management",
    "sms",
    "phone",
    "infra",
    "warning",
    "critical",
    "dev",
    "urgent",
    "support",
    "customer",
    "business-metrics",
    "exec",
]


@pytest.fixture
def router() -> Router:
    urls = [{"url": f"json://127.0.0.1:9/{t}", "tags": [t]} for t in ALL_TAGS]
    settings = parse_settings({"urls": urls})
    channels, _ = load_channels(settings)
    return Router(build_routes(None), channels)


@pytest.mark.parametrize(
    ("severity", "tags"),
    [
        ("low", {"security-team"}),
        ("medium", {"security-team", "devops-team"}),
        ("high", {"security-team", "devops-team", "management"}),
        ("critical", {"security-team", "devops-team", "management", "sms", "phone"}),
    ],
)
def test_default_security_routes_escalate_with_severity(
    router: Router, severity: str, tags: set[str]
) -> None:
    assert set(router.tags_for(alert(severity=severity))) == tags


def test_default_routes_for_the_other_families(router: Router) -> None:
    host = {"host": "web-1"}
    assert set(
        router.tags_for(alert("metric_threshold", "critical", family="host-metrics", key=host))
    ) == {"infra", "critical"}
    assert set(
        router.tags_for(alert("metric_threshold", "high", family="host-metrics", key=host))
    ) == {"infra", "warning"}
    assert set(router.tags_for(alert("pipeline_failed", "high", family="cicd-events"))) == {
        "dev",
        "urgent",
    }
    prod = alert("deployment", "info", family="cicd-events", labels={"environment": "production"})
    assert router.tags_for(prod) == ["*"]
    assert len(router.route(prod)) == len(ALL_TAGS)  # every channel
    assert router.tags_for(
        alert("deployment", "info", family="cicd-events", labels={"environment": "staging"})
    ) == ["dev"]
    assert set(
        router.tags_for(alert("ticket_escalation", "critical", family="support-tickets"))
    ) == {"support", "management"}
    assert router.tags_for(alert("ticket_escalation", "medium", family="support-tickets")) == [
        "support"
    ]
    assert router.tags_for(
        alert("ticket_ack", "info", family="support-tickets", audience="customer")
    ) == ["customer"]
    assert set(router.tags_for(alert("revenue_drop", "high", family="business-metrics"))) == {
        "business-metrics",
        "exec",
    }
    assert router.tags_for(alert("revenue_drop", "low", family="business-metrics")) == [
        "business-metrics"
    ]


def test_user_routes_match_labels_and_topic_and_continue() -> None:
    routes = build_routes(
        [
            {
                "match": {"kind": "brute_force", "labels": {"username": "~svc-.*"}},
                "tags": ["svc-owners"],
                "continue": True,
            },
            {"match": {"topic": "~auth-.*", "status": "firing"}, "tags": ["auth"]},
            {"match": {"kind": "brute_force"}, "tags": ["never-reached"]},
        ],
        defaults=False,
    )
    r = Router(routes, [])
    a = alert(labels={"username": "svc-backup"})
    a.source = {"topic": "auth-eu"}
    assert r.tags_for(a) == ["svc-owners", "auth"]
    a.labels["username"] = "alice"
    assert r.tags_for(a) == ["auth"]


@pytest.mark.parametrize("tags", [None, 3, {"oncall": True}])
def test_route_tags_that_are_no_tag_list_are_a_config_error(tags: object) -> None:
    # `tags:` left empty in YAML is None: without this check the route failed with a
    # TypeError that named neither the route nor its line
    with pytest.raises(ConfigError, match=r"notify\.routes\[0\]\.tags: expected a tag or a list"):
        build_routes([{"match": {"kind": "x"}, "tags": tags}], defaults=False)
    assert build_routes([{"match": {"kind": "x"}, "tags": "a, b"}], defaults=False)[0].tags == (
        "a",
        "b",
    )


def test_untagged_inline_url_is_a_catch_all_for_every_alert() -> None:
    settings = parse_settings(
        {"urls": ["json://127.0.0.1:9/all", {"url": "json://127.0.0.1:9/sec", "tags": "sms"}]}
    )
    channels, _ = load_channels(settings)
    r = Router(build_routes(None), channels)
    assert [c.name for c in r.route(alert(severity="low"))] == ["json://127.0.0.1:9"]
    assert len(r.route(alert(severity="critical"))) == 2
    assert len(r.route(alert("x", family="unknown-family"))) == 1


def test_routes_summary_names_services_without_secrets() -> None:
    rows = routes_summary(
        {"urls": [{"url": "json://u:pw@127.0.0.1:9/x", "tags": ["sms"]}, "form://127.0.0.1:9/all"]}
    )
    crit = next(r for r in rows if r["route"] == "security critical")
    assert crit["channels"] == ["JSON json://127.0.0.1:9"]
    assert rows[-1]["route"] == "catch-all" and rows[-1]["channels"] == ["Form form://127.0.0.1:9"]
    assert "pw" not in repr(rows)


# -- templates ----------------------------------------------------------------------------

EVIL = (
    "@channel @everyone <!here> <@U024BE7LH> [click me](https://evil.example/x) "
    "![img](http://evil.example/i.png) <script>alert(1)</script> www.evil.example\n# Head"
)


@pytest.mark.parametrize("fmt", ["markdown", "text", "html"])
def test_event_values_cannot_inject_mentions_links_or_html(fmt: str) -> None:
    a = alert(title=f"Brute force on {EVIL}", labels={"username": EVIL, "user_agent": EVIL})
    a.body = EVIL
    msg = Renderer().render_alert(a, fmt)
    text = msg.title + "\n" + msg.body
    for bad in (
        "@channel",
        "@everyone",
        "<!here>",
        "<@U024",
        "<script",
        "https://",
        "http://",
        "www.evil",
        "\n# Head",
    ):
        assert bad not in text, (fmt, bad)
    if fmt == "markdown":  # no link or image syntax survives
        assert "[click me](" not in text and "![img](" not in text
    # the facts are still readable
    assert "evil" in text and "alice" in text


def test_markdown_structure_survives_escaping() -> None:
    msg = Renderer().render_alert(
        alert(severity="critical", key={"host": "web-1"}, family="host-metrics")
    )
    assert msg.title.startswith("🔴 [CRITICAL]")
    assert "- **Host:** web\\-1" not in msg.body  # '-' is not escaped: it is not markup here
    assert "- **Host:** web-1" in msg.body
    assert "- **Event time:** 2023-11-14 22:13:20 UTC" in msg.body
    assert msg.notify_type == "failure"


def test_values_are_length_capped() -> None:
    a = alert(labels={"user_agent": "A" * 10_000})
    msg = Renderer(max_value_len=100).render_alert(a, "text")
    assert "A" * 100 not in msg.body and "A" * 99 + "…" in msg.body
    long = Renderer(max_body_len=500).render_group(
        [alert(title="x" * 400, incident=i) for i in range(30)]
    )
    assert len(long.body) <= 500 and long.body.endswith("(truncated)")


def test_user_template_overrides_per_kind_and_stays_escaped() -> None:
    r = Renderer(
        {
            "brute_force": {
                "title": "$emoji $SEVERITY ${labels.username}",
                "body": "user=${key.username} $unknown",
            }
        }
    )
    msg = r.render_alert(alert(labels={"username": "@here"}), "markdown")
    assert msg.title == "🟠 HIGH @\u200bhere"
    assert msg.body == "user=alice $unknown"


def test_group_summary_counts_alerts_and_distinct_keys() -> None:
    alerts = [
        alert(key={"username": "alice", "ip_address": f"10.0.0.{i % 3}"}, incident=i)
        for i in range(12)
    ]
    assert Renderer().summary(alerts) == "12 brute_force alerts from 3 IPs for user alice"


def test_escape_value_defangs_schemes() -> None:
    assert escape_value("see http://x.io", "text") == "see http[:]//x.io"


def test_plain_values_pass_unchanged_and_the_rest_is_still_escaped() -> None:
    assert escape_value("203.0.113.9", "markdown") == "203.0.113.9"
    assert escape_value("brute_force", "markdown") == "brute\\_force"
    assert escape_value("brute_force", "text") == "brute_force"
    assert escape_value("see WWW.evil.io", "text") == "see WWW[.]evil.io"
    assert escape_value("a" * 10, "text", max_len=5) == "aaaa…"


# -- inhibition -------------------------------------------------------------------------------


def test_firing_critical_mutes_lower_severity_for_the_same_key_only(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    inh = Inhibitor(db, parse_rules(None), ttl=3600)
    crit = alert("host_down", "critical", key={"host": "web-1"}, family="host-metrics")
    warn = alert("cpu_high", "high", key={"host": "web-1"}, family="host-metrics")
    other = alert("cpu_high", "high", key={"host": "web-2"}, family="host-metrics")
    kept, muted = inh.exec([warn, crit, other], now=100.0)
    assert muted == [warn] and kept == [crit, other]
    assert inh.inhibited(warn, now=100.0 + 3599) and not inh.inhibited(warn, now=100.0 + 3601)
    # the critical resolves: no longer muting
    resolved = alert(
        "host_down", "critical", key={"host": "web-1"}, family="host-metrics", status="resolved"
    )
    inh.exec([resolved], now=200.0)
    assert not inh.inhibited(warn, now=201.0)


# -- silences -----------------------------------------------------------------------------


def test_silence_matches_then_expires_and_survives_reopen(tmp_path: Path) -> None:
    store = SilenceStore(open_db(tmp_path))
    s = store.add(
        ["kind=brute_force", "username=~svc-.*"],
        duration=3600,
        author="me",
        comment="maintenance",
        now=1000.0,
    )
    svc = alert(key={"username": "svc-backup", "ip_address": "10.0.0.1"})
    human = alert(key={"username": "alice", "ip_address": "10.0.0.1"})
    assert store.exec([svc, human], now=1001.0) == ([human], [svc])
    assert store.silenced_by(svc, now=1000.0 + 3600) is None  # ends is exclusive
    reopened = SilenceStore(open_db(tmp_path))
    assert reopened.silenced_by(svc, now=2000.0) is not None
    reopened.expire(s.id[:6], now=2000.0)
    assert reopened.silenced_by(svc, now=2000.5) is None
    with pytest.raises(StreamprocError, match="no silence"):
        reopened.expire("ffffffff")


def test_silence_cli_add_list_expire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\n")
    ns = argparse.Namespace
    assert (
        silence_main(
            ns(
                config=str(cfg),
                silence_cmd="add",
                matchers=["kind=brute_force"],
                duration="2h",
                comment="pen test",
                author="ana",
            )
        )
        == 0
    )
    sid = capsys.readouterr().out.split()[0]
    assert silence_main(ns(config=str(cfg), silence_cmd="list")) == 0
    out = capsys.readouterr().out
    assert sid in out and "kind=brute_force" in out and "pen test" in out
    assert silence_main(ns(config=str(cfg), silence_cmd="expire", silence_id=sid)) == 0
    silence_main(ns(config=str(cfg), silence_cmd="list"))
    assert "no active silences" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="cannot read matcher"):
        silence_main(
            ns(
                config=str(cfg),
                silence_cmd="add",
                matchers=["kind"],
                duration="1h",
                comment="",
                author="",
            )
        )


# -- grouping on a controlled clock ------------------------------------------------------------


def test_group_wait_then_group_interval_then_a_fresh_group(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    g = Grouper(db, group_by=["kind"], group_wait=30, group_interval=300)
    with Tx(db):
        g.add(alert(incident=1), "ch", now=0.0)
        g.add(alert(incident=2), "ch", now=5.0)
    assert g.due(29.9) == [] and g.next_due() == 30.0
    [(ch, gkey)] = g.due(30.0)
    with Tx(db):
        first = g.take(ch, gkey, now=30.0)
    assert len(first) == 2
    with Tx(db):
        g.add(alert(incident=3), "ch", now=40.0)  # after a flush: wait for the interval
    assert g.due(329.9) == [] and g.due(330.0) == [("ch", gkey)]
    with Tx(db):
        assert len(g.take("ch", gkey, now=330.0)) == 1
        g.add(alert(incident=4), "ch", now=1000.0)  # idle > interval: a new group_wait
    assert g.due(1029.9) == [] and len(g.due(1030.0)) == 1


def test_groups_are_per_channel_and_group_by_labels(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    g = Grouper(db, group_by=["kind", "username"], group_wait=0, group_interval=0)
    with Tx(db):
        for i, user in enumerate(["alice", "alice", "bob"]):
            for ch in ("a", "b"):
                g.add(
                    alert(
                        key={"username": user, "ip_address": "1"},
                        incident=i,
                        labels={"username": user},
                    ),
                    ch,
                    now=0.0,
                )
        assert not g.add(
            alert(
                key={"username": "bob", "ip_address": "1"}, incident=2, labels={"username": "bob"}
            ),
            "a",
            now=0.0,
        )  # already there
    assert len(g.due(0.0)) == 4


def test_a_batch_is_grouped_exactly_as_one_alert_at_a_time(tmp_path: Path) -> None:
    """Grouper.add_many (submit's one pass) gives the same answers, members and timers as
    add() per alert: duplicates in the batch, groups already waiting, idle and long-idle."""

    def build(path: Path) -> tuple[Grouper, object]:
        db = open_db(path)
        g = Grouper(db, group_by=["username"], group_wait=30, group_interval=300)
        with Tx(db):  # history: "alice" flushed at 100 (interval), "bob" long idle, "carol"
            for user, t in (("alice", 0.0), ("bob", 0.0), ("carol", 0.0)):
                g.add(
                    alert(
                        key={"username": user, "ip_address": "1"},
                        incident=user,
                        labels={"username": user},
                    ),
                    "ch",
                    now=t,
                )
            g.take("ch", g.key(alert(labels={"username": "alice"}))[0], now=100.0)
            g.take("ch", g.key(alert(labels={"username": "bob"}))[0], now=-1000.0)
        return g, db

    batch = [
        (alert(key={"username": u, "ip_address": "1"}, incident=i, labels={"username": u}), ch)
        for i, (u, ch) in enumerate(
            [
                ("alice", "ch"),
                ("bob", "ch"),
                ("carol", "ch"),
                ("dave", "ch"),
                ("dave", "other"),
                ("alice", "ch"),
            ]
        )
    ]
    batch.append(batch[0])  # the same alert twice in one batch
    one, db1 = build(tmp_path / "one")
    many, db2 = build(tmp_path / "many")
    with Tx(db1):
        answers_one = [one.add(a, ch, now=200.0) for a, ch in batch]
    with Tx(db2):
        answers_many = many.add_many(batch, now=200.0)
    assert answers_many == answers_one == [True] * 6 + [False]

    def state(db: object) -> tuple[list[tuple], list[tuple]]:
        return (
            db.execute("SELECT * FROM groups ORDER BY channel, gkey").fetchall(),
            db.execute(
                "SELECT channel, gkey, fp, status, added FROM group_members "
                "ORDER BY channel, gkey, fp"
            ).fetchall(),
        )

    assert state(db2) == state(db1)
    assert many.due(1000.0) == one.due(1000.0) and many.next_due() == one.next_due()


def test_a_batch_is_inhibited_exactly_as_one_alert_at_a_time(tmp_path: Path) -> None:
    inh = Inhibitor(open_db(tmp_path), parse_rules(None), ttl=3600)
    crit = alert("host_down", "critical", key={"host": "web-1"}, family="host-metrics")
    inh.observe([crit], now=0.0)
    batch = [
        alert("cpu_high", "high", key={"host": "web-1"}, family="host-metrics"),
        alert("cpu_high", "high", key={"host": "web-2"}, family="host-metrics"),
        crit,  # a source never mutes itself
        alert(
            "cpu_high", "high", key={"host": "web-1"}, family="host-metrics", audience="customer"
        ),
    ]
    assert (
        inh.inhibited_many(batch, now=1.0)
        == [inh.inhibited(a, now=1.0) for a in batch]
        == [True, False, False, False]
    )


# -- dedup ----------------------------------------------------------------------------------


def test_same_fingerprint_and_status_not_sent_twice_within_repeat_interval(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    d = Dedup(db, repeat_interval=4 * 3600)
    a = alert()
    with Tx(db):
        assert d.exec("ch", [a], now=0.0) == ([a], [])
        assert d.exec("ch", [a], now=1.0) == ([], [a])  # queued
        assert d.exec("other", [a], now=1.0) == ([a], [])  # per channel
        d.mark("ch", [(a.fingerprint, a.status)], "sent", now=10.0)
        # one flush holding the same alert in two groups of a channel queues it once
        b = alert(incident=2)
        assert d.exec_many([("ch", [b]), ("ch", [b])], now=2.0) == [([b], []), ([], [b])]
    d2 = Dedup(open_db(tmp_path), repeat_interval=4 * 3600)  # across restarts
    resolved = alert(status="resolved")
    assert d2.seen("ch", a, now=10.0 + 4 * 3600 - 1)
    assert not d2.seen("ch", a, now=10.0 + 4 * 3600 + 1)
    assert not d2.seen("ch", resolved, now=20.0)
    assert d2.channels_of(a.fingerprint) == ["ch", "other"] or set(
        d2.channels_of(a.fingerprint)
    ) == {"ch", "other"}


# -- rate limit and retry -----------------------------------------------------------------------


def test_token_bucket_bursts_then_refills_at_rate() -> None:
    b = TokenBucket(rate=1.0, burst=5)
    assert b.available(0.0) == 5
    b.take(0.0, 5)
    assert b.available(0.0) == 0 and b.wait_time(0.0) == pytest.approx(1.0)
    assert b.available(2.5) == 2
    assert b.available(100.0) == 5  # capped at burst


def test_overflow_is_rolled_into_one_digest_never_dropped() -> None:
    units = plan(12, 5, digest_max=100)
    assert [len(u) for u in units] == [1, 1, 1, 1, 8]
    assert sorted(i for u in units for i in u) == list(range(12))
    assert [len(u) for u in plan(3, 5, digest_max=100)] == [1, 1, 1]
    assert [len(u) for u in plan(9, 1, digest_max=100)] == [9]


def test_digest_lists_every_queued_message() -> None:
    groups = [[alert(incident=i, title=f"alert {i}")] for i in range(8)]
    msg = Renderer().render_digest(groups)
    assert "(+7 more)" in msg.title
    for g in groups:
        assert g[0].fingerprint in msg.body


def test_backoff_grows_exponentially_with_jitter_and_is_bounded() -> None:
    p = RetryPolicy(
        RetrySettings(initial=1, max_delay=30, multiplier=2, max_attempts=5, max_age=600),
        random.Random(7),
    )
    delays = [p.delay(n) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        base = min(30, 2 ** (n - 1))
        assert base / 2 <= d <= base
    assert p.exhausted(5, created=0, now=1) and p.exhausted(1, created=0, now=600)
    assert not p.exhausted(4, created=0, now=599)


def test_default_inhibition_spares_customer_notices_and_sla_breaches() -> None:
    """A critical new-ticket notice must not mute the ticket's SLA breach, and no internal
    alert may mute a notice meant for the customer."""
    from streamproc.alerts import Alert as _Alert
    from streamproc.notify.inhibit import parse_rules

    rules = parse_rules(None)
    key = {"ticket_id": "T-1"}

    def mk(kind: str, severity: str, audience: str = "internal") -> _Alert:
        return _Alert(
            kind=kind,
            severity=severity,
            status="firing",
            key=key,
            fingerprint=kind + audience,
            event_time=0.0,
            title=kind,
            family="support-tickets",
            audience=audience,
        )

    created = mk("ticket_created", "critical")
    breach = mk("sla_breach", "high")
    ack = mk("ticket_created", "info", "customer")
    host_crit = mk("metric_threshold", "critical")
    host_warn = mk("metric_threshold", "medium")

    from streamproc.notify.silences import match_labels

    def mutes(source: _Alert, target: _Alert) -> bool:
        s, t = match_labels(source), match_labels(target)
        return any(
            r.is_source(s) and r.is_target(t) and r.eq_hash(source, s) == r.eq_hash(target, t)
            for r in rules
        )

    assert not mutes(created, breach)
    assert not mutes(created, ack)
    assert not mutes(host_crit, ack)
    assert mutes(host_crit, host_warn)


# -- deliver --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:9/x",
        "form://127.0.0.1:9/x?format=html",
        "xml://127.0.0.1:9/x?format=markdown",
    ],
)
def test_fixed_formats_resolve_as_apprise_does(url: str) -> None:
    import apprise
    from apprise.common import NotifyFormat

    from streamproc.notify.deliver import fix_formats

    plain, fixed = apprise.Apprise.instantiate(url), apprise.Apprise.instantiate(url)
    fix_formats(fixed)
    for fmt in (None, *NotifyFormat):
        assert fixed.resolve_format(fmt) == plain.resolve_format(fmt)
