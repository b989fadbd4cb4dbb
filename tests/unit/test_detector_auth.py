"""auth-logs detectors at their boundaries: brute_force, password_spray,
distributed_brute_force, compromise_suspected, unusual_login."""

from __future__ import annotations

import orjson

from streamproc.detectors.testing import T0, Harness

ATTACKER = "203.0.113.9"


def fail(h: Harness, ts: float, user: str = "alice", ip: str = ATTACKER, **extra: object):
    return h.send(ts, username=user, ip_address=ip, success=False, **extra)


def ok(h: Harness, ts: float, user: str = "alice", ip: str = ATTACKER, **extra: object):
    return h.send(ts, username=user, ip_address=ip, success=True, **extra)


# -- brute_force ----------------------------------------------------------------------------


def test_brute_force_fires_on_fifth_failure_within_an_hour() -> None:
    h = Harness("brute_force")
    for i in range(4):
        assert fail(h, T0 + i * 60, user_agent="hydra") == []
    [alert] = fail(h, T0 + 240, user_agent="hydra")
    assert alert.kind == "brute_force" and alert.severity == "high"
    assert alert.key == {"username": "alice", "ip_address": ATTACKER}
    assert alert.evidence["failures"] == 5
    assert alert.evidence["first_seen"] == T0 and alert.evidence["last_seen"] == T0 + 240
    assert len(alert.evidence["samples"]) == 5
    assert alert.evidence["samples"][0]["user_agent"] == "hydra"
    assert alert.source["offset"] == 5


def test_brute_force_says_at_least_when_older_failures_in_its_window_were_not_kept() -> None:
    """A key failing every minute for two hours: when it fires again, its window holds more
    failures than the detector keeps (2 x threshold), so the count is a lower bound and the
    alert says so instead of understating the attack."""
    h = Harness("brute_force")
    for minute in range(125):
        fail(h, T0 + minute * 60)
    first, second, *_ = h.of("brute_force")
    assert first.evidence["failures"] == 5 and first.evidence["failures_exact"] is True
    assert first.body.startswith("5 failed logins")
    assert second.evidence["failures"] == 10 and second.evidence["failures_exact"] is False
    assert second.body.startswith("at least 10 failed logins")


def test_brute_force_four_failures_do_not_fire() -> None:
    h = Harness("brute_force")
    for i in range(4):
        fail(h, T0 + i)
    h.finish()
    assert h.alerts == []


def test_brute_force_window_edge_59_59_fires_60_01_does_not() -> None:
    inside = Harness("brute_force")
    for t in (0, 10, 20, 30, 3599):
        fail(inside, T0 + t)
    assert len(inside.of("brute_force")) == 1
    exactly = Harness("brute_force")
    for t in (0, 10, 20, 30, 3600):  # both edges inclusive
        fail(exactly, T0 + t)
    assert len(exactly.of("brute_force")) == 1
    outside = Harness("brute_force")
    for t in (0, 10, 20, 30, 3601):
        fail(outside, T0 + t)
    assert outside.of("brute_force") == []


def test_brute_force_counts_an_out_of_order_failure_within_lateness() -> None:
    h = Harness("brute_force")
    for t in (0, 10, 20, 40):
        fail(h, T0 + t)
    [alert] = fail(h, T0 + 30)  # 10 s behind the newest, lateness 60 s
    assert alert.evidence["failures"] == 5
    assert alert.event_time == T0 + 40  # the window ending at the newest failure decided


def test_brute_force_ignores_a_failure_behind_the_watermark() -> None:
    h = Harness("brute_force")
    for t in (0, 10, 20, 1000):
        fail(h, T0 + t)
    assert fail(h, T0 + 30) == []  # 970 s behind: late
    assert len(h.late) == 1 and h.late[0].ts == T0 + 30
    assert h.engine.late_events == 1


def test_brute_force_alerts_once_per_incident_and_again_after_realert() -> None:
    h = Harness("brute_force")
    for i in range(20):
        fail(h, T0 + i)
    assert len(h.of("brute_force")) == 1
    for i in range(5):
        fail(h, T0 + 3700 + i)
    first, second, *_ = h.of("brute_force")
    assert first.fingerprint != second.fingerprint


def test_brute_force_successes_do_not_count() -> None:
    h = Harness("brute_force")
    for i in range(4):
        fail(h, T0 + i)
        ok(h, T0 + i)
    assert h.of("brute_force") == []


def test_brute_force_evicts_least_recent_key_at_the_cap_and_counts_it() -> None:
    h = Harness("brute_force", key_cap=2)
    for i in range(4):
        fail(h, T0 + i, user="alice")
    fail(h, T0 + 10, user="bob")
    fail(h, T0 + 11, user="carol")  # evicts alice (least recently used)
    assert h.detector.evictions == 1 and h.detector.state_size() == 2
    assert fail(h, T0 + 12, user="alice") == []  # alice's count restarted


def test_brute_force_state_survives_snapshot_and_restore() -> None:
    h = Harness("brute_force")
    for i in range(4):
        fail(h, T0 + i, user_agent="hydra", country="NL")
    blob = orjson.dumps(h.engine.snapshot())
    h2 = Harness("brute_force")
    h2.engine.restore(orjson.loads(blob))
    [alert] = fail(h2, T0 + 5)
    assert alert.evidence["failures"] == 5
    assert alert.evidence["samples"][0]["country"] == "NL"


def test_brute_force_key_is_unambiguous_for_usernames_with_separators() -> None:
    h = Harness("brute_force")
    for i in range(3):
        fail(h, T0 + i, user="a:1", ip="2b")
        fail(h, T0 + i, user="a", ip=":12b")
    assert h.detector.state_size() == 2


def test_brute_force_drops_state_once_the_window_has_passed() -> None:
    h = Harness("brute_force")
    fail(h, T0, user="alice")
    fail(h, T0 + 10_000, user="bob")
    h.advance(T0 + 20_000)
    assert h.detector.state_size() == 0


# -- password_spray --------------------------------------------------------------------------


def test_password_spray_fires_on_twentieth_distinct_username_in_ten_minutes() -> None:
    h = Harness("password_spray")
    for i in range(19):
        assert fail(h, T0 + i * 10, user=f"user{i}") == []
    [alert] = fail(h, T0 + 190, user="user19")
    assert alert.kind == "password_spray" and alert.severity == "high"
    assert alert.key == {"ip_address": ATTACKER}
    assert alert.evidence["distinct_usernames"] == 20
    assert alert.evidence["first_seen"] == T0


def test_password_spray_repeated_usernames_count_once() -> None:
    h = Harness("password_spray")
    for i in range(60):
        fail(h, T0 + i, user=f"user{i % 19}")
    assert h.of("password_spray") == []


def test_password_spray_window_edge() -> None:
    inside = Harness("password_spray")
    for i in range(19):
        fail(inside, T0 + i, user=f"u{i}")
    fail(inside, T0 + 600, user="u19")  # u0 at T0 is exactly 600 s earlier: inside
    assert len(inside.of("password_spray")) == 1
    outside = Harness("password_spray")
    for i in range(19):
        fail(outside, T0 + i, user=f"u{i}")
    fail(outside, T0 + 601, user="u19")
    assert outside.of("password_spray") == []


def test_password_spray_username_seen_again_stays_in_the_window() -> None:
    h = Harness("password_spray")
    fail(h, T0, user="u0")
    for i in range(1, 19):
        fail(h, T0 + 400 + i, user=f"u{i}")
    fail(h, T0 + 500, user="u0")  # u0 again: its latest time is now 500
    assert fail(h, T0 + 900, user="u19") != []  # u0 (500) still inside [300, 900]


def test_password_spray_out_of_order_and_eviction_and_restore() -> None:
    h = Harness("password_spray", key_cap=1)
    for i in range(10):
        fail(h, T0 + 20 + i, user=f"u{i}")
    fail(h, T0 + 5, user="u10")  # out of order, inside lateness
    assert h.late == []
    snap = orjson.loads(orjson.dumps(h.engine.snapshot()))
    h2 = Harness("password_spray")
    h2.engine.restore(snap)
    for i in range(11, 20):
        fail(h2, T0 + 40 + i, user=f"u{i}")
    assert len(h2.of("password_spray")) == 1
    fail(h, T0 + 31, ip="198.51.100.1")
    assert h.detector.evictions == 1


# -- distributed_brute_force -----------------------------------------------------------------


def test_distributed_brute_force_fires_on_tenth_distinct_address() -> None:
    h = Harness(
        "distributed_brute_force", params={"distributed_brute_force": {"network_threshold": 0}}
    )
    for i in range(9):
        assert fail(h, T0 + i, ip=f"198.51.100.{i}") == []
    [alert] = fail(h, T0 + 9, ip="198.51.100.9")
    assert alert.key == {"username": "alice"}
    assert alert.evidence["distinct_ip_addresss"] == 10
    assert alert.evidence["rule"] == "addresses"


def test_distributed_brute_force_fires_on_fifth_distinct_network() -> None:
    h = Harness("distributed_brute_force")
    for i in range(4):
        fail(h, T0 + i, ip=f"192.0.{i}.7")
    for i in range(4):  # more addresses in known networks do not count as networks
        fail(h, T0 + 10 + i, ip=f"192.0.0.{100 + i}")
    assert h.of() == []
    [alert] = fail(h, T0 + 20, ip="192.0.4.7")
    assert alert.evidence["rule"] == "networks"
    assert alert.evidence["distinct_networks"] == 5
    assert "192.0.4.0/24" in alert.evidence["networks"]


def test_distributed_brute_force_groups_ipv6_by_48_and_mapped_ipv4_by_24() -> None:
    h = Harness("distributed_brute_force")
    for i in range(4):
        fail(h, T0 + i, ip=f"2001:db8:{i}::{i + 1}")
        fail(h, T0 + i, ip=f"2001:db8:{i}:ffff::1")  # same /48 as the line above
    fail(h, T0 + 5, ip="::ffff:192.0.2.1")
    assert len(h.of()) == 1  # 9 addresses, 5 networks: 4 x /48 + one IPv4 /24
    assert "192.0.2.0/24" in h.alerts[0].evidence["networks"]


def test_distributed_brute_force_window_is_one_hour() -> None:
    h = Harness(
        "distributed_brute_force", params={"distributed_brute_force": {"network_threshold": 0}}
    )
    fail(h, T0, ip="10.0.0.1")
    for i in range(8):
        fail(h, T0 + 1000 + i, ip=f"10.0.0.{i + 2}")
    assert fail(h, T0 + 3601, ip="10.0.0.99") == []  # 10.0.0.1 left the window
    assert len(fail(h, T0 + 3602, ip="10.0.0.98")) == 1


# -- compromise_suspected ---------------------------------------------------------------------


def _auth_pair() -> Harness:
    return Harness("brute_force", "compromise_suspected")


def test_compromise_suspected_fires_on_success_within_ten_minutes_of_brute_force() -> None:
    h = _auth_pair()
    for i in range(5):
        fail(h, T0 + i)
    [alert] = ok(h, T0 + 4 + 600)  # exactly 10 min after the fire: inside
    assert alert.kind == "compromise_suspected" and alert.severity == "critical"
    assert alert.evidence["brute_force_fired_at"] == T0 + 4
    assert ok(h, T0 + 700) == []  # once per brute-force incident


def test_compromise_suspected_not_after_ten_minutes_or_from_another_address() -> None:
    h = _auth_pair()
    for i in range(5):
        fail(h, T0 + i)
    assert ok(h, T0 + 4 + 601) == []
    assert ok(h, T0 + 100, ip="198.51.100.1") == []
    assert h.of("compromise_suspected") == []


def test_compromise_suspected_same_batch_as_the_brute_force() -> None:
    h = _auth_pair()
    events = [
        h.event(T0 + i, username="alice", ip_address=ATTACKER, success=False) for i in range(5)
    ]
    events.append(h.event(T0 + 30, username="alice", ip_address=ATTACKER, success=True))
    alerts = h.feed(events)
    assert [a.kind for a in alerts] == ["brute_force", "compromise_suspected"]


def test_compromise_suspected_works_with_brute_force_disabled() -> None:
    h = Harness("compromise_suspected", params={"compromise_suspected": {"threshold": 3}})
    for i in range(3):
        fail(h, T0 + i)
    assert h.of("brute_force") == []
    assert len(ok(h, T0 + 60)) == 1


def test_compromise_suspected_without_brute_force_no_alert() -> None:
    h = _auth_pair()
    for i in range(4):
        fail(h, T0 + i)
    assert ok(h, T0 + 10) == []


# -- unusual_login --------------------------------------------------------------------------

DAY = 86400.0


def test_unusual_login_fires_for_a_new_network_after_three_successes() -> None:
    h = Harness("unusual_login")
    for i in range(3):
        ok(h, T0 + i * DAY, user="carol", ip=f"10.1.2.{i + 1}")
    assert ok(h, T0 + 3 * DAY, user="carol", ip="10.1.2.200") == []  # same /24
    [alert] = ok(h, T0 + 4 * DAY, user="carol", ip="198.51.100.7")
    assert alert.severity == "medium"
    assert alert.evidence["new_network"] == "198.51.100.0/24"
    assert alert.evidence["earlier_successes"] == 4
    assert ok(h, T0 + 4 * DAY + 60, user="carol", ip="198.51.100.8") == []  # seen now


def test_unusual_login_needs_three_earlier_successes() -> None:
    h = Harness("unusual_login")
    for i in range(2):
        ok(h, T0 + i, user="dave", ip="10.0.0.1")
    assert ok(h, T0 + 10, user="dave", ip="192.0.2.1") == []


def test_unusual_login_new_country_fires_only_with_a_country_history() -> None:
    h = Harness("unusual_login")
    for i in range(3):
        ok(h, T0 + i, user="erin", ip="10.0.0.1")  # no country field
    assert ok(h, T0 + 10, user="erin", ip="10.0.0.2", country="US") == []
    for i in range(3):
        ok(h, T0 + 20 + i, user="frank", ip="10.0.0.1", country="US")
    [alert] = ok(h, T0 + 30, user="frank", ip="10.0.0.3", country="de")
    assert alert.evidence["new_country"] == "DE" and alert.evidence["new_network"] is None


def test_unusual_login_forgets_networks_after_30_days() -> None:
    def history() -> Harness:
        h = Harness("unusual_login")
        for i in range(3):
            ok(h, T0 + i * DAY, user="gina", ip="10.9.9.1")  # days 0-2: network A
        for i in range(3):
            ok(h, T0 + (25 + i) * DAY, user="gina", ip="10.8.8.1")  # days 25-27: network B
        return h

    within = history()
    assert ok(within, T0 + 31 * DAY, user="gina", ip="10.9.9.2") == []  # A seen 29 days ago
    beyond = history()
    [alert] = ok(beyond, T0 + 33 * DAY, user="gina", ip="10.9.9.2")  # A seen 31 days ago
    assert alert.evidence["new_network"] == "10.9.9.0/24"
    assert alert.evidence["earlier_successes"] == 3  # A's successes were forgotten


def test_unusual_login_ipv6_by_48_and_restore() -> None:
    h = Harness("unusual_login")
    for i in range(3):
        ok(h, T0 + i, user="hal", ip=f"2001:db8:aa:{i}::1")
    snap = orjson.loads(orjson.dumps(h.engine.snapshot()))
    h2 = Harness("unusual_login")
    h2.engine.restore(snap)
    assert ok(h2, T0 + 10, user="hal", ip="2001:db8:aa:ffff::9") == []
    assert len(ok(h2, T0 + 11, user="hal", ip="2001:db8:bb::1")) == 1
