"""Config reload: new thresholds apply to the state already collected; an invalid file is
rejected and the old config keeps running; SIGHUP triggers it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import orjson
import pytest

from streamproc.config import load_config
from streamproc.decode import RawRecord
from streamproc.ops.metrics import Metrics
from streamproc.pipeline.reload import Reloader
from streamproc.pipeline.runtime import Judge
from tests.waiting import wait_until

T0 = 1_700_000_000


def auth_config(threshold: int, *, lateness: int = 60, extra: str = "") -> str:
    return (
        "topics:\n"
        "  - topic: auth\n"
        "    family: auth-logs\n"
        f"    allowed_lateness: {lateness}\n"
        "    detectors:\n"
        f"      brute_force: {{threshold: {threshold}, window: 3600}}\n" + extra
    )


def failures(n: int, start: int = 0) -> list[RawRecord]:
    return [
        RawRecord(
            orjson.dumps(
                {
                    "timestamp": T0 + start + i,
                    "username": "alice",
                    "ip_address": "203.0.113.9",
                    "success": False,
                }
            ),
            "auth",
            0,
            start + i,
        )
        for i in range(n)
    ]


def fired(alerts: list) -> list:  # type: ignore[type-arg]
    return [a for a in alerts if a.kind == "brute_force" and a.status == "firing"]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Judge, Reloader, Metrics]:
    path = tmp_path / "streamproc.yaml"
    path.write_text(auth_config(5))
    metrics = Metrics(process_metrics=False)
    judge = Judge(load_config(path), metrics=metrics)
    return path, judge, Reloader(path, judge=judge, metrics=metrics), metrics


async def test_lowered_threshold_counts_the_failures_seen_before_the_reload(setup) -> None:
    path, judge, reloader, metrics = setup
    alerts, _ = judge.judge(failures(2))
    assert not fired(alerts)  # 2 < 5
    path.write_text(auth_config(3))
    result = await reloader.reload()
    assert result.ok and not result.needs_restart
    assert any("brute_force" in line and "threshold" in line for line in result.applied)
    alerts, _ = judge.judge(failures(1, start=2))
    # The third failure fires only because the first two survived the reload.
    assert len(fired(alerts)) == 1
    assert metrics.value("streamproc_config_reloads_total", {"outcome": "ok"}) == 1


async def test_invalid_new_config_is_rejected_and_the_old_one_keeps_running(setup) -> None:
    path, judge, reloader, metrics = setup
    judge.judge(failures(3))
    detectors_before = [d for e in judge.engines.values() for d in e.detectors]
    path.write_text(auth_config(5).replace("threshold: 5", "treshold: 3"))
    result = await reloader.reload()
    assert not result.ok
    assert result.error is not None and f"{path}:" in result.error
    assert "treshold" in result.error
    assert [d for e in judge.engines.values() for d in e.detectors] == detectors_before
    alerts, _ = judge.judge(failures(2, start=3))
    assert len(fired(alerts)) == 1  # threshold 5 still: the 5th failure fires
    assert metrics.value("streamproc_config_reloads_total", {"outcome": "rejected"}) == 1


async def test_unchanged_detectors_keep_their_objects_and_lateness_updates(setup) -> None:
    path, judge, reloader, _ = setup
    judge.judge(failures(1))
    before = {d.kind: d for e in judge.engines.values() for d in e.detectors}
    path.write_text(auth_config(5, lateness=600))
    result = await reloader.reload()
    assert result.ok
    after = {d.kind: d for e in judge.engines.values() for d in e.detectors}
    assert all(after[k] is before[k] for k in before)
    assert all(e.allowed_lateness == 600 for e in judge.engines.values())


async def test_disabling_a_detector_drops_it_and_reenabling_starts_it_fresh(setup) -> None:
    path, judge, reloader, _ = setup
    judge.judge(failures(4))
    path.write_text(
        auth_config(5).replace(
            "brute_force: {threshold: 5, window: 3600}", "brute_force: {enabled: false}"
        )
    )
    assert (await reloader.reload()).ok
    assert all("brute_force" not in {d.kind for d in e.detectors} for e in judge.engines.values())
    alerts, _ = judge.judge(failures(5, start=4))
    assert not fired(alerts)


async def test_changes_that_need_new_subscriptions_are_reported_not_applied(setup) -> None:
    path, judge, reloader, _ = setup
    path.write_text(auth_config(5).replace("topic: auth", "topic: auth-v2"))
    result = await reloader.reload()
    assert result.ok
    assert any("removed topic binding 'auth'" in r for r in result.needs_restart)
    assert "auth" in judge.bindings  # still judging the old topic


async def test_sighup_reloads_the_file(setup) -> None:
    path, judge, reloader, metrics = setup
    assert reloader.install_sighup()
    try:
        path.write_text(auth_config(2))
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: reloader.last is not None, 2, "the reload SIGHUP asks for")
        assert reloader.last.ok
        alerts, _ = judge.judge(failures(2))
        assert len(fired(alerts)) == 1
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)


async def test_file_watch_reloads_after_an_edit(setup) -> None:
    path, judge, reloader, _ = setup
    task = asyncio.create_task(reloader.watch(interval=0.05))
    try:
        await asyncio.sleep(0.1)
        path.write_text(auth_config(2) + "# edited\n")
        await wait_until(lambda: reloader.last is not None, 4, "the reload the edit causes")
        assert reloader.last.ok
    finally:
        task.cancel()


# -- detectors that read each other stay wired across a reload -------------------------------


def login(ts: int, offset: int, *, success: bool) -> RawRecord:
    return RawRecord(
        orjson.dumps(
            {
                "timestamp": T0 + ts,
                "username": "alice",
                "ip_address": "203.0.113.9",
                "success": success,
            }
        ),
        "auth",
        0,
        offset,
    )


async def test_compromise_suspected_fires_after_a_reload_that_rebuilt_brute_force(setup) -> None:
    path, judge, reloader, _ = setup
    judge.judge([login(0, 0, success=True)])  # the engine exists before the reload
    path.write_text(auth_config(3))
    assert (await reloader.reload()).ok
    alerts, _ = judge.judge([login(1 + i, 1 + i, success=False) for i in range(3)])
    assert len(fired(alerts)) == 1  # the rebuilt brute_force, threshold 3
    alerts, _ = judge.judge([login(60, 10, success=True)])
    assert [a.kind for a in alerts] == ["compromise_suspected"]
    assert alerts[0].evidence["brute_force_fired_at"] == T0 + 3


async def test_compromise_suspected_keeps_firing_when_only_it_is_rebuilt(setup) -> None:
    path, judge, reloader, _ = setup
    judge.judge([login(0, 0, success=True)])
    path.write_text(
        auth_config(
            5,
            extra="    # a longer window after brute force\n"
            "      compromise_suspected: {window: 1200}\n",
        )
    )
    assert (await reloader.reload()).ok
    judge.judge([login(1 + i, 1 + i, success=False) for i in range(5)])
    alerts, _ = judge.judge([login(900, 10, success=True)])  # 15 min after: within 20
    assert [a.kind for a in alerts] == ["compromise_suspected"]


TICKETS = (
    "topics:\n"
    "  - topic: tickets\n"
    "    family: support-tickets\n"
    "    detectors:\n"
    "      sla_breach: {{sla_urgent_hours: {hours}, enabled: {enabled}}}\n"
)


def ticket(ts: int, offset: int, tid: str) -> RawRecord:
    return RawRecord(
        orjson.dumps(
            {
                "timestamp": T0 + ts,
                "event": "created",
                "ticket_id": tid,
                "priority": "urgent",
                "customer_email": "c@example.org",
                "subject": "down",
            }
        ),
        "tickets",
        0,
        offset,
    )


def quoted_sla(alerts: list) -> list:  # type: ignore[type-arg]
    return sorted(
        {
            a.evidence.get("sla_hours")
            for a in alerts
            if a.kind == "ticket_created" and a.audience == "internal"
        }
    )


async def test_the_ticket_detectors_quote_the_sla_table_of_the_reloaded_sla_breach(
    tmp_path: Path,
) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text(TICKETS.format(hours=1, enabled="true"))
    judge = Judge(load_config(path))
    reloader = Reloader(path, judge=judge)
    alerts, _ = judge.judge([ticket(0, 0, "T-1")])
    assert quoted_sla(alerts) == [1.0]
    path.write_text(TICKETS.format(hours=2, enabled="true"))
    assert (await reloader.reload()).ok
    alerts, _ = judge.judge([ticket(10, 1, "T-2")])
    assert quoted_sla(alerts) == [2.0]  # ticket_created was not rebuilt, yet reads the new
    # sla_breach disabled: the ticket detectors fall back to their own table (1 h by default)
    path.write_text(TICKETS.format(hours=2, enabled="false"))
    assert (await reloader.reload()).ok
    alerts, _ = judge.judge([ticket(20, 2, "T-3")])
    assert quoted_sla(alerts) == [1.0]


# -- repartitioned detectors: each task keeps the detectors planned for it --------------------

UNKEYED = (
    "kafka: {{bootstrap_servers: '127.0.0.1:1'}}\n"
    "topics:\n"
    "  - {{topic: logins, family: auth-logs{keyed},\n"
    "     detectors: {{brute_force: {{threshold: {threshold}}}}}}}\n"
)


def judged_through_repartition(judge: Judge, records: list[RawRecord]) -> list:  # type: ignore[type-arg]
    """Judge records of the source topic, then their re-keyed copies (as the runtime does)."""
    alerts, _ = judge.judge(records)
    copies = [
        RawRecord(value, topic, 0, i) for i, (topic, _, value) in enumerate(judge.take_outbox())
    ]
    more, _ = judge.judge(copies)
    return alerts + more


def logins_failures(n: int, start: int) -> list[RawRecord]:
    return [
        RawRecord(
            orjson.dumps(
                {
                    "timestamp": T0 + start + i,
                    "username": "bob",
                    "ip_address": "198.51.100.7",
                    "success": False,
                }
            ),
            "logins",
            0,
            start + i,
        )
        for i in range(n)
    ]


async def test_a_reload_changes_the_repartitioned_brute_force_and_adds_none_to_the_source(
    tmp_path: Path,
) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text(UNKEYED.format(keyed="", threshold=5))
    judge = Judge(load_config(path), repartition=True)
    assert not judged_through_repartition(judge, logins_failures(1, 0))
    path.write_text(UNKEYED.format(keyed="", threshold=3))
    result = await Reloader(path, judge=judge).reload()
    assert result.ok and not result.needs_restart
    assert result.applied == ["logins@username: brute_force {'threshold': 5} -> {'threshold': 3}"]
    # the source topic's task still runs no detector: brute_force fires once, re-keyed
    alerts = judged_through_repartition(judge, logins_failures(2, 1))
    assert [(a.kind, a.labels["binding"]) for a in fired(alerts)] == [
        ("brute_force", "logins@username")
    ]


async def test_a_reload_that_would_re_key_detectors_differently_needs_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text(UNKEYED.format(keyed="", threshold=5))
    judge = Judge(load_config(path), repartition=True)
    judged_through_repartition(judge, logins_failures(1, 0))
    before = {task: [d.kind for d in e.detectors] for task, e in judge.engines.items()}
    assert len(before) == 3  # the source topic's task and two repartition topics' tasks
    path.write_text(UNKEYED.format(keyed=", keyed_by: username", threshold=5))
    result = await Reloader(path, judge=judge).reload()
    assert any(
        "re-keyed differently" in line and "'logins'" in line for line in result.needs_restart
    )
    assert {task: [d.kind for d in e.detectors] for task, e in judge.engines.items()} == before
