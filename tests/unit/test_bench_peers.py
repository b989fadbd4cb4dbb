"""The peers benchmark checks alerts against a set it computes from the data it generated.
These tests pin that reference to brute_force's documented rule (5 failures of one
username + ip_address within an hour, both edges inclusive, then quiet for an hour; the
incident starts at the first failure in the window), pin the workload's shape, and check that
both contestants' rules (streamproc's detector through ``streamproc replay``, and the
Bytewax step) agree with it on a generated stream.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import orjson
from streamproc.bench.peers import brute_force_only
from streamproc.bench.peers_clients import brute_force_step
from streamproc.bench.peers_workload import (
    PARTITIONS,
    WINDOW_MS,
    AuthEvent,
    expected_alerts,
    generate_peers,
)

from streamproc.commands.cli import main as cli

T0 = 1_772_000_000_000  # ms
MIN = 60_000


def failures(user: str, ip: str, *times: int) -> list[AuthEvent]:
    return [AuthEvent(t, user, ip, False, "curl/8.5.0", "RU", "ssh") for t in times]


def test_fifth_failure_exactly_one_hour_after_the_first_fires() -> None:
    events = failures(
        "alice", "203.0.113.9", T0, T0 + 15 * MIN, T0 + 30 * MIN, T0 + 45 * MIN, T0 + WINDOW_MS
    )
    assert expected_alerts(events) == {("alice", "203.0.113.9", T0, T0 + WINDOW_MS)}


def test_fifth_failure_one_millisecond_past_the_hour_does_not_fire() -> None:
    events = failures(
        "alice", "203.0.113.9", T0, T0 + 15 * MIN, T0 + 30 * MIN, T0 + 45 * MIN, T0 + WINDOW_MS + 1
    )
    assert expected_alerts(events) == set()


def test_four_failures_and_successes_in_between_do_not_fire() -> None:
    events = failures("bob", "198.51.100.7", T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN)
    events[2:2] = [AuthEvent(T0 + 90_000, "bob", "198.51.100.7", True, "ua", "DE", "sso")] * 3
    assert expected_alerts(events) == set()


def test_the_key_is_username_and_ip_address_together() -> None:
    one_user = [e for i in range(5) for e in failures("carol", f"198.51.100.{i}", T0 + i * MIN)]
    one_ip = [e for i in range(5) for e in failures(f"user{i}", "198.51.100.1", T0 + i * MIN)]
    assert expected_alerts(one_user) == set()
    assert expected_alerts(one_ip) == set()


def test_an_attack_that_goes_on_fires_once_per_realert_period() -> None:
    # a failure every 10 minutes for 3 hours: 5th at 40 min; quiet until 100 min, when the
    # window [40, 100] holds 7; quiet until 160 min
    events = failures("dave", "192.0.2.5", *(T0 + i * 10 * MIN for i in range(19)))
    assert sorted(expected_alerts(events)) == [
        ("dave", "192.0.2.5", T0, T0 + 40 * MIN),
        ("dave", "192.0.2.5", T0 + 40 * MIN, T0 + 100 * MIN),
        ("dave", "192.0.2.5", T0 + 100 * MIN, T0 + 160 * MIN),
    ]


def test_workload_is_one_day_of_auth_events_keyed_by_user_with_2_percent_failures() -> None:
    w = generate_peers(20_000, seed=3)
    assert len(w) == 20_000
    assert [e.ts_ms for e in w.events] == sorted(e.ts_ms for e in w.events)
    assert w.events[-1].ts_ms - w.events[0].ts_ms <= 86_400_000
    assert 0.015 <= w.failures / len(w) <= 0.03
    encoded = w.encoded()
    assert 190 <= statistics.mean(len(v) for _, v in encoded) <= 240
    for (key, value), event in zip(encoded[:100], w.events[:100], strict=True):
        record = orjson.loads(value)
        assert key == record["username"].encode() == event.username.encode()
        assert set(record) == {
            "timestamp",
            "username",
            "ip_address",
            "success",
            "user_agent",
            "country",
            "service",
        }
    assert PARTITIONS == 4


def test_every_attack_pattern_fires_as_designed() -> None:
    w = generate_peers(20_000, seed=3)
    fired = Counter((user, ip) for user, ip, _, _ in w.expected)
    assert all(
        w.attacks[p]
        for p in (
            "burst",
            "persistent",
            "near_miss",
            "slow_inside",
            "slow_outside",
            "campaign",
            "campaign_short",
        )
    )
    for pattern in ("burst", "slow_inside", "campaign"):
        assert [fired[k] for k in w.attacks[pattern]] == [1] * len(w.attacks[pattern]), pattern
    assert all(fired[k] >= 2 for k in w.attacks["persistent"])
    for pattern in ("near_miss", "slow_outside", "campaign_short"):
        assert [fired[k] for k in w.attacks[pattern]] == [0] * len(w.attacks[pattern]), pattern


def test_streamproc_replay_raises_exactly_the_expected_alerts(tmp_path: Path) -> None:
    w = generate_peers(20_000, seed=5)
    data = tmp_path / "auth.jsonl"
    data.write_bytes(b"".join(v + b"\n" for _, v in w.encoded()))
    config = tmp_path / "streamproc.yaml"
    config.write_text(orjson.dumps({"detectors": brute_force_only()}).decode())
    out = tmp_path / "alerts.jsonl"
    assert (
        cli(["replay", "-c", str(config), "--input", f"auth-logs={data}", "--alerts-out", str(out)])
        == 0
    )
    got = set()
    for line in out.read_bytes().splitlines():
        alert = orjson.loads(line)
        assert alert["kind"] == "brute_force"
        got.add(
            (
                alert["labels"]["username"],
                alert["labels"]["ip_address"],
                round(alert["evidence"]["first_seen"] * 1000),
                round(alert["evidence"]["last_seen"] * 1000),
            )
        )
    assert len(w.expected) >= 5
    assert got == w.expected


def test_the_bytewax_step_raises_exactly_the_expected_alerts() -> None:
    w = generate_peers(20_000, seed=5)
    states: dict[tuple[str, str], object] = {}
    got = set()
    for line in (orjson.loads(v) for _, v in w.encoded()):
        if line["success"]:
            continue
        key = (line["username"], line["ip_address"])
        states[key], alert = brute_force_step(states.get(key), line)
        if alert is not None:
            got.add((alert["username"], alert["ip_address"], alert["first_ms"], alert["fired_ms"]))
    assert got == w.expected
