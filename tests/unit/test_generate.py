"""The traffic generator: deterministic, realistic, and exact about the incidents it injects.

The expected counts are checked by replaying the generated records through the real decoder
and detector engine (no mocks): a count that the detectors do not reproduce is a bug in the
generator's bookkeeping or in a detector, and the benchmarks would report it as a failure.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from streamproc.contracts import get_contract
from streamproc.decode import RecordDecoder
from streamproc.detectors import REGISTRY, DetectorEngine, detectors_for_family
from streamproc.events import Event
from streamproc.traffic import (
    DEFAULT_END,
    FAMILIES,
    KINDS_BY_FAMILY,
    Traffic,
    count_alerts,
    generate,
    generate_bytes,
    render_readme,
    sample_traffic,
)
from tests.paths import REPO

TOPICS = REPO / "topics"


def replay(traffic: Traffic, kinds: set[str] | None = None) -> tuple[list[Any], int]:
    """Decode every record and run the family's registered detectors; (alerts, dead)."""
    alerts: list[Any] = []
    dead = 0
    for family, records in traffic.records.items():
        detectors = [
            cls()
            for kind, cls in REGISTRY.items()
            if cls.family == family and (kinds is None or kind in kinds)
        ]
        if not detectors:
            continue
        decoder = RecordDecoder(get_contract(family))
        engine = DetectorEngine(detectors)
        events = []
        for i, rec in enumerate(records):
            out = decoder.decode(orjson.dumps(rec), family, 0, i)
            if isinstance(out, Event):
                events.append(out)
            else:
                dead += 1
        for i in range(0, len(events), 1000):
            batch_alerts, rejected = engine.process(events[i : i + 1000])
            assert not rejected, "the generator emits each family in event-time order"
            alerts.extend(batch_alerts)
        alerts.extend(engine.finish())
    return alerts, dead


def registered(expected: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in expected.items() if k in REGISTRY}


def test_same_seed_gives_byte_identical_traffic() -> None:
    a, _ = generate_bytes("mixed", 5000, seed=11)
    b, _ = generate_bytes("mixed", 5000, seed=11)
    assert a == b


def test_another_seed_gives_other_traffic() -> None:
    a, _ = generate_bytes("auth", 3000, seed=1)
    b, _ = generate_bytes("auth", 3000, seed=2)
    assert a != b


def test_mixed_scenario_covers_all_six_families_in_event_time_order() -> None:
    traffic = generate("mixed", 20_000, seed=3)
    assert set(traffic.records) == set(FAMILIES)
    for family in FAMILIES:
        times = traffic.times[family]
        assert times == sorted(times)
        assert len(times) == len(traffic.records[family])
    merged = traffic.merged()
    assert len(merged) == len(traffic)
    stamps = [rec["timestamp"] for _, rec in merged]  # ISO 8601 Z strings sort by time
    assert stamps == sorted(stamps)
    assert 19_000 <= len(traffic) <= 21_000


def test_every_generated_record_passes_its_contract() -> None:
    traffic = generate("mixed", 20_000, seed=4)
    _, dead = replay(traffic, kinds=set())
    for family, records in traffic.records.items():
        decoder = RecordDecoder(get_contract(family))
        bad = [r for r in records if not isinstance(decoder.decode(orjson.dumps(r)), Event)]
        assert bad == [], f"{family}: {bad[:2]}"
    assert dead == 0


def test_users_and_client_ips_are_zipf_skewed() -> None:
    traffic = generate("security", 40_000, seed=5)
    users: dict[str, int] = {}
    for rec in traffic.records["auth-logs"]:
        users[rec["username"]] = users.get(rec["username"], 0) + 1
    counts = sorted(users.values(), reverse=True)
    # the hottest user logs in far more than the median user, as in real directories
    assert counts[0] > 20 * counts[len(counts) // 2]
    ips: dict[str, int] = {}
    for rec in traffic.records["api-access-logs"]:
        ips[rec["ip_address"]] = ips.get(rec["ip_address"], 0) + 1
    top = sorted(ips.values(), reverse=True)
    assert top[0] > 20 * top[len(top) // 2]


def test_load_follows_the_time_of_day() -> None:
    traffic = generate("api", 60_000, seed=6, incidents={"sql_injection": 0, "rate_abuse": 0})
    by_hour = [0] * 24
    for ts in traffic.times["api-access-logs"]:
        by_hour[int(ts % 86400 // 3600)] += 1
    assert max(by_hour) > 3 * min(by_hour)
    assert by_hour.index(max(by_hour)) in range(11, 20)  # afternoon UTC
    assert by_hour.index(min(by_hour)) in range(8)  # night UTC


@pytest.mark.parametrize("seed", [2, 3])
def test_brute_force_count_equals_what_the_detector_finds_in_a_mixed_stream(seed: int) -> None:
    traffic = generate("mixed", 60_000, seed=seed)
    alerts, dead = replay(traffic, kinds={"brute_force"})
    assert dead == 0
    assert traffic.expected["brute_force"] >= 3
    assert count_alerts(alerts).get("brute_force", 0) == traffic.expected["brute_force"]


def test_every_registered_detector_finds_exactly_the_expected_incidents() -> None:
    traffic = generate("mixed", 100_000, seed=1)
    alerts, dead = replay(traffic)
    assert dead == 0
    got = count_alerts(alerts)
    want = registered(traffic.expected)
    assert {k: got.get(k, 0) for k in want} == want
    resolved = count_alerts(alerts, "resolved")
    assert {k: resolved.get(k, 0) for k in traffic.resolved if k in REGISTRY} == {
        k: v for k, v in traffic.resolved.items() if k in REGISTRY
    }


def test_dense_background_logins_never_look_like_an_attack() -> None:
    # 40,000 logins in two hours with no injected incident: failed logins are frequent, yet
    # no (user, ip) reaches 5 failures in an hour and no IP fails for 20 users in 10 min.
    none = {
        "brute_force": 0,
        "compromise": 0,
        "password_spray": 0,
        "distributed_brute_force": 0,
        "unusual_login": 0,
    }
    traffic = generate("auth", 40_000, seed=9, duration=7200.0, incidents=none)
    assert sum(1 for r in traffic.records["auth-logs"] if not r["success"]) > 300
    alerts, _ = replay(traffic, kinds={"brute_force", "password_spray", "distributed_brute_force"})
    assert alerts == []
    assert traffic.expected["brute_force"] == 0


def test_incident_counts_can_be_set_exactly() -> None:
    traffic = generate(
        "auth",
        10_000,
        seed=12,
        incidents={
            "brute_force": 3,
            "compromise": 0,
            "password_spray": 0,
            "distributed_brute_force": 0,
            "unusual_login": 0,
        },
    )
    assert traffic.expected["brute_force"] == 3
    alerts, _ = replay(traffic, kinds={"brute_force"})
    assert count_alerts(alerts) == {"brute_force": 3}


def test_each_family_counts_every_built_in_detector_of_that_family() -> None:
    for family in FAMILIES:
        built_in = {
            cls.kind
            for cls in detectors_for_family(family)
            if cls.__module__.startswith("streamproc.detectors.")
        }
        assert set(KINDS_BY_FAMILY[family]) == built_in, family


_AUTH_INCIDENTS = {
    "brute_force": 4,
    "compromise": 2,
    "password_spray": 3,
    "distributed_brute_force": 3,
    "unusual_login": 3,
}


@pytest.mark.parametrize(
    ("kind", "params", "scenario", "n", "incidents"),
    [
        ("brute_force", {"threshold": 8}, "auth", 10_000, _AUTH_INCIDENTS),
        ("password_spray", {"threshold": 30}, "auth", 10_000, _AUTH_INCIDENTS),
        (
            "distributed_brute_force",
            {"threshold": 19, "network_threshold": 0},
            "auth",
            10_000,
            _AUTH_INCIDENTS,
        ),
        ("unusual_login", {"min_history": 6}, "auth", 10_000, _AUTH_INCIDENTS),
        ("rate_abuse", {"threshold": 900}, "api", 60_000, None),
        ("metric_threshold", {"cpu_warning": 70.0}, "hosts", 20_000, None),
        ("host_silent", {"factor": 10.0}, "hosts", 20_000, None),
        ("sla_breach", {"sla_high_hours": 8.0}, "tickets", 3000, None),
        ("revenue_target_missed", {"warning_ratio": 0.7}, "business", 200, None),
        ("metric_below", {"session_duration": 400.0}, "business", 200, None),
    ],
)
def test_expected_counts_follow_a_changed_detector_default(
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    params: dict[str, float],
    scenario: str,
    n: int,
    incidents: dict[str, int] | None,
) -> None:
    # The generator reads thresholds and windows from the detectors' defaults when it runs:
    # with another default, the detectors (built with that default) still find exactly the
    # expected alerts.
    for name, value in params.items():
        monkeypatch.setitem(REGISTRY[kind].defaults, name, value)
    traffic = generate(scenario, n, seed=21, incidents=incidents)
    assert traffic.expected[kind] > 0
    alerts, dead = replay(traffic)
    assert dead == 0
    got = count_alerts(alerts)
    want = registered(traffic.expected)
    assert {k: got.get(k, 0) for k in want} == want
    resolved = count_alerts(alerts, "resolved")
    assert {k: resolved.get(k, 0) for k in traffic.resolved} == traffic.resolved


@pytest.mark.parametrize("fmt", ["epoch_s", "epoch_ms", "iso_ms"])
def test_timestamps_can_be_epoch_seconds_milliseconds_or_iso(fmt: str) -> None:
    iso = generate("hosts", 2000, seed=8)
    other = generate("hosts", 2000, seed=8, ts_format=fmt)
    first = other.records["host-metrics"][0]["timestamp"]
    if fmt == "epoch_ms":
        assert isinstance(first, int) and first > 10**12
    elif fmt == "epoch_s":
        assert isinstance(first, float) and first < 10**11
    else:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first)
    decoder = RecordDecoder(get_contract("host-metrics"))
    for a, b in zip(
        iso.records["host-metrics"][:50], other.records["host-metrics"][:50], strict=True
    ):
        ta = decoder.decode(orjson.dumps(a)).ts  # type: ignore[union-attr]
        tb = decoder.decode(orjson.dumps(b)).ts  # type: ignore[union-attr]
        assert abs(ta - tb) < 1.0


def test_traffic_ends_at_the_fixed_date_by_default_and_moves_with_start_ts() -> None:
    traffic = generate("auth", 2000, seed=1)
    assert traffic.end_ts == DEFAULT_END
    assert max(traffic.times["auth-logs"]) <= DEFAULT_END
    later = generate("auth", 2000, seed=1, start_ts=DEFAULT_END, duration=3600.0)
    assert min(later.times["auth-logs"]) >= DEFAULT_END
    assert max(later.times["auth-logs"]) <= DEFAULT_END + 3600.0


def test_unknown_scenario_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        generate("nope", 10)


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_stream_in_topics_is_what_the_generator_makes(family: str) -> None:
    traffic = sample_traffic(family)
    expected = b"".join(orjson.dumps(r) + b"\n" for r in traffic.records[family])
    assert (TOPICS / f"{family}.jsonl").read_bytes() == expected, (
        "regenerate with: python -m streamproc.traffic topics/"
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_stream_raises_exactly_the_documented_alerts(family: str) -> None:
    traffic = sample_traffic(family)
    alerts, dead = replay(traffic)
    assert dead == 0
    got = count_alerts(alerts)
    want = registered(traffic.expected)
    assert {k: got.get(k, 0) for k in want} == want


def test_auth_sample_has_exactly_three_brute_force_incidents_as_documented() -> None:
    # The README's demo shows these; the number must not drift.
    traffic = sample_traffic("auth-logs")
    assert traffic.expected["brute_force"] == 3
    alerts, _ = replay(traffic, kinds={"brute_force"})
    assert count_alerts(alerts) == {"brute_force": 3}
    readme = (TOPICS / "README.md").read_text()
    assert "brute_force 3" in readme


def test_topics_readme_is_up_to_date() -> None:
    samples = {f: sample_traffic(f) for f in FAMILIES}
    assert (TOPICS / "README.md").read_text() == render_readme(samples), (
        "regenerate with: python -m streamproc.traffic topics/"
    )
