"""``iso`` (an alert's sample times) caches the text up to the seconds per minute: every time
must read as a plain formatting of it says, in a minute seen before too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.detectors._common import iso


def _plain(ts: float) -> str:
    whole = int(ts // 1)
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=whole)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    frac = ts - whole
    if frac:
        text += f".{min(999, round(frac * 1000)):03d}"
    return text + "Z"


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.floats(-1e10, 2.5e11, allow_nan=False),
        st.integers(0, 2**37).map(float),
        st.builds(lambda m, s: m * 60.0 + s, st.integers(0, 40_000_000), st.floats(0, 60)),
    ),
    st.integers(-61, 61),
)
def test_iso_reads_as_the_plain_formatting_says(ts: float, step: int) -> None:
    # the second call may find the minute of the first cached
    assert iso(ts) == _plain(ts)
    assert iso(ts + step) == _plain(ts + step)
    assert iso(ts) == _plain(ts)
