"""Routes reload live; channel changes are refused (they need a restart)."""

from __future__ import annotations

import pytest

from streamproc.alerts import Alert, fingerprint
from streamproc.errors import ConfigError
from streamproc.notify import Notifier


def alert(n: int) -> Alert:
    key = {"username": f"u{n}", "ip_address": "192.0.2.1"}
    return Alert(
        kind="brute_force",
        severity="high",
        status="firing",
        key=key,
        fingerprint=fingerprint("brute_force", key, n),
        event_time=1_790_000_000 + n,
        title=f"Brute force on u{n}",
        family="auth-logs",
        labels={"kind": "brute_force"},
    )


def cfg(a_url: str, b_url: str, route_to: str) -> dict:
    return {
        "urls": [{"url": a_url, "tags": ["team-a"]}, {"url": b_url, "tags": ["team-b"]}],
        "routes": [{"match": {"kind": "brute_force"}, "tags": [route_to]}],
        "group_wait": "0s",
        "rate": 0,
    }


async def test_reloaded_routes_apply_to_the_next_alert(make_receiver, tmp_path) -> None:
    a, b = make_receiver(), make_receiver()
    notifier = Notifier.from_config(cfg(a.url(), b.url(), "team-a"), state_dir=tmp_path)
    await notifier.start()
    try:
        await notifier.submit([alert(1)])
        assert len(await a.await_for(1)) == 1
        notifier.reload(cfg(a.url(), b.url(), "team-b"))
        await notifier.submit([alert(2)])
        assert len(await b.await_for(1)) == 1
    finally:
        await notifier.close()
    assert len(a.accepted) == 1 and "u1" in str(a.accepted[0]["json"])
    assert len(b.accepted) == 1 and "u2" in str(b.accepted[0]["json"])


async def test_changed_channels_are_refused_and_nothing_changes(make_receiver, tmp_path) -> None:
    a, b, c = make_receiver(), make_receiver(), make_receiver()
    notifier = Notifier.from_config(cfg(a.url(), b.url(), "team-a"), state_dir=tmp_path)
    await notifier.start()
    try:
        with pytest.raises(ConfigError, match="restart"):
            notifier.reload(cfg(a.url(), c.url(), "team-b"))
        await notifier.submit([alert(3)])
        assert len(await a.await_for(1)) == 1
    finally:
        await notifier.close()
    assert b.accepted == [] and c.accepted == []
