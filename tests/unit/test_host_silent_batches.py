"""host_silent judges a batch a host at a time (each host reports many times a batch); the
reference is the same detector judging it record by record (``by_host = False``). The two are
fed the same batches of a generated stream, with the watermark moved between batches as the
engine moves it, and must return the same alerts in the same order and leave the same state:
hosts in the same recency order, the same timers armed in the same order, the same deadlines
and last sources. Parameters are small so that hosts are watched, go silent within a batch
or on the watermark, report again, go offline by their agent's Last Will and are forgotten
or evicted within a few hundred records; times are mostly in order, some repeated, some out
of order. Some scenarios start from a snapshot taken under other parameters, so that a host's
deadline is not what these parameters would compute.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.detectors.base import DetectorContext, load_detector_class
from streamproc.detectors.columns import EventBatch
from streamproc.detectors.host_silent import HostSilent
from streamproc.events import Event
from tests.streams import split_at

T0 = 1_767_225_600.0


def _detector(params: dict[str, Any], key_cap: int, by_host: bool) -> HostSilent:
    detector = load_detector_class("host_silent")(dict(params), DetectorContext(key_cap=key_cap))
    assert isinstance(detector, HostSilent)
    detector.by_host = by_host
    detector.samples_a_host = 0.0  # a host at a time, however few its records
    return detector


def _state(detector: HostSilent) -> Any:
    """Everything a later batch or a snapshot can see, hosts and timers in their order."""
    return detector.snapshot(), detector.state.keys(), detector.timers.snapshot()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    params = {
        "factor": draw(st.sampled_from([1.0, 1.5, 3.0])),
        "min_silence": draw(st.sampled_from([0.0, 2.0, 5.0, 20.0])),
        "min_samples": draw(st.integers(2, 4)),
        "forget_after": draw(st.sampled_from([30.0, 1000.0])),
    }
    n_hosts = draw(st.integers(1, 5))
    # 0: hosts in lockstep (equal deadlines); just over a minimum silence; long silences
    steps = st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 2.5, 3.0, 5.5, 7.0, 25.0])
    back = st.sampled_from([0.0] * 12 + [0.5, 3.0, 10.0])
    status = st.sampled_from([None] * 20 + ["offline", "offline", "online"])
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, n_hosts - 1), steps, back, status), min_size=5, max_size=250
        )
    )
    now, records = T0, []
    for host, step, late, agent in rows:
        now += step
        records.append((f"web-{host}", now - late, agent))
    cuts = sorted(draw(st.lists(st.integers(1, len(records)), max_size=8)))
    before = None
    if draw(st.booleans()):  # a prefix judged under other parameters, restored into both
        other = {**params, "factor": params["factor"] + 1.0, "min_silence": 11.0}
        before = (other, draw(st.integers(0, len(records))))
    return {
        "params": params,
        # a cap below the number of hosts evicts (the batch is then judged record by record)
        "key_cap": draw(st.one_of(st.integers(1, n_hosts + 1), st.just(100))),
        "lateness": draw(st.sampled_from([0.0, 5.0, 50.0])),
        "records": records,
        "batches": [c for c in cuts if c < len(records)] + [len(records)],
        "before": before,
        "idle_until": draw(st.sampled_from([None, 30.0, 2000.0])),
    }


def _events(records: list[tuple[str, float, str | None]], start: int = 0) -> list[Event]:
    out = []
    for offset, (host, ts, agent) in enumerate(records, start):
        data: dict[str, Any] = {"host": host, "cpu_percent": 10.0, "timestamp": ts}
        if agent is not None:
            data["agent_status"] = agent
            data["agent_reason"] = "will"
        out.append(Event("host-metrics", ts, data, "host-metrics", offset % 3, offset))
    return out


def _batches(events: list[Event], ends: list[int]) -> list[list[Event]]:
    return split_at(events, ends)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_hosts_judged_at_once_leave_what_record_by_record_leaves(scenario: dict[str, Any]) -> None:
    _judge_both(scenario)


@st.composite
def rhythms(draw: st.DrawFn) -> dict[str, Any]:
    """Hosts whose rhythm changes within a batch: steady, then faster (the interval falls
    below the gaps a batch started with), then a pause past the new deadline but within
    the old; factors and minimum silences include negative ones."""
    params = {
        "factor": draw(st.sampled_from([-1.0, 0.5, 1.0, 3.0])),
        "min_silence": draw(st.sampled_from([-5.0, 0.0, 1.0, 4.0])),
        "min_samples": draw(st.integers(2, 3)),
        "forget_after": 1000.0,
    }
    n_hosts = draw(st.integers(1, 3))
    timed = []
    for host in range(n_hosts):
        now = T0 + draw(st.sampled_from([0.0, 0.5, 3.0]))
        segments = draw(
            st.lists(
                st.tuples(st.sampled_from([1.0, 2.0, 5.0, 10.0, 30.0]), st.integers(1, 8)),
                min_size=1,
                max_size=6,
            )
        )
        for gap, n in segments:
            for _ in range(n):
                now += gap
                timed.append((now, host))
    timed.sort()  # hosts interleaved in time order (ties: the lower host first)
    records = [(f"web-{host}", ts, None) for ts, host in timed]
    cuts = sorted(draw(st.lists(st.integers(1, len(records)), max_size=2)))
    return {
        "params": params,
        "key_cap": 100,
        "lateness": draw(st.sampled_from([0.0, 50.0])),
        "records": records,
        "batches": [c for c in cuts if c < len(records)] + [len(records)],
        "before": None,
        "idle_until": None,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=rhythms())
def test_a_rhythm_that_changes_within_a_batch_is_judged_as_record_by_record(
    scenario: dict[str, Any],
) -> None:
    _judge_both(scenario)


def _judge_both(scenario: dict[str, Any]) -> None:
    """The scenario's batches and watermarks, by host and record by record: the same
    alerts, in the same order, and the same state after each step."""
    params, key_cap = scenario["params"], scenario["key_cap"]
    reference = _detector(params, key_cap, by_host=False)
    by_host = _detector(params, key_cap, by_host=True)
    records = scenario["records"]
    if scenario["before"] is not None:
        other, n = scenario["before"]
        earlier = _detector(other, 100, by_host=False)
        earlier.judge_batch(EventBatch(_events(records[:n], start=-n)))
        for detector in (reference, by_host):
            detector.restore(earlier.snapshot())
    newest = float("-inf")
    for events in _batches(_events(records), scenario["batches"]):
        expected = [a.to_dict() for a in reference.judge_batch(EventBatch(events))]
        assert [a.to_dict() for a in by_host.judge_batch(EventBatch(events))] == expected
        assert _state(by_host) == _state(reference)
        newest = max(newest, *(e.ts for e in events))
        watermark = newest - scenario["lateness"]
        expected = [a.to_dict() for a in reference.on_watermark(watermark)]
        assert [a.to_dict() for a in by_host.on_watermark(watermark)] == expected
        assert _state(by_host) == _state(reference)
    if scenario["idle_until"] is not None:  # an idle stream: hosts go silent, then are forgotten
        for watermark in (newest + scenario["idle_until"], newest + 2 * scenario["idle_until"]):
            expected = [a.to_dict() for a in reference.on_watermark(watermark)]
            assert [a.to_dict() for a in by_host.on_watermark(watermark)] == expected
            assert _state(by_host) == _state(reference)


def test_a_silence_within_a_batch_and_its_end_come_in_record_order() -> None:
    """Two hosts interleaved in one batch, each silent past its deadline between two of its
    samples: the firing and resolved alerts of each come where its late sample is, in
    record order, as record by record."""
    params = {"min_silence": 5.0, "factor": 1.0}
    records: list[tuple[str, float, str | None]] = [
        ("a", T0, None),
        ("b", T0, None),
        ("a", T0 + 1, None),
        ("b", T0 + 1, None),
        ("b", T0 + 20, None),  # b: silent from T0 + 6
        ("a", T0 + 30, None),  # a: silent from T0 + 6
        ("b", T0 + 21, None),
    ]
    events = _events(records)
    reference = _detector(params, 100, by_host=False)
    by_host = _detector(params, 100, by_host=True)
    expected = [a.to_dict() for a in reference.judge_batch(EventBatch(events))]
    got = [a.to_dict() for a in by_host.judge_batch(EventBatch(events))]
    assert [(a["key"]["host"], a["status"]) for a in expected] == [
        ("b", "firing"),
        ("b", "resolved"),
        ("a", "firing"),
        ("a", "resolved"),
    ]
    assert got == expected
    assert expected[0]["source"]["offset"] == 3  # the sample before the silence
    assert _state(by_host) == _state(reference)
    assert by_host.state.keys() == ["a", "b"]


def test_a_sample_just_past_the_minimum_silence_fires_within_the_batch() -> None:
    """A deadline is computed where it is read: a sample 5.5 s after the last, with a
    minimum silence of 5 s and a 1 s interval, is past it."""
    params = {"min_silence": 5.0, "factor": 1.0}
    records: list[tuple[str, float, str | None]] = [
        ("a", T0, None),
        ("a", T0 + 1, None),
        ("a", T0 + 2, None),
        ("a", T0 + 7.5, None),
    ]
    events = _events(records)
    reference = _detector(params, 100, by_host=False)
    by_host = _detector(params, 100, by_host=True)
    expected = [a.to_dict() for a in reference.judge_batch(EventBatch(events))]
    assert [(a["status"], a["event_time"]) for a in expected] == [
        ("firing", T0 + 7),
        ("resolved", T0 + 7.5),
    ]
    assert [a.to_dict() for a in by_host.judge_batch(EventBatch(events))] == expected
    assert _state(by_host) == _state(reference)


def test_hosts_watched_in_one_batch_have_their_timers_in_record_order() -> None:
    """a reports first, b is watched first: with equal deadlines, b's timer comes first,
    and so does its alert when the watermark passes both."""
    records: list[tuple[str, float, str | None]] = [
        ("a", T0, None),
        ("b", T0, None),
        ("b", T0 + 10, None),
        ("a", T0 + 10, None),
    ]
    events = _events(records)
    reference = _detector({}, 100, by_host=False)
    by_host = _detector({}, 100, by_host=True)
    assert by_host.judge_batch(EventBatch(events)) == reference.judge_batch(EventBatch(events))
    assert [host for _, host in by_host.timers.snapshot()] == ["b", "a"]
    assert _state(by_host) == _state(reference)
    expected = [a.to_dict() for a in reference.on_watermark(T0 + 1000)]
    assert [a["key"]["host"] for a in expected] == ["b", "a"]
    assert [a.to_dict() for a in by_host.on_watermark(T0 + 1000)] == expected
