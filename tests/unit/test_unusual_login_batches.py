"""unusual_login updates a user's one network (and country) seen again without walking the
history; the reference is the same detector walking it for every success
(``common_case = False``). The two are fed the same batches of a generated stream and must
return the same alerts and leave the same state, history order included. The lookback is
short so that entries are forgotten between and within batches; addresses include IPv6,
IPv4-mapped and values that are no address (one that looks like a country tag), countries
are absent, written in other cases or new; times go back now and then.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.detectors.base import DetectorContext, load_detector_class
from streamproc.detectors.columns import EventBatch
from streamproc.detectors.unusual_login import UnusualLogin
from streamproc.events import Event
from tests.streams import split_at

T0 = 1_767_225_600.0
ADDRESSES = [
    "198.51.100.7",
    "198.51.100.9",  # the same /24
    "203.0.113.5",
    "2001:db8::1",
    "::ffff:198.51.100.8",
    "not-an-address",
    "#DE",  # no address: its own network, which reads like a country tag
    "#",  # the shortest such
]
COUNTRIES = [None, None, "DE", "de ", "FR", ""]


def _detector(params: dict[str, Any], key_cap: int, common_case: bool) -> UnusualLogin:
    detector = load_detector_class("unusual_login")(dict(params), DetectorContext(key_cap=key_cap))
    assert isinstance(detector, UnusualLogin)
    detector.common_case = common_case
    return detector


def _state(detector: UnusualLogin) -> Any:
    return detector.snapshot(), detector.evaluations


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    lookback = draw(st.sampled_from([5.0, 20.0, 100.0]))
    params = {
        "lookback": lookback,
        "min_history": draw(st.integers(1, 3)),
        "check_network": draw(st.booleans()),
        "check_country": draw(st.booleans()),
    }
    n_users = draw(st.integers(1, 3))
    # a user's usual address and country most of the time, another now and then
    usual = draw(st.lists(st.sampled_from(range(len(ADDRESSES))), min_size=n_users))
    home = draw(st.lists(st.sampled_from(range(len(COUNTRIES))), min_size=n_users))
    steps = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, lookback / 2, lookback, 2 * lookback])
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_users - 1),
                steps,
                st.sampled_from([0.0] * 8 + [1.0, lookback]),  # back in time
                st.one_of(st.none(), st.sampled_from(range(len(ADDRESSES)))),
                st.one_of(st.none(), st.sampled_from(range(len(COUNTRIES)))),
                st.sampled_from([True, True, True, False]),
            ),
            min_size=5,
            max_size=200,
        )
    )
    now, records = T0, []
    for user, step, back, address, country, success in rows:
        now += step
        records.append(
            (
                f"user{user}",
                now - back,
                ADDRESSES[usual[user] if address is None else address],
                COUNTRIES[home[user] if country is None else country],
                success,
            )
        )
    cuts = sorted(draw(st.lists(st.integers(1, len(records)), max_size=6)))
    return {
        "params": params,
        "key_cap": draw(st.sampled_from([1, 2, 100])),
        "records": records,
        "batches": [c for c in cuts if c < len(records)] + [len(records)],
    }


def _batches(records: list[tuple[Any, ...]], ends: list[int]) -> list[list[Event]]:
    events = []
    for offset, (user, ts, ip, country, success) in enumerate(records):
        data: dict[str, Any] = {"username": user, "ip_address": ip, "success": success}
        if country is not None:
            data["country"] = country
        events.append(Event("auth-logs", ts, data, "auth-logs", 0, offset))
    return split_at(events, ends)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_the_common_case_leaves_what_walking_the_history_leaves(scenario: dict[str, Any]) -> None:
    params, key_cap = scenario["params"], scenario["key_cap"]
    reference = _detector(params, key_cap, common_case=False)
    quick = _detector(params, key_cap, common_case=True)
    newest = float("-inf")
    for events in _batches(scenario["records"], scenario["batches"]):
        expected = [a.to_dict() for a in reference.judge_batch(EventBatch(events))]
        assert [a.to_dict() for a in quick.judge_batch(EventBatch(events))] == expected
        assert _state(quick) == _state(reference)
        newest = max(newest, *(e.ts for e in events))
        assert quick.on_watermark(newest) == reference.on_watermark(newest) == []
        assert _state(quick) == _state(reference)
