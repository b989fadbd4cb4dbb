"""cicd-events, support-tickets and business-metrics detectors at their boundaries."""

from __future__ import annotations

import orjson

from streamproc.detectors.testing import T0, Harness

HOUR = 3600.0


# -- pipeline_failed / deployment -----------------------------------------------------------


def pipeline(h: Harness, ts: float, status: str, branch: str = "main", **extra: object):
    return h.send(
        ts,
        type="pipeline",
        status=status,
        project="api",
        branch=branch,
        commit="abc123",
        author="dana",
        **extra,
    )


def test_pipeline_failure_fires_high_once_per_red_streak_and_resolves_on_success() -> None:
    h = Harness("pipeline_failed")
    [failed] = pipeline(h, T0, "failure", build_url="https://ci.example/1")
    assert failed.severity == "high" and "https://ci.example/1" in failed.body
    assert pipeline(h, T0 + 60, "failed") == []  # still red: counted, not re-sent
    [recovered] = pipeline(h, T0 + 120, "success")
    assert recovered.status == "resolved" and recovered.fingerprint == failed.fingerprint
    assert recovered.evidence["failures"] == 2
    assert len(pipeline(h, T0 + 180, "failure")) == 1  # a new red streak


def test_pipeline_warning_is_medium_and_info_events_can_be_turned_off() -> None:
    h = Harness("pipeline_failed")
    assert pipeline(h, T0, "warning")[0].severity == "medium"
    assert pipeline(h, T0 + 1, "success")[0].severity == "info"
    assert pipeline(h, T0 + 2, "started")[0].severity == "info"
    quiet = Harness("pipeline_failed", params={"pipeline_failed": {"info_events": False}})
    assert pipeline(quiet, T0, "success") == [] and pipeline(quiet, T0 + 1, "started") == []
    assert len(pipeline(quiet, T0 + 2, "failure")) == 1


def test_pipeline_branches_are_separate_and_state_restores() -> None:
    h = Harness("pipeline_failed")
    pipeline(h, T0, "failure", branch="main")
    assert len(pipeline(h, T0 + 1, "failure", branch="feature-x")) == 1
    h2 = Harness("pipeline_failed")
    h2.engine.restore(orjson.loads(orjson.dumps(h.engine.snapshot())))
    assert pipeline(h2, T0 + 2, "success", branch="main")[0].status == "resolved"


def test_deployment_production_is_visible_to_all_others_go_to_dev() -> None:
    h = Harness("deployment")
    [prod] = h.send(
        T0,
        type="deployment",
        service="api",
        version="1.4.2",
        environment="Production",
        deployer="dana",
    )
    [stage] = h.send(
        T0 + 1, type="deployment", service="api", version="1.4.2", environment="staging"
    )
    assert prod.severity == "info" and prod.labels["visibility"] == "all"
    assert stage.labels["visibility"] == "dev"
    [failed] = h.send(
        T0 + 2,
        type="deployment",
        service="api",
        version="1.4.3",
        environment="prod",
        status="failed",
    )
    assert failed.severity == "high"
    assert h.send(T0 + 3, type="pipeline", status="success", project="api") == []


# -- tickets ------------------------------------------------------------------------------------


def created(h: Harness, ts: float, tid: str = "T-1", priority: str = "urgent"):
    return h.send(
        ts,
        event="created",
        ticket_id=tid,
        priority=priority,
        customer_name="Ada",
        customer_email="ada@example.com",
        subject="Checkout is down",
    )


def test_ticket_created_severity_by_priority_and_customer_acknowledgement() -> None:
    h = Harness("ticket_created")
    for priority, severity in (
        ("urgent", "critical"),
        ("high", "high"),
        ("normal", "medium"),
        ("low", "low"),
        ("weird", "medium"),
    ):
        internal, ack = created(h, T0, f"T-{priority}", priority)
        assert internal.severity == severity and internal.audience == "internal"
        assert ack.audience == "customer" and ack.labels["audience"] == "customer"
        assert ack.labels["customer_email"] == "ada@example.com"
        assert internal.fingerprint != ack.fingerprint
    _, ack = created(h, T0, "T-u2", "urgent")
    assert "within 1 hour" in ack.body and ack.evidence["sla_hours"] == 1.0


def test_sla_breach_fires_when_the_watermark_passes_the_deadline() -> None:
    h = Harness("sla_breach")
    created(h, T0)  # urgent: 1 h
    h.advance(T0 + HOUR + 60)  # watermark = deadline exactly: not beyond
    assert h.alerts == []
    h.advance(T0 + HOUR + 60.001)
    [breach] = h.alerts
    assert breach.severity == "high" and breach.event_time == T0 + HOUR


def test_sla_breach_response_exactly_at_the_deadline_is_in_time() -> None:
    h = Harness("sla_breach")
    created(h, T0)
    h.send(T0 + HOUR, event="responded", ticket_id="T-1")
    h.advance(T0 + 10 * HOUR)
    assert h.alerts == []


def test_sla_breach_apology_at_twice_the_sla_and_resolution_on_response() -> None:
    h = Harness("sla_breach")
    created(h, T0, priority="high")  # 4 h
    h.advance(T0 + 5 * HOUR)
    h.advance(T0 + 8 * HOUR + 60)
    assert [a.audience for a in h.alerts] == ["internal"]
    h.advance(T0 + 8 * HOUR + 61)
    breach, apology = h.alerts
    assert apology.audience == "customer" and apology.event_time == T0 + 8 * HOUR
    assert "sorry" in apology.body and apology.labels["customer_email"] == "ada@example.com"
    [resolved] = h.send(T0 + 9 * HOUR, event="responded", ticket_id="T-1")
    assert resolved.status == "resolved" and resolved.fingerprint == breach.fingerprint


def test_sla_breach_one_watermark_step_past_deadline_and_apology_gives_both() -> None:
    h = Harness("sla_breach")
    created(h, T0, priority="high")  # 4 h, apology at 8 h
    breach, apology = h.advance(T0 + 8 * HOUR + 61)
    assert (breach.audience, breach.event_time) == ("internal", T0 + 4 * HOUR)
    assert (apology.audience, apology.event_time) == ("customer", T0 + 8 * HOUR)
    assert h.advance(T0 + 40 * HOUR) == []


def test_sla_breach_late_response_in_the_same_batch_still_reports_the_breach() -> None:
    h = Harness("sla_breach")
    alerts = h.feed(
        [
            h.event(T0, event="created", ticket_id="T-9", priority="urgent"),
            h.event(T0 + 1.5 * HOUR, event="responded", ticket_id="T-9"),
        ]
    )
    assert [a.status for a in alerts] == ["firing", "resolved"]


def test_sla_breach_ticket_created_out_of_order_breaches_at_its_own_deadline() -> None:
    h = Harness("sla_breach")
    created(h, T0 + 30, tid="T-1")
    created(h, T0, tid="T-2")  # arrives second, within the allowed lateness
    [first] = h.advance(T0 + HOUR + 61)  # watermark T0 + 1 h + 1 s
    assert first.key == {"ticket_id": "T-2"} and first.event_time == T0 + HOUR
    [second] = h.advance(T0 + HOUR + 91)
    assert second.key == {"ticket_id": "T-1"} and second.event_time == T0 + HOUR + 30


def test_sla_breach_restores_the_list_snapshot_and_keeps_deadlines_across_an_sla_change() -> None:
    # The snapshot format of the list-per-ticket version; restored after a reload that moved
    # the urgent SLA to 2 h, the open ticket keeps the 1 h deadline it was created with.
    import math

    old = {
        "tickets": [
            [
                "T-1",
                [
                    T0,
                    "urgent",
                    T0 + HOUR,
                    T0 + 2 * HOUR,
                    False,
                    False,
                    "Ada",
                    "ada@example.com",
                    "Checkout is down",
                    {"topic": "support-tickets", "partition": 0, "offset": 7},
                ],
            ]
        ],
        "timers": [[math.nextafter(T0 + HOUR, math.inf), "T-1"]],
        "evictions": 0,
    }
    h = Harness("sla_breach", params={"sla_breach": {"sla_urgent_hours": 2.0}})
    h.detector.restore(orjson.loads(orjson.dumps(old)))
    assert h.detector.snapshot()["tickets"] == old["tickets"]
    created(h, T0 + 60, tid="T-2")  # a new urgent ticket: 2 h
    [breach] = h.advance(T0 + HOUR + 61)
    assert breach.key == {"ticket_id": "T-1"} and breach.event_time == T0 + HOUR
    assert breach.evidence["deadline"] == T0 + HOUR
    assert breach.source == {"topic": "support-tickets", "partition": 0, "offset": 7}
    [apology] = h.advance(T0 + 2 * HOUR + 61)
    assert apology.audience == "customer" and apology.event_time == T0 + 2 * HOUR
    [late] = h.advance(T0 + 2 * HOUR + 121)
    assert late.key == {"ticket_id": "T-2"} and late.event_time == T0 + 60 + 2 * HOUR


def test_sla_table_is_shared_with_ticket_created_and_ticket_resolved() -> None:
    params = {"sla_breach": {"sla_urgent_hours": 2.0}}
    h = Harness("ticket_created", "sla_breach", "ticket_resolved", params=params)
    _, ack = created(h, T0)
    assert ack.evidence["sla_hours"] == 2.0
    h.send(T0 + 1.5 * HOUR, event="responded", ticket_id="T-1")
    summary, notice = h.send(
        T0 + 5 * HOUR,
        event="resolved",
        ticket_id="T-1",
        resolution="Restarted the payment worker",
        feedback_url="https://support.example/fb/1",
    )
    assert summary.evidence["sla_met"] is True and summary.labels["sla"] == "met"
    assert notice.audience == "customer" and "https://support.example/fb/1" in notice.body
    assert h.of("sla_breach") == []


def test_ticket_resolved_reports_a_missed_sla_and_unknown_history() -> None:
    h = Harness("ticket_resolved")
    created(h, T0)
    summary, _ = h.send(T0 + 2 * HOUR, event="resolved", ticket_id="T-1")
    assert summary.evidence["sla_met"] is False and "MISSED" in summary.body
    unknown, _ = h.send(T0 + 3 * HOUR, event="resolved", ticket_id="T-old")
    assert unknown.evidence["sla_met"] is None


# -- business -----------------------------------------------------------------------------------


def revenue(h: Harness, ts: float, value: float, previous: float | None = None, **extra: object):
    data = {"metric": "revenue", "daily_revenue": value, **extra}
    if previous is not None:
        data["previous_day_revenue"] = previous
    return h.send(ts, **data)


def test_revenue_target_missed_boundaries_and_resolution() -> None:
    h = Harness("revenue_target_missed")
    assert revenue(h, T0, 80_000) == []  # exactly 80%: not below
    [medium] = revenue(h, T0 + 1, 79_999)
    assert medium.severity == "medium"
    [high] = revenue(h, T0 + 2, 59_999)
    assert high.severity == "high" and high.fingerprint != medium.fingerprint
    assert revenue(h, T0 + 3, 59_000) == []  # same day, same level: once
    resolved = revenue(h, T0 + 4, 90_000)
    assert [(a.status, a.severity) for a in resolved] == [
        ("resolved", "high"),
        ("resolved", "medium"),
    ]
    assert len(revenue(h, T0 + 86400, 50_000)) == 1  # the next day is a new incident


def test_revenue_target_from_the_record_wins_over_the_default() -> None:
    h = Harness("revenue_target_missed")
    assert revenue(h, T0, 150_000, daily_target=200_000)[0].severity == "medium"


def test_revenue_drop_boundaries() -> None:
    h = Harness("revenue_drop")
    assert revenue(h, T0, 85_000, previous=100_000) == []  # exactly -15%
    [high] = revenue(h, T0 + 1, 84_999, previous=100_000)
    assert high.severity == "high"
    [critical] = revenue(h, T0 + 2, 69_999, previous=100_000)
    assert critical.severity == "critical"
    assert revenue(h, T0 + 86400, 50, previous=0) == []


def test_revenue_target_exceeded_is_info_once_a_day() -> None:
    h = Harness("revenue_target_exceeded")
    assert revenue(h, T0, 119_999) == []
    [good] = revenue(h, T0 + 1, 120_000)
    assert good.severity == "info"
    assert revenue(h, T0 + 2, 100_000) == [] and revenue(h, T0 + 3, 130_000) == []


def test_metric_below_each_floor_and_custom_minimums() -> None:
    h = Harness("metric_below", params={"metric_below": {"minimums": {"signups": 200}}})
    assert h.send(T0, metric="conversion_rate", value=0.03) == []
    assert len(h.send(T0 + 1, metric="conversion_rate", value=0.0299)) == 1
    assert h.send(T0, metric="daily_active_users", value=10_000) == []
    assert len(h.send(T0 + 1, metric="daily_active_users", value=9_999)) == 1
    assert len(h.send(T0, metric="session_duration", session_duration=299.0)) == 1
    assert len(h.send(T0, metric="signups", value=150)) == 1
    [resolved] = h.send(T0 + 5, metric="conversion_rate", value=0.05)
    assert resolved.status == "resolved"
    assert h.send(T0, metric="revenue", daily_revenue=1.0) == []
