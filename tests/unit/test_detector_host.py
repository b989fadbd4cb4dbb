"""host-metrics detectors: metric_threshold (levels, for, hysteresis, re-notify, flapping) and
host_silent (timers on the watermark)."""

from __future__ import annotations

import orjson

from streamproc.detectors.testing import T0, Harness


def cpu(h: Harness, ts: float, value: float, host: str = "web-1", **extra: object):
    return h.send(ts, host=host, cpu_percent=value, **extra)


# -- metric_threshold -----------------------------------------------------------------------


def test_metric_threshold_cpu_80_is_fine_80_1_fires_medium() -> None:
    h = Harness("metric_threshold")
    assert cpu(h, T0, 80.0) == []
    [alert] = cpu(h, T0 + 10, 80.1)
    assert alert.severity == "medium" and alert.key == {"host": "web-1", "metric": "cpu_percent"}
    assert alert.labels["level"] == "warning" and alert.evidence["threshold"] == 80.0


def test_metric_threshold_critical_at_95_and_per_metric_defaults() -> None:
    h = Harness("metric_threshold")
    [alert] = cpu(h, T0, 95.0)
    assert alert.severity == "critical"
    assert h.send(T0, host="db-1", memory_percent=85.0) == []
    assert len(h.send(T0 + 1, host="db-1", memory_percent=85.5)) == 1
    assert h.send(T0, host="db-2", disk_percent=90.0) == []
    assert h.send(T0 + 1, host="db-2", disk_percent=95.0)[0].severity == "critical"
    assert h.send(T0, host="db-3", load_average=4.0) == []
    assert h.send(T0 + 1, host="db-3", load_average=4.01)[0].severity == "medium"


def test_metric_threshold_hysteresis_resolves_only_five_points_under() -> None:
    h = Harness("metric_threshold")
    [firing] = cpu(h, T0, 85)
    assert cpu(h, T0 + 10, 79) == []
    assert cpu(h, T0 + 20, 75.1) == []
    [resolved] = cpu(h, T0 + 30, 75.0)
    assert resolved.status == "resolved" and resolved.fingerprint == firing.fingerprint


def test_metric_threshold_escalates_and_deescalates_with_separate_fingerprints() -> None:
    h = Harness("metric_threshold")
    [warning] = cpu(h, T0, 85)
    [critical] = cpu(h, T0 + 10, 97)
    assert critical.severity == "critical" and critical.fingerprint != warning.fingerprint
    assert cpu(h, T0 + 20, 91) == []  # inside the critical hysteresis band (> 90)
    [crit_resolved] = cpu(h, T0 + 30, 88)
    assert crit_resolved.status == "resolved" and crit_resolved.fingerprint == critical.fingerprint
    [warn_resolved] = cpu(h, T0 + 40, 50)
    assert warn_resolved.fingerprint == warning.fingerprint


def test_metric_threshold_for_duration_delays_firing() -> None:
    h = Harness("metric_threshold", params={"metric_threshold": {"for": 60.0}})
    assert cpu(h, T0, 90) == []
    assert cpu(h, T0 + 59, 90) == []
    [alert] = cpu(h, T0 + 60, 90)
    assert alert.evidence["since"] == T0
    short = Harness("metric_threshold", params={"metric_threshold": {"for": 60.0}})
    cpu(short, T0, 90)
    cpu(short, T0 + 30, 70)  # back under before `for` elapsed: nothing
    cpu(short, T0 + 61, 90)
    assert short.alerts == []


def test_metric_threshold_renotifies_every_four_hours_while_firing() -> None:
    h = Harness("metric_threshold")
    for i in range(0, 9 * 3600, 600):
        cpu(h, T0 + i, 90)
    firing = h.of("metric_threshold", "firing")
    assert [a.evidence["repeat"] for a in firing] == [0, 1, 2]
    assert len({a.fingerprint for a in firing}) == 1
    assert firing[1].event_time == T0 + 4 * 3600


def test_metric_threshold_flapping_is_reported_once_not_as_a_storm() -> None:
    h = Harness("metric_threshold")
    for i in range(12):  # 90, 60, 90, 60... every minute for 12 minutes
        cpu(h, T0 + i * 60, 90 if i % 2 == 0 else 60)
    statuses = [(a.status, a.labels.get("flapping")) for a in h.alerts]
    assert statuses == [("firing", None), ("resolved", None), ("firing", None), ("firing", "true")]
    # stable for 30 minutes: the flapping resolves, and so does the open incident
    for i in range(12, 50):
        cpu(h, T0 + i * 60, 60)
    tail = [(a.status, a.labels.get("flapping")) for a in h.alerts[4:]]
    assert tail == [("resolved", "true"), ("resolved", None)]
    fingerprints = {a.fingerprint for a in h.alerts if a.labels.get("flapping") != "true"}
    assert len(fingerprints) == 2  # two incidents, each fired and resolved once


def test_metric_threshold_ignores_stale_out_of_order_samples() -> None:
    h = Harness("metric_threshold")
    cpu(h, T0 + 10, 90)
    assert cpu(h, T0 + 5, 10) == []  # older than the newest sample: does not resolve
    assert h.of(status="resolved") == []


def test_metric_threshold_extra_metrics_and_restore() -> None:
    params = {
        "metric_threshold": {"extra_metrics": {"gpu_percent": {"warning": 90, "critical": 99}}}
    }
    h = Harness("metric_threshold", params=params)
    [alert] = h.send(T0, host="gpu-1", gpu_percent=92.0)
    assert alert.key["metric"] == "gpu_percent"
    h2 = Harness("metric_threshold", params=params)
    h2.engine.restore(orjson.loads(orjson.dumps(h.engine.snapshot())))
    [resolved] = h2.send(T0 + 10, host="gpu-1", gpu_percent=10.0)
    assert resolved.fingerprint == alert.fingerprint


def test_metric_threshold_keeps_no_state_for_healthy_hosts() -> None:
    h = Harness("metric_threshold", key_cap=3)
    for i in range(100):
        cpu(h, T0 + i, 20, host=f"h{i}")
    assert h.detector.state_size() == 0
    for i in range(5):
        cpu(h, T0 + 200 + i, 90, host=f"h{i}")
    assert h.detector.state_size() == 3 and h.detector.evictions == 2


# -- host_silent ----------------------------------------------------------------------------


def _reporting(
    h: Harness, host: str = "web-1", start: float = T0, n: int = 6, every: float = 10.0
) -> float:
    for i in range(n):
        h.send(start + i * every, host=host, cpu_percent=10.0)
    return start + (n - 1) * every


def test_host_silent_fires_only_when_the_watermark_passes_the_deadline() -> None:
    h = Harness("host_silent")
    last = _reporting(h)  # every 10 s: 3x = 30 s < 60 s minimum, deadline last + 60
    h.advance(last + 60 + 60)  # watermark = last + 60: at, not beyond, the deadline
    assert h.alerts == []
    h.advance(last + 60 + 60.001)
    [alert] = h.alerts
    assert alert.severity == "medium" and alert.event_time == last + 60
    assert alert.evidence["last_seen"] == last and alert.evidence["interval_seconds"] == 10


def test_host_silent_uses_three_times_a_long_interval() -> None:
    h = Harness("host_silent")
    last = _reporting(h, every=120)
    h.advance(last + 359 + 60)
    assert h.alerts == []
    h.advance(last + 361 + 60)
    assert len(h.alerts) == 1


def test_host_silent_resolves_when_the_host_reports_again() -> None:
    h = Harness("host_silent")
    last = _reporting(h)
    h.advance(last + 200)
    [firing] = h.alerts
    [resolved] = h.send(last + 500, host="web-1", cpu_percent=5.0)
    assert resolved.status == "resolved" and resolved.fingerprint == firing.fingerprint
    assert resolved.evidence["silent_for_seconds"] == 500


def test_host_silent_other_hosts_hold_the_watermark_not_the_wall_clock() -> None:
    h = Harness("host_silent")
    _reporting(h, "web-1")
    _reporting(h, "web-2", n=100)  # web-2 keeps reporting for 990 s
    [alert] = h.alerts
    assert alert.key == {"host": "web-1"}


def test_host_silent_same_batch_gap_still_reports_the_silence() -> None:
    h = Harness("host_silent")
    events = [h.event(T0 + i * 10, host="web-1") for i in range(6)]
    events.append(h.event(T0 + 500, host="web-1"))
    alerts = h.feed(events)
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[0].event_time == T0 + 50 + 60


def test_host_silent_needs_two_samples_before_watching() -> None:
    h = Harness("host_silent")
    h.send(T0, host="one-off")
    h.advance(T0 + 100_000)
    assert h.alerts == []


def test_host_silent_duplicate_samples_do_not_shrink_the_interval_and_restore() -> None:
    h = Harness("host_silent")
    last = _reporting(h, every=60)
    h.send(last, host="web-1")  # duplicate
    assert h.detector.interval(h.detector.state.get("web-1")) == 60
    h2 = Harness("host_silent")
    h2.engine.restore(orjson.loads(orjson.dumps(h.engine.snapshot())))
    h2.advance(last + 181 + 60)
    assert len(h2.alerts) == 1
