"""An alert that ``cap_alert`` lets through without cutting is one the cut leaves as it is.

``_within`` clears most alerts without encoding them (a string of n characters is at most 4n
UTF-8 bytes): whatever it calls within, ``_cut`` must return unchanged, for any alert and any
limits, and ``cap_alert`` must end where the cut does. Given the alert's encoded form (``cap_alert``
encodes it first), the walk bounds the whole by the form's length instead of counting
characters: it must clear exactly what counting clears, at the bound's edge too. Before the
walk, ``cap_alert`` tries ``_short``: an alert whose form is no longer than one value may be has
no string to check; it must clear exactly what its rules say, at each edge, and what it clears
the cut must return equal, containers of the same type.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamproc.alerts import (
    _MAX_DEPTH,
    _MAX_FINGERPRINT,
    _MAX_PATH,
    _MAX_TRUNCATED,
    _NESTED,
    _SCALARS,
    Alert,
    AlertLimits,
    _cut,
    _encoded_form,
    _short,
    _within,
    cap_alert,
    fingerprint,
)
from streamproc.detectors.base import Detector, DetectorContext

# characters of every UTF-8 width, and those JSON escapes
_CHARS = st.sampled_from(list('ab é日😀"\\\n\t/,[]{}:') + ["\x01"])
_TEXT = st.one_of(
    st.text(_CHARS, max_size=12),
    st.builds(lambda c, n: c * n, _CHARS, st.integers(0, 80)),  # long runs, near the limits
)
_SCALAR = st.one_of(
    _TEXT, st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.booleans(), st.none()
)


def _nested(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return _SCALAR
    inner = _nested(depth - 1)
    return st.one_of(
        _SCALAR,
        st.lists(inner, max_size=6),
        st.dictionaries(_TEXT, inner, max_size=5),
    )


def _deep(levels: int) -> Any:
    value: Any = "x"
    for i in range(levels):
        value = [value] if i % 2 else {"d": value}
    return value


_ALERTS = st.builds(
    lambda key, labels, evidence, source, title, body: Alert(
        kind="k",
        severity="high",
        status="firing",
        key=key,
        fingerprint="0123456789abcdef",
        event_time=1.0,
        title=title,
        body=body,
        labels=labels,
        evidence=evidence,
        source=source,
    ),
    st.dictionaries(_TEXT, _SCALAR, max_size=3),
    st.dictionaries(_TEXT, _TEXT, max_size=4),
    st.one_of(
        st.dictionaries(_TEXT, _nested(3), max_size=4),
        st.builds(lambda n: {"deep": _deep(n)}, st.integers(_MAX_DEPTH - 3, _MAX_DEPTH + 2)),
        st.builds(lambda n: {"many": list(range(n))}, st.integers(0, 45)),
        # near max_bytes, each value within max_value_bytes
        st.builds(
            lambda k, n: {f"f{i}": "x" * n for i in range(k)},
            st.integers(0, 30),
            st.integers(0, 100),
        ),
    ),
    st.dictionaries(_TEXT, _SCALAR, max_size=3),
    _TEXT,
    _TEXT,
)
_LIMITS = st.builds(
    AlertLimits,
    max_bytes=st.integers(300, 3000),
    max_value_bytes=st.integers(4, 120),
    max_items=st.integers(2, 40),
)


def _cuts_nothing(alert: Alert, limits: AlertLimits) -> bool:
    before = copy.deepcopy(alert)
    after = _cut(copy.deepcopy(alert), limits)
    return after.to_json() == before.to_json() and after.truncated == before.truncated


@settings(max_examples=1500, deadline=None)
@given(_ALERTS, _LIMITS)
@example(
    Alert("k", "high", "firing", {}, "fp", 1.0, "t", evidence={"q": 'a"' * 30}),
    AlertLimits(max_value_bytes=80),
)
@example(  # an escaped backslash before a closing quote joins two pieces
    Alert("k", "high", "firing", {}, "fp", 1.0, "t", evidence={"a\\": "b" * 60}),
    AlertLimits(max_value_bytes=60),
)
def test_what_the_walk_calls_within_the_cut_leaves_unchanged(
    alert: Alert, limits: AlertLimits
) -> None:
    assert _encoded_form(alert) is not None  # JSON types only: the walk's every branch
    if _within(alert, limits):
        assert _cuts_nothing(alert, limits)
    # and cap_alert, cutting or not, ends where the cut does
    cut = _cut(copy.deepcopy(alert), limits).to_json()
    assert cap_alert(copy.deepcopy(alert), limits).to_json() == cut


def test_the_walk_clears_a_typical_alert_and_not_one_a_limit_would_cut() -> None:
    def alert(**evidence: Any) -> Alert:
        return Alert(
            "pipeline_failed",
            "high",
            "firing",
            {"project": "api"},
            "0123456789abcdef",
            1.0,
            'Pipeline "deploy" failed',
            "line one\nline two",
            labels={"kind": "pipeline_failed"},
            evidence=evidence,
        )

    limits = AlertLimits()
    assert _within(alert(samples=[{"status": "failed", "url": "https://ci.example/1"}] * 5), limits)
    for over in (
        alert(text="x" * (limits.max_value_bytes + 1)),  # a value
        alert(text="\u00e9" * (limits.max_value_bytes // 2 + 1)),  # its UTF-8 bytes
        alert(many=list(range(limits.max_items + 1))),  # the items of a list
        alert(deep=_deep(_MAX_DEPTH + 1)),  # the depth
        alert(**{f"k{i}": "v" * 1000 for i in range(70)}),  # the whole
    ):
        assert not _within(over, limits)
        assert not _cuts_nothing(over, limits)


def _counted(alert: Alert, limits: AlertLimits) -> int | None:
    """The rules of ``_within``, stated plainly: the characters it counts towards the bound
    on the whole, or None when a part is over a limit of its own."""
    chars = limits.max_value_bytes // 4
    texts = (
        alert.title,
        alert.body,
        alert.kind,
        alert.severity,
        alert.status,
        alert.family,
        alert.audience,
    )
    if any(type(t) is not str or len(t) > chars for t in texts):
        return None
    fp = alert.fingerprint
    if type(fp) is not str or len(fp) > _MAX_FINGERPRINT:
        return None
    if type(alert.event_time) not in (int, float) or len(alert.truncated) > _MAX_TRUNCATED:
        return None
    if any(type(p) is not str or len(p) > _MAX_PATH for p in alert.truncated):
        return None

    def value(v: Any, depth: int) -> int | None:
        t = type(v)
        if t is str:
            return len(v) if len(v) <= chars else None
        if t not in _NESTED:
            return 0 if t in _SCALARS else None
        if depth >= _MAX_DEPTH or len(v) > limits.max_items:
            return None
        n = 0
        for k in v if t is dict else ():
            if type(k) is not str or len(k) > chars:
                return None
            n += len(k)
        for child in v.values() if t is dict else v:
            got = value(child, depth + 1)
            if got is None:
                return None
            n += got
        return n

    n = sum(map(len, texts)) + sum(map(len, alert.truncated))
    for part in (alert.key, alert.labels, alert.evidence, alert.source):
        got = value(part, 0) if type(part) in _NESTED else None
        if got is None:
            return None
        n += got
    return n


def _limits_at_the_edge(alert: Alert) -> st.SearchStrategy[AlertLimits]:
    """Limits anywhere, and max_bytes a few bytes either side of where the count and where
    the encoded form's length meet the bound on the whole."""
    form = _encoded_form(alert)
    assert form is not None
    counted = _counted(alert, AlertLimits(max_value_bytes=1 << 30, max_items=1 << 30)) or 0
    edges = [4096 + 6 * n + d for n in (counted, len(form)) for d in range(-7, 8)]
    return st.builds(
        AlertLimits,
        max_bytes=st.one_of(st.sampled_from(edges), st.integers(300, 20_000)),
        max_value_bytes=st.one_of(st.integers(4, 120), st.integers(400, 1200)),
        max_items=st.integers(2, 60),
    )


def _shape(value: Any) -> Any:
    """``value`` with the type of every container and scalar, which == alone would not tell
    apart (a tuple and a list, 1 and 1.0 and True)."""
    if type(value) is dict:
        return {k: _shape(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return (type(value), [_shape(v) for v in value])
    return (type(value), value)


def _answers_as_the_rules_say(alert: Alert, limits: AlertLimits) -> None:
    form = _encoded_form(alert)
    counted = _counted(alert, limits)
    expected = counted is not None and counted * 6 + 4096 <= limits.max_bytes
    assert _within(alert, limits) is expected
    assert _within(alert, limits, form) is expected
    # the cap (encoded first, _short, then the walk given the form) ends exactly where the
    # cut does, and leaves as it is what the rules clear
    capped = cap_alert(copy.deepcopy(alert), limits)
    cut = _cut(copy.deepcopy(alert), limits)
    assert capped == cut
    assert _shape(capped.to_dict()) == _shape(cut.to_dict())
    if expected or _short_by_the_rules(alert, limits):
        assert _shape(capped.to_dict()) == _shape(alert.to_dict())


@settings(max_examples=1500, deadline=None)
@given(_ALERTS, st.data())
def test_the_walk_given_the_encoded_form_clears_exactly_what_counting_clears(
    alert: Alert, data: st.DataObject
) -> None:
    _answers_as_the_rules_say(alert, data.draw(_limits_at_the_edge(alert)))


def test_the_encoded_form_clears_no_alert_one_byte_over_the_counted_bound() -> None:
    # strings nearly all of the form: a bound of 5 bytes a character would clear it
    alert = Alert("k", "high", "firing", {}, "fp", 1.0, "x" * 250, "y" * 250)
    alert.evidence = {"z": "w" * 250}
    counted = _counted(alert, AlertLimits())
    assert counted is not None
    _answers_as_the_rules_say(alert, AlertLimits(max_bytes=4096 + 6 * counted - 1))
    _answers_as_the_rules_say(alert, AlertLimits(max_bytes=4096 + 6 * counted))


def _short_by_the_rules(alert: Alert, limits: AlertLimits) -> bool:
    """The rules of ``_short``, stated plainly."""
    form = _encoded_form(alert)
    if form is None or len(form) > limits.max_value_bytes + 2:
        return False
    if len(alert.to_json()) > limits.max_bytes:
        return False
    texts = (
        alert.kind,
        alert.severity,
        alert.status,
        alert.fingerprint,
        alert.title,
        alert.body,
        alert.family,
        alert.audience,
    )
    if any(type(t) is not str for t in texts) or len(alert.fingerprint) > _MAX_FINGERPRINT:
        return False
    if type(alert.event_time) not in (int, float) or alert.truncated != []:
        return False

    def fits(v: Any, depth: int) -> bool:
        if type(v) not in (dict, list):
            return type(v) not in _NESTED
        if depth >= _MAX_DEPTH or len(v) > limits.max_items:
            return False
        return all(fits(c, depth + 1) for c in (v.values() if type(v) is dict else v))

    parts = (alert.key, alert.labels, alert.evidence, alert.source)
    return all(type(p) in (dict, list) and fits(p, 0) for p in parts)


def _largest(value: Any) -> int:
    """The most items of one container in ``value``."""
    if type(value) is dict:
        return max([len(value), *map(_largest, value.values())])
    if type(value) in (list, tuple):
        return max([len(value), *map(_largest, value)])
    return 0


def _limits_at_the_edges_of_short(alert: Alert) -> st.SearchStrategy[AlertLimits]:
    """Limits a few bytes (items) either side of where ``_short``'s rules turn."""
    form = _encoded_form(alert)
    assert form is not None
    size = len(alert.to_json())
    parts = (alert.key, alert.labels, alert.evidence, alert.source)
    most = max(map(_largest, parts))
    return st.builds(
        AlertLimits,
        max_bytes=st.one_of(st.integers(size - 3, size + 3), st.integers(size, 20_000 + size)),
        max_value_bytes=st.one_of(
            st.integers(len(form) - 5, len(form) + 1), st.integers(len(form), len(form) + 800)
        ),
        max_items=st.integers(max(1, most - 2), most + 2),
    )


_SHORT_ALERTS = st.builds(
    lambda alert, tuples, truncated, title: _with(alert, tuples, truncated, title),
    _ALERTS,
    st.sampled_from([False] * 5 + [True]),
    st.sampled_from([[]] * 8 + [["key"], ()]),
    st.sampled_from([None] * 8 + [7, b"t"]),
)


def _with(alert: Alert, tuples: bool, truncated: Any, title: Any) -> Alert:
    """``alert`` with what ``_short`` must turn down now and then: a tuple for a list, a list
    of what was cut, a title of another type."""
    if tuples:
        alert.evidence = {k: tuple(v) if type(v) is list else v for k, v in alert.evidence.items()}
    alert.truncated = truncated
    if title is not None and not alert.body:
        alert.title = title
    return alert


@settings(max_examples=2500, deadline=None)
@given(_SHORT_ALERTS, st.data())
def test_short_clears_what_its_rules_say_and_the_cut_leaves_that_as_it_is(
    alert: Alert, data: st.DataObject
) -> None:
    form = _encoded_form(alert)
    if form is None:  # (bytes in the title)
        return
    limits = data.draw(_limits_at_the_edges_of_short(alert))
    short = _short(alert, limits, form)
    assert short is _short_by_the_rules(alert, limits)
    if short:
        after = _cut(copy.deepcopy(alert), limits)
        assert after == alert
        assert _shape(after.to_dict()) == _shape(alert.to_dict())
        assert after.to_json() == alert.to_json() and after.truncated == alert.truncated
        capped = copy.deepcopy(alert)
        assert cap_alert(capped, limits) is capped and capped == alert
        assert _shape(capped.to_dict()) == _shape(alert.to_dict())


def test_short_turns_down_a_form_one_byte_longer_than_a_value_may_be() -> None:
    alert = Alert("k", "high", "firing", {}, "fp", 1.0, "t", evidence={"a": "x" * 300})
    form = _encoded_form(alert)
    assert form is not None
    assert _short(alert, AlertLimits(max_value_bytes=len(form) - 2), form)
    assert not _short(alert, AlertLimits(max_value_bytes=len(form) - 3), form)
    size = len(alert.to_json())
    assert _short(alert, AlertLimits(max_bytes=size), form)
    assert not _short(alert, AlertLimits(max_bytes=size - 1), form)


def test_make_alert_fills_each_field_from_the_argument_of_its_name() -> None:
    class Probe(Detector):
        kind = "probe"
        family = "probe-family"

    made = Probe(ctx=DetectorContext(binding="b")).make_alert(
        key={"k": "key"},
        incident=7,
        event_time=2.5,
        title="the title",
        body="the body",
        severity="low",
        status="resolved",
        evidence={"e": 1},
        source={"topic": "t"},
        labels={"l": "label"},
        kind="probe_kind",
        audience="customer",
    )
    assert made == Alert(
        kind="probe_kind",
        severity="low",
        status="resolved",
        key={"k": "key"},
        fingerprint=fingerprint("probe_kind", {"k": "key"}, 7),
        event_time=2.5,
        title="the title",
        body="the body",
        labels={"kind": "probe_kind", "family": "probe-family", "binding": "b", "l": "label"},
        evidence={"e": 1},
        source={"topic": "t"},
        family="probe-family",
        audience="customer",
    )
