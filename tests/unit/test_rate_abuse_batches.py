"""rate_abuse judges a key with many records in a batch at once (one update of its window,
numpy for the count each record saw); a key with few records, record by record. The first
must leave exactly what the second leaves: the reference here is the same detector with
every key judged record by record (``heavy_key_records`` above any batch), and the two are
fed the same batches of a generated stream, with the watermark moved between batches as the
engine moves it. Parameters are small so that keys fire, cool down, resolve, fire again and
are evicted within a few hundred records; times are mostly in order, some out of order or
late, and often exactly a window apart (both window edges are inclusive).
"""

from __future__ import annotations

import math
import random
from array import array
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.detectors.base import DetectorContext, load_detector_class
from streamproc.detectors.columns import EventBatch
from streamproc.detectors.rate_abuse import RateAbuse
from streamproc.events import Event
from tests.streams import split_at

T0 = 1_767_225_600.0
RECORD_BY_RECORD = 1 << 60


def _detector(params: dict[str, Any], key_cap: int, heavy_key_records: int) -> RateAbuse:
    detector = load_detector_class("rate_abuse")(dict(params), DetectorContext(key_cap=key_cap))
    assert isinstance(detector, RateAbuse)
    detector.heavy_key_records = heavy_key_records
    return detector


def _state(detector: RateAbuse) -> Any:
    """Everything a later batch or a snapshot can see: ``snapshot()`` (key and incident
    order included) and whether each key holds a bare float or a window."""
    kinds = [(ip, type(value) is array) for ip, value in detector.state.items()]
    return detector.snapshot(), kinds, detector.evaluations, detector.state.evictions


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    window = draw(st.sampled_from([5.0, 10.0, 30.0, 60.0]))
    params = {
        "threshold": draw(st.integers(2, 8)),
        "window": window,
        "samples": draw(st.integers(0, 5)),  # at times over the threshold: each record is judged
        # longer than the window: an incident can resolve and its key be over again while
        # it cools down, with the window at its cap by the time it may fire again
        "realert": draw(st.sampled_from([0.0, 0.5, 4.0, 3 * window])),
    }
    n_keys = draw(st.integers(1, 5))
    steps = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 1.0, 2.0, window / 4, window])
    # records in order, or mostly: some a little out of order, some older than their window
    in_order = [0.0] * draw(st.sampled_from([1, 10, 50, 1000]))
    back = st.sampled_from(in_order + [0.25, 1.0, window / 2, window, 2 * window])
    rows = draw(
        st.lists(st.tuples(st.integers(0, n_keys - 1), steps, back), min_size=10, max_size=300)
    )
    now, records = T0, []
    for key, step, late in rows:
        now += step
        records.append((f"198.51.100.{key}", now - late))
    cuts = sorted(draw(st.lists(st.integers(1, len(records)), max_size=8)))
    return {
        "params": params,
        # a cap below the number of keys evicts
        "key_cap": draw(st.one_of(st.integers(2, n_keys + 1), st.just(100))),
        "heavy_key_records": draw(st.integers(1, 3)),
        "lateness": draw(st.sampled_from([0.0, window / 2, 2 * window])),
        "records": records,
        "batches": [c for c in cuts if c < len(records)] + [len(records)],
        "idle_until": draw(st.sampled_from([None, 3 * window, 1000.0])),
    }


def _batches(records: list[tuple[str, float]], ends: list[int]) -> list[list[Event]]:
    events = [
        Event(
            "api-access-logs",
            ts,
            {
                "ip_address": ip,
                "method": "GET" if offset % 3 else "POST",
                "endpoint": f"/api/items/{offset % 7}",
                "status_code": 200 + offset % 5,
                "timestamp": ts,
            },
            "api-access-logs",
            0,
            offset,
        )
        for offset, (ip, ts) in enumerate(records)
    ]
    return split_at(events, ends)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_keys_judged_at_once_leave_what_record_by_record_leaves(scenario: dict[str, Any]) -> None:
    params, key_cap = scenario["params"], scenario["key_cap"]
    reference = _detector(params, key_cap, RECORD_BY_RECORD)
    at_once = _detector(params, key_cap, scenario["heavy_key_records"])
    newest = float("-inf")
    for events in _batches(scenario["records"], scenario["batches"]):
        expected = [a.to_dict() for a in reference.judge_batch(EventBatch(events))]
        got = [a.to_dict() for a in at_once.judge_batch(EventBatch(events))]
        assert got == expected
        assert _state(at_once) == _state(reference)
        newest = max(newest, *(e.ts for e in events))
        watermark = newest - scenario["lateness"]
        expected = [a.to_dict() for a in reference.on_watermark(watermark)]
        assert [a.to_dict() for a in at_once.on_watermark(watermark)] == expected
        assert _state(at_once) == _state(reference)
    if scenario["idle_until"] is not None:  # an idle stream: incidents resolve, keys go
        watermark = newest + scenario["idle_until"]
        expected = [a.to_dict() for a in reference.on_watermark(watermark)]
        assert [a.to_dict() for a in at_once.on_watermark(watermark)] == expected
        assert _state(at_once) == _state(reference)


def test_a_heavy_key_at_its_cap_fires_once_with_the_samples_of_its_last_records() -> None:
    """The bench's shape in small: one address far over the threshold within one batch, its
    window trimmed to the cap; the alert is the one record by record raises."""
    params = {"threshold": 5, "window": 60.0, "samples": 3}
    records = [("203.0.113.9", T0 + i * 0.5) for i in range(40)]
    records[10:10] = [("192.0.2.1", T0 + 5.0)]
    [events] = _batches(records, [len(records)])
    reference = _detector(params, 100, RECORD_BY_RECORD)
    at_once = _detector(params, 100, 16)
    expected = [a.to_dict() for a in reference.judge_batch(EventBatch(events))]
    got = [a.to_dict() for a in at_once.judge_batch(EventBatch(events))]
    assert got == expected and len(got) == 1
    assert got[0]["evidence"]["requests"] == 6 and len(got[0]["evidence"]["samples"]) == 3
    assert _state(at_once) == _state(reference)
    assert len(at_once.snapshot()["ips"][-1][1]) == at_once.cap


def test_a_key_over_its_cap_in_the_cooldown_fires_when_the_cooldown_ends() -> None:
    """An incident resolves; the address is over the threshold again before ``realert`` has
    passed, its window grows to the cap, and the new incident fires at the first request at
    or after the end of the cooldown, with the count the capped window holds."""
    params = {"threshold": 2, "window": 5.0, "samples": 1, "realert": 15.0}
    ip = "203.0.113.9"
    first = [(ip, T0), (ip, T0 + 0.5), (ip, T0 + 1.0)]
    again = [(ip, T0 + 6.0 + i * 0.5) for i in range(25)]  # T0+6 .. T0+18
    batches = _batches(first + again, [len(first), len(first) + len(again)])
    reference = _detector(params, 100, RECORD_BY_RECORD)
    at_once = _detector(params, 100, 16)
    alerts: list[list[dict[str, Any]]] = [[], []]
    for watermark, events in zip([T0 + 7.0, T0 + 100.0], batches, strict=True):
        for detector, out in zip([reference, at_once], alerts, strict=True):
            out.extend(a.to_dict() for a in detector.judge_batch(EventBatch(events)))
            out.extend(a.to_dict() for a in detector.on_watermark(watermark))
        assert _state(at_once) == _state(reference)
    assert alerts[1] == alerts[0]
    refired = [a for a in alerts[0] if a["status"] == "firing"][1]
    assert refired["event_time"] == T0 + 16.0
    assert refired["evidence"]["requests"] == reference.cap and refired["evidence"]["at_least"]


def test_alerts_and_incidents_of_a_batch_come_in_the_order_of_their_records() -> None:
    """A heavy key's records are judged together where its last record is: its alert (and
    new incident) must still come before those of records after the one that fired."""
    params = {"threshold": 2, "window": 60.0, "samples": 0}
    a, b, c = "192.0.2.1", "192.0.2.2", "192.0.2.3"
    order = [a, a, a, b, b, b, b, c, c, c, a]  # a fires at 2, b at 5, c (light) at 9
    records = [(ip, T0 + i) for i, ip in enumerate(order)]
    [events] = _batches(records, [len(records)])
    reference = _detector(params, 100, RECORD_BY_RECORD)
    at_once = _detector(params, 100, 4)
    expected = [x.to_dict() for x in reference.judge_batch(EventBatch(events))]
    assert [x["key"]["ip_address"] for x in expected] == [a, b, c]
    assert [x.to_dict() for x in at_once.judge_batch(EventBatch(events))] == expected
    assert list(at_once.incidents) == [a, b, c] and list(at_once.state.keys()) == [b, c, a]
    assert _state(at_once) == _state(reference)


def test_a_nan_time_leaves_what_record_by_record_leaves() -> None:
    """The decoder lets no NaN time through, but a detector may be handed one: judged record
    by record it can sit inside a key's window, unsorted, where bisect and searchsorted part
    ways; from the first one on, every batch is judged record by record. (Without samples:
    a NaN sample has no timestamp to write.)"""
    rng = random.Random(7)
    for _ in range(100):
        params = {"threshold": rng.randint(2, 4), "window": 5.0, "samples": 0}
        now, records = T0, []
        for _ in range(rng.randint(10, 80)):
            now += rng.choice([0.0, 0.5, 1.0, 2.0])
            records.append(
                (f"198.51.100.{rng.randint(0, 2)}", math.nan if rng.random() < 0.05 else now)
            )
        ends = sorted({rng.randint(1, len(records)) for _ in range(3)} | {len(records)})
        reference = _detector(params, 100, RECORD_BY_RECORD)
        at_once = _detector(params, 100, 2)
        for events in _batches(records, ends):
            # repr: NaN is not equal to itself
            expected = repr([a.to_dict() for a in reference.judge_batch(EventBatch(events))])
            assert repr([a.to_dict() for a in at_once.judge_batch(EventBatch(events))]) == expected
            assert repr(_state(at_once)) == repr(_state(reference))
