"""Prometheus metrics and the health endpoints, scraped over real HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from streamproc.ops.metrics import Metrics, start_http_server


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def served():
    metrics = Metrics()
    server = start_http_server(0, "127.0.0.1", metrics=metrics)
    yield metrics, server
    server.close()


def test_each_metrics_object_has_its_own_registry_starting_from_zero() -> None:
    a, b = Metrics(), Metrics()
    a.records_in.labels("auth-logs").inc(5)
    assert a.value("streamproc_records_in_total", {"topic": "auth-logs"}) == 5
    assert b.value("streamproc_records_in_total", {"topic": "auth-logs"}) is None


def test_metrics_endpoint_exposes_every_pipeline_metric_with_its_labels(served) -> None:
    m, server = served
    m.records_in.labels("auth-logs").inc(100)
    m.records_decoded.labels("auth-logs").inc(97)
    m.dead_letters.labels("auth-logs", "not_json").inc(3)
    m.late_events.labels("auth-logs").inc(2)
    m.consumer_lag.labels("auth-logs", "0").set(42)
    m.detector_evaluations.labels("brute_force").inc(97)
    m.detector_firings.labels("brute_force").inc()
    m.active_incidents.labels("brute_force").set(1)
    m.alerts.labels("brute_force", "high").inc()
    m.record_delivery("slack", "success", 0.2)
    m.delivery_backlog.set(7)
    m.state_keys.labels("brute_force").set(12)
    m.state_evictions.labels("brute_force").inc(4)
    status, body = _get(server.url + "/metrics")
    assert status == 200
    for line in (
        'streamproc_records_in_total{topic="auth-logs"} 100.0',
        'streamproc_records_decoded_total{topic="auth-logs"} 97.0',
        'streamproc_dead_letters_total{reason="not_json",topic="auth-logs"} 3.0',
        'streamproc_late_events_total{topic="auth-logs"} 2.0',
        'streamproc_consumer_lag{partition="0",topic="auth-logs"} 42.0',
        'streamproc_detector_evaluations_total{kind="brute_force"} 97.0',
        'streamproc_detector_firings_total{kind="brute_force"} 1.0',
        'streamproc_active_incidents{kind="brute_force"} 1.0',
        'streamproc_alerts_total{kind="brute_force",severity="high"} 1.0',
        'streamproc_deliveries_total{channel="slack",outcome="success"} 1.0',
        'streamproc_delivery_latency_seconds_bucket{channel="slack",le="0.25"} 1.0',
        "streamproc_delivery_backlog 7.0",
        'streamproc_state_keys{detector="brute_force"} 12.0',
        'streamproc_state_evictions_total{detector="brute_force"} 4.0',
    ):
        assert line in body.splitlines(), line
    assert "process_resident_memory_bytes" in body


def test_delivery_channel_label_is_the_service_name_even_when_given_a_url() -> None:
    m = Metrics(process_metrics=False)
    m.record_delivery("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazk", "failure", 4.0)
    body = m.exposition().decode()
    assert 'channel="slack"' in body
    assert "TIiajkdnlazk" not in body and "T1JJ3T3L2" not in body


def test_healthz_answers_while_the_process_lives(served) -> None:
    _, server = served
    assert _get(server.url + "/healthz") == (200, "ok\n")


def test_readyz_is_503_until_sources_connected_and_state_restored(served) -> None:
    m, server = served
    status, body = _get(server.url + "/readyz")
    assert status == 503
    assert "sources: not ready" in body and "state: not ready" in body
    m.set_ready("sources", True)
    assert _get(server.url + "/readyz")[0] == 503
    m.set_ready("state", True)
    status, body = _get(server.url + "/readyz")
    assert status == 200 and "sources: ready" in body


def test_readyz_turns_503_when_a_component_reports_not_ready(served) -> None:
    m, server = served
    m.set_ready("sources")
    m.set_ready("state")
    m.set_ready("delivery", False)
    assert _get(server.url + "/readyz")[0] == 503
    m.set_ready("delivery", True)
    assert _get(server.url + "/readyz")[0] == 200


def test_unknown_path_is_404(served) -> None:
    _, server = served
    assert _get(server.url + "/nope")[0] == 404


def test_metrics_listen_on_loopback_unless_an_address_is_given() -> None:
    from streamproc.commands.cli import build_parser

    args = build_parser().parse_args(["run", "--metrics-port", "9108"])
    assert args.metrics_host == "127.0.0.1"
    server = start_http_server(0, metrics=Metrics())
    try:
        assert server.address[0] == "127.0.0.1"
    finally:
        server.close()


def test_active_incidents_count_what_the_active_alerts_table_holds_at_each_scrape() -> None:
    from streamproc.alerts import Alert
    from streamproc.notify.active import ActiveAlerts

    def alert(kind: str, fp: str, status: str = "firing") -> Alert:
        return Alert(
            kind=kind,
            severity="high",
            status=status,
            key={"k": fp},
            fingerprint=fp,
            event_time=1.0,
            title="t",
        )

    now = [1000.0]
    table = ActiveAlerts(300.0, clock=lambda: now[0])
    m = Metrics(process_metrics=False)
    m.count_active(lambda: [a.alert.kind for a in table.current()])
    table.put(
        table.entries(
            [alert("brute_force", "a"), alert("brute_force", "b"), alert("host_silent", "c")],
            now[0],
        ),
        now[0],
    )
    m.exposition()
    assert m.value("streamproc_active_incidents", {"kind": "brute_force"}) == 2
    assert m.value("streamproc_active_incidents", {"kind": "host_silent"}) == 1
    table.put(table.entries([alert("host_silent", "c", "resolved")], now[0]), now[0])
    now[0] += 301  # the firing brute_force alerts time out (api.resolve_timeout)
    m.exposition()
    assert m.value("streamproc_active_incidents", {"kind": "brute_force"}) is None
    assert m.value("streamproc_active_incidents", {"kind": "host_silent"}) is None
