"""api-access-logs detectors: sql_injection (alerting behaviour; detection quality is in
test_sqli_corpus.py) and rate_abuse (exact counting at its boundaries)."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort

import orjson

from streamproc.detectors.testing import T0, Harness

ATTACK = "/products?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--"


def req(
    h: Harness, ts: float, endpoint: str = "/api/items", ip: str = "192.0.2.10", **extra: object
):
    extra.setdefault("method", "GET")
    extra.setdefault("status_code", 200)
    return h.send(ts, endpoint=endpoint, ip_address=ip, **extra)


# -- sql_injection --------------------------------------------------------------------------


def test_sql_injection_fires_critical_with_signatures_and_scanner_evidence() -> None:
    h = Harness("sql_injection")
    [alert] = req(
        h, T0, ATTACK, user_agent="sqlmap/1.7.2#stable (https://sqlmap.org)", status_code=500
    )
    assert alert.severity == "critical" and alert.key == {"ip_address": "192.0.2.10"}
    assert "union_select" in alert.evidence["signatures"]
    assert alert.evidence["scanner"] == "sqlmap" and alert.labels["scanner"] == "sqlmap"
    assert "union select username,password from users" in alert.evidence["normalised"]
    assert "may reach the database" in alert.body


def test_sql_injection_fires_once_per_address_and_incident() -> None:
    h = Harness("sql_injection")
    for i in range(50):
        req(h, T0 + i, ATTACK)
    req(h, T0 + 60, ATTACK, ip="198.51.100.3")
    assert len(h.of()) == 2
    assert h.detector.matches == 51
    req(h, T0 + 3600, ATTACK)  # realert (1 h) over: a new incident
    first, _, third = h.of()
    assert third.fingerprint != first.fingerprint


def test_sql_injection_ignores_benign_requests_with_sql_words() -> None:
    h = Harness("sql_injection")
    for i, endpoint in enumerate(
        [
            "/search?q=union+select+committee",
            "/api/customers?name=O%27Brien",
            "/search?q=drop+table+tennis+or+squash",
            "/wiki/Select_(SQL)",
            "/api/tickets?filter=%7B%22or%22%3A%5B1%2C2%5D%7D",
        ]
    ):
        req(h, T0 + i, endpoint)
    assert h.alerts == []


def test_sql_injection_inspects_user_agent_only_when_asked() -> None:
    ua = "Mozilla/5.0' AND SLEEP(5)-- -"
    off = Harness("sql_injection")
    assert req(off, T0, user_agent=ua) == []
    on = Harness("sql_injection", params={"sql_injection": {"inspect_user_agent": True}})
    [alert] = req(on, T0, user_agent=ua)
    assert alert.evidence["matched_field"] == "user_agent"


def test_sql_injection_state_restores() -> None:
    h = Harness("sql_injection")
    req(h, T0, ATTACK)
    h2 = Harness("sql_injection")
    h2.engine.restore(orjson.loads(orjson.dumps(h.engine.snapshot())))
    assert req(h2, T0 + 10, ATTACK) == []  # still inside the incident


# -- rate_abuse -----------------------------------------------------------------------------


def test_rate_abuse_600_requests_in_five_minutes_do_not_fire_601_do() -> None:
    h = Harness("rate_abuse")
    events = [
        h.event(T0 + i * 0.5, endpoint="/x", method="GET", status_code=200, ip_address="192.0.2.1")
        for i in range(600)
    ]
    assert h.feed(events) == []
    [alert] = req(h, T0 + 300, ip="192.0.2.1")  # T0 is exactly 300 s earlier: inside
    assert alert.severity == "medium" and alert.evidence["requests"] == 601
    assert alert.evidence["first_seen"] == T0
    assert len(alert.evidence["samples"]) == 5


def test_rate_abuse_window_edge_excludes_a_request_301_seconds_old() -> None:
    h = Harness("rate_abuse")
    h.feed(
        [
            h.event(
                T0 + i * 0.4, endpoint="/x", method="GET", status_code=200, ip_address="192.0.2.1"
            )
            for i in range(600)
        ]
    )
    assert req(h, T0 + 300.01, ip="192.0.2.1") == []  # T0 left the window


def test_rate_abuse_resolves_when_the_watermark_passes_the_clearing_time() -> None:
    h = Harness("rate_abuse")
    h.feed(
        [
            h.event(
                T0 + i * 0.1, endpoint="/x", method="GET", status_code=200, ip_address="192.0.2.1"
            )
            for i in range(700)
        ]
    )
    [firing] = h.of("rate_abuse", "firing")
    # 700 requests in [T0, T0+69.9]; the 601st newest is at T0+9.9: clears at T0+309.9
    h.advance(T0 + 309.9 + 60)  # watermark = stream time - 60 s lateness = T0+309.9
    assert h.of(status="resolved") == []
    h.advance(T0 + 309.9 + 60.01)
    [resolved] = h.of(status="resolved")
    assert resolved.fingerprint == firing.fingerprint
    assert abs(resolved.event_time - (T0 + 309.9)) < 1e-6
    assert resolved.evidence["peak"] == 700


def test_rate_abuse_count_is_exact_against_a_naive_count() -> None:
    # The documented guarantee, checked against a naive count over all requests: the alert
    # comes with the first request for which the window ending at it, or at the newest
    # request so far, holds more than N requests; requests arrive out of order (< 60 s).
    for seed in range(5):
        rng = random.Random(seed)
        threshold, window = 20, 10.0
        h = Harness(
            "rate_abuse",
            params={"rate_abuse": {"threshold": threshold, "window": window, "realert": 1e9}},
        )
        arrival = sorted(T0 + rng.uniform(0, 300) for _ in range(700))
        for i in range(0, len(arrival) - 3, 5):
            arrival[i], arrival[i + 3] = arrival[i + 3], arrival[i]
        seen: list[float] = []
        expected = None
        for index, t in enumerate(arrival):
            insort(seen, t)
            breach = any(
                bisect_right(seen, end) - bisect_left(seen, end - window) > threshold
                for end in (t, seen[-1])
            )
            if breach and expected is None:
                expected = index
            req(h, t, ip="192.0.2.77")
        firing = h.of("rate_abuse", "firing")
        if expected is None:
            assert firing == []
        else:
            assert len(firing) == 1 and firing[0].source["offset"] == expected + 1


def test_rate_abuse_single_requests_keep_bounded_state() -> None:
    h = Harness("rate_abuse", key_cap=100)
    for i in range(300):
        req(h, T0 + i, ip=f"10.0.{i // 256}.{i % 256}")
    assert h.detector.state_size() == 100 and h.detector.evictions == 200
    h.advance(T0 + 10_000)
    assert h.detector.state_size() == 0


def test_rate_abuse_restores_from_snapshot() -> None:
    h = Harness("rate_abuse", params={"rate_abuse": {"threshold": 5}})
    for i in range(5):
        req(h, T0 + i)
    h2 = Harness("rate_abuse", params={"rate_abuse": {"threshold": 5}})
    h2.engine.restore(orjson.loads(orjson.dumps(h.engine.snapshot())))
    assert len(req(h2, T0 + 6)) == 1


def test_the_lateness_example_of_the_docs_holds() -> None:
    """docs/detectors.md and engine.py: stream time 10:05, lateness 60 s: 10:04:30 is
    accepted, 09:58 is late."""
    from streamproc.detectors.engine import DetectorEngine
    from streamproc.events import Event, parse_timestamp

    engine = DetectorEngine([], allowed_lateness=60.0, max_time_jump=float("inf"))

    def ev(t: str, offset: int) -> Event:
        return Event("auth-logs", parse_timestamp(f"2026-01-01T{t}Z"), {}, "t", 0, offset)

    engine.process([ev("10:00:00", 0), ev("10:05:00", 1)])
    _, rejected = engine.process([ev("10:04:30", 2), ev("09:58:00", 3)])
    assert [(r.reason, r.event.offset) for r in rejected] == [("late", 3)]
