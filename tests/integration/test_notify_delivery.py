"""The Notifier end to end against real local HTTP receivers behind Apprise json:// and
form:// URLs: exactly-once arrival, outages, errors, 429, slow channels, grouping, digests,
inhibition, silences, resolves. No timed asserts: tests wait for arrivals, then check what
arrived and in which order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.alerts import Alert, fingerprint
from streamproc.notify import Notifier
from streamproc.notify.silences import SilenceStore
from streamproc.notify.store import open_db
from tests.deliveries import refs, text_of
from tests.waiting import wait_until


def mk(
    i: int,
    *,
    kind: str = "brute_force",
    severity: str = "high",
    status: str = "firing",
    family: str = "auth-logs",
    key: dict[str, Any] | None = None,
    title: str | None = None,
) -> Alert:
    key = key if key is not None else {"username": f"user{i}", "ip_address": f"10.0.0.{i % 3}"}
    return Alert(
        kind=kind,
        severity=severity,
        status=status,
        key=key,
        fingerprint=fingerprint(kind, key, i),
        event_time=time.time(),
        title=title or f"{kind} {i}",
        body="b",
        labels={"kind": kind, **key},
        family=family,
    )


def config(*urls: Any, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "urls": list(urls),
        "group_wait": 0,
        "group_interval": 0,
        "group_by": ["fingerprint"],
        "rate": 0,
        "close_timeout": "2s",
        "retry": {"initial": "20ms", "max_delay": "200ms", "max_attempts": 4},
    }
    cfg.update(over)
    return cfg


async def started(cfg: dict[str, Any], state: Path, **kw: Any) -> Notifier:
    n = Notifier.from_config(cfg, state_dir=state, **kw)
    await n.start()
    return n


async def test_each_fingerprint_arrives_exactly_once_per_channel(
    make_receiver: Any, tmp_path: Path
) -> None:
    a, b = make_receiver(), make_receiver()
    cfg = config(a.url("json"), b.url("form"))
    alerts = [mk(i) for i in range(20)]
    n = await started(cfg, tmp_path)
    await n.submit(alerts)
    await n.submit(alerts[:10])  # the alert log re-delivers part of a batch
    await a.await_for(20)
    await b.await_for(20)
    await n.close()
    n2 = await started(cfg, tmp_path)  # a restart re-reads the whole log
    await n2.submit(alerts)
    assert await n2.drain(5)
    await n2.close()
    expected = sorted(x.fingerprint for x in alerts)
    assert sorted(refs(a.accepted)) == expected
    assert sorted(refs(b.accepted)) == expected
    assert n2.counters["deduplicated"] == 40


# Both delivery paths: the keep-alive fast path (json/form/xml) and Apprise's send() on the
# channel's own threads (every other service).
PATHS = pytest.mark.parametrize("threads", [False, True], ids=["fast-path", "threads"])


def path_cfg(threads: bool) -> dict[str, Any]:
    return {"channels": {"JSON": {"fast": False}, "Form": {"fast": False}}} if threads else {}


@PATHS
async def test_receiver_down_then_back_gets_everything(
    receiver: Any, tmp_path: Path, threads: bool
) -> None:
    cfg = config(
        receiver.url("json"),
        retry={"initial": "50ms", "max_delay": "300ms", "max_attempts": 1000, "max_age": "10m"},
        **path_cfg(threads),
    )
    n = await started(cfg, tmp_path)
    receiver.stop_listening()  # refused, as by a crashed webhook service
    alerts = [mk(i) for i in range(10)]
    await n.submit(alerts[:5])
    # it really tried, and failed, several times
    await wait_until(lambda: n.counters["send_failures"] >= 5, 120, "five failed sends")
    await n.submit(alerts[5:])
    receiver.listen()  # the same port again
    await wait_until(
        lambda: sorted(refs(receiver.accepted)) == sorted(a.fingerprint for a in alerts),
        120,
        "every alert to arrive once the receiver listens again",
        detail=lambda: refs(receiver.accepted),
    )
    await n.close()
    assert len(refs(receiver.accepted)) == 10  # each once
    assert n.counters.get("dead_lettered", 0) == 0


@PATHS
async def test_server_errors_retry_then_fallback_then_dead_letter(
    make_receiver: Any, tmp_path: Path, threads: bool
) -> None:
    primary, fallback = make_receiver(), make_receiver()
    primary.status = fallback.status = 500
    dead: list[dict[str, Any]] = []

    async def to_dlq(records: list[dict[str, Any]]) -> None:
        dead.extend(records)

    cfg = config(
        primary.url("json"),
        fallback=fallback.url("form"),
        retry={"initial": "10ms", "max_delay": "50ms", "max_attempts": 3},
        **path_cfg(threads),
    )
    n = await started(cfg, tmp_path, dead_letter=to_dlq)
    a = mk(1)
    await n.submit([a])
    await wait_until(lambda: dead, 60, "the alert to be dead-lettered", interval=0.02)
    await n.close()
    assert len(primary.requests) == 3 and len(fallback.requests) == 3
    assert primary.requests[-1]["at"] <= fallback.requests[0]["at"]  # in that order
    [record] = dead
    assert record["error"] == "HTTP 500" and record["attempts"] == 3
    assert [x["fingerprint"] for x in record["alerts"]] == [a.fingerprint]
    assert record["channel"] == primary.url("json").rsplit("/", 1)[0]  # redacted: no path
    assert n.counters["dead_lettered"] == 1 and n.counters["fallback"] == 1


async def test_fallback_delivers_when_primary_keeps_failing(
    make_receiver: Any, tmp_path: Path
) -> None:
    primary, fallback = make_receiver(), make_receiver()
    primary.status = 503
    cfg = config(
        primary.url("json"),
        fallback=fallback.url("json"),
        retry={"initial": "10ms", "max_delay": "20ms", "max_attempts": 2},
    )
    n = await started(cfg, tmp_path)
    await n.submit([mk(7)])
    got = await fallback.await_for(1)
    await n.close()
    assert refs(got) == [mk(7).fingerprint]
    assert not (tmp_path / "notify-dead-letters.jsonl").exists()


async def test_dead_letters_go_to_a_jsonl_file_without_a_producer(
    receiver: Any, tmp_path: Path
) -> None:
    receiver.status = 500
    cfg = config(receiver.url("json"), retry={"initial": "10ms", "max_attempts": 2})
    n = await started(cfg, tmp_path)
    await n.submit([mk(3)])
    path = tmp_path / "notify-dead-letters.jsonl"
    await wait_until(path.exists, 60, "the notify dead-letter file", interval=0.02)
    await n.close()
    [line] = path.read_bytes().splitlines()
    assert orjson.loads(line)["alerts"][0]["fingerprint"] == mk(3).fingerprint


@PATHS
async def test_429_with_retry_after_pauses_the_channel(
    receiver: Any, tmp_path: Path, threads: bool
) -> None:
    receiver.fail_next, receiver.fail_status = 1, 429
    receiver.headers = {"Retry-After": "1"}
    n = await started(config(receiver.url("json"), **path_cfg(threads)), tmp_path)
    await n.submit([mk(1)])
    await receiver.await_for(1)
    await n.close()
    first, second = receiver.requests[0], receiver.requests[1]
    assert first["status"] == 429 and second["status"] == 200
    assert second["at"] - first["at"] >= 1.0  # not before Retry-After
    assert n.counters["rate_limited"] == 1


@PATHS
async def test_a_5s_receiver_does_not_delay_a_fast_one(
    make_receiver: Any, tmp_path: Path, threads: bool
) -> None:
    slow, fast = make_receiver(), make_receiver()
    slow.delay = 5.0
    cfg = config(
        slow.url("json"),
        fast.url("json"),
        max_in_flight=2,
        close_timeout="100ms",
        **path_cfg(threads),
    )
    n = await started(cfg, tmp_path)
    await n.submit([mk(i) for i in range(10)])
    got = await fast.await_for(10)
    answered_by_slow = len(slow.accepted)
    await n.close()
    assert len(got) == 10
    assert answered_by_slow == 0  # the fast channel finished before the slow one answered once


async def test_grouping_summarises_a_burst_in_one_message(receiver: Any, tmp_path: Path) -> None:
    cfg = config(receiver.url("json"), group_by=["kind"], group_wait="300ms", group_interval="1h")
    n = await started(cfg, tmp_path)
    for i in range(12):
        await n.submit([mk(i, key={"username": "alice", "ip_address": f"10.0.0.{i % 3}"})])
    [msg] = await receiver.await_for(1)
    await n.submit([mk(99)])  # the same group, inside group_interval: held back
    assert await n.drain(5)  # drain flushes early, as at shutdown
    await n.close()
    assert "12 brute\\_force alerts from 3 IPs for user alice" in msg["json"]["title"]
    assert len(refs([msg])) == 12
    assert len(receiver.accepted) == 2


async def test_rate_limit_overflow_becomes_a_digest(receiver: Any, tmp_path: Path) -> None:
    cfg = config(receiver.url("json"), rate=0.2, burst=2)
    n = await started(cfg, tmp_path)
    alerts = [mk(i) for i in range(10)]
    await n.submit(alerts)
    got = await receiver.await_for(2)
    await n.close()
    assert len(got) == 2
    # one message as it came, one digest of the rest; their arrival order is not fixed
    assert sum("(+8 more)" in g["json"]["title"] for g in got) == 1
    assert sorted(refs(got)) == sorted(a.fingerprint for a in alerts)
    assert n.counters["digests"] == 1


async def test_critical_inhibits_lower_severity_of_the_same_key(
    receiver: Any, tmp_path: Path
) -> None:
    n = await started(config(receiver.url("json")), tmp_path)
    host = {"host": "web-1"}
    crit = mk(1, kind="host_down", severity="critical", family="host-metrics", key=host)
    warn = mk(2, kind="cpu_high", severity="high", family="host-metrics", key=host)
    other = mk(3, kind="cpu_high", severity="high", family="host-metrics", key={"host": "web-2"})
    await n.submit([crit])
    await n.submit([warn, other])
    assert await n.drain(5)
    await n.close()
    assert sorted(refs(receiver.accepted)) == sorted([crit.fingerprint, other.fingerprint])
    assert n.counters["inhibited"] == 1


async def test_silence_mutes_until_expired_and_survives_restart(
    receiver: Any, tmp_path: Path
) -> None:
    store = SilenceStore(open_db(tmp_path))  # as `streamproc silence add` would
    s = store.add(["username=~svc-.*"], duration=3600)
    n = await started(config(receiver.url("json")), tmp_path)
    svc = mk(1, key={"username": "svc-backup", "ip_address": "10.0.0.1"})
    human = mk(2, key={"username": "alice", "ip_address": "10.0.0.1"})
    await n.submit([svc, human])
    assert await n.drain(5)
    await n.close()
    n = await started(config(receiver.url("json")), tmp_path)  # restart: still silenced
    svc2 = mk(3, key={"username": "svc-deploy", "ip_address": "10.0.0.1"})
    await n.submit([svc2])
    store.expire(s.id)  # from another connection, while running
    svc3 = mk(4, key={"username": "svc-deploy", "ip_address": "10.0.0.2"})
    await n.submit([svc3])
    assert await n.drain(5)
    await n.close()
    assert sorted(refs(receiver.accepted)) == sorted([human.fingerprint, svc3.fingerprint])
    assert n.counters["silenced"] == 1


async def test_resolved_goes_where_the_firing_went(make_receiver: Any, tmp_path: Path) -> None:
    sec, dev = make_receiver(), make_receiver()
    cfg = config(
        {"url": sec.url("json"), "tags": ["security-team"]},
        {"url": dev.url("json"), "tags": ["dev"]},
    )
    n = await started(cfg, tmp_path)
    firing = mk(1, severity="low")
    await n.submit([firing])
    await sec.await_for(1)
    # the resolve carries other labels that would route it elsewhere; it follows the firing
    resolved = Alert.from_dict(
        {**firing.to_dict(), "status": "resolved", "family": "cicd-events", "kind": "brute_force"}
    )
    await n.submit([resolved])
    await sec.await_for(2)
    assert await n.drain(5)
    await n.close()
    assert refs(sec.accepted) == [firing.fingerprint, firing.fingerprint]
    assert "RESOLVED" in text_of(sec.accepted[1])
    assert dev.accepted == []


async def test_resolved_in_the_same_batch_as_its_firing_follows_it(
    make_receiver: Any, tmp_path: Path
) -> None:
    sec, dev = make_receiver(), make_receiver()
    cfg = config(
        {"url": sec.url("json"), "tags": ["security-team"]},
        {"url": dev.url("json"), "tags": ["dev"]},
        group_wait="1s",
    )
    n = await started(cfg, tmp_path)
    firing = mk(1, severity="low")
    resolved = Alert.from_dict(
        {**firing.to_dict(), "status": "resolved", "family": "cicd-events", "kind": "brute_force"}
    )
    await n.submit([firing, resolved])  # one batch: grouped in one pass, one message
    await sec.await_for(1)
    assert await n.drain(5)
    await n.close()
    assert refs(sec.accepted) == [firing.fingerprint, firing.fingerprint]
    assert "RESOLVED" in text_of(sec.accepted[-1])
    assert dev.accepted == []


async def test_injection_attempt_arrives_harmless(receiver: Any, tmp_path: Path) -> None:
    n = await started(config(receiver.url("json")), tmp_path)
    evil = "@channel <!here> [x](https://evil.example) <img src=x onerror=alert(1)>"
    await n.submit(
        [mk(1, key={"username": evil, "ip_address": "1.2.3.4"}, title=f"Brute force on {evil}")]
    )
    [req] = await receiver.await_for(1)
    await n.close()
    text = text_of(req)
    for bad in ("@channel", "<!here>", "https://", "<img", "[x](h"):
        assert bad not in text


async def test_alerts_file_and_console_are_apprise_channels(
    receiver: Any, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "alerts.jsonl"
    n = await started(
        {"group_wait": "10ms"}, tmp_path / "state", alerts_file=str(out), console=True
    )
    alerts = [mk(i) for i in range(3)]
    await n.submit(alerts)
    assert await n.drain(5)
    await n.close()
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert sorted(x["fingerprint"] for x in lines) == sorted(a.fingerprint for a in alerts)
    printed = capsys.readouterr().out
    assert "3 brute_force alerts" in printed


async def test_receiver_down_for_30_seconds_then_back_gets_everything(
    receiver: Any, tmp_path: Path
) -> None:
    """A 30-second outage, at full length, with a production-like retry policy (1 s
    doubling to at most 5 s; the message age limit, not an attempt count, governs)."""
    cfg = config(
        receiver.url("json"),
        retry={"initial": "1s", "max_delay": "5s", "max_attempts": 100, "max_age": "10m"},
    )
    n = await started(cfg, tmp_path)
    receiver.stop_listening()  # refused, as by a crashed webhook service
    alerts = [mk(i) for i in range(20)]
    await n.submit(alerts[:10])
    loop = asyncio.get_running_loop()
    down_until = loop.time() + 30
    while loop.time() < down_until:
        await asyncio.sleep(0.5)
    await n.submit(alerts[10:])
    assert receiver.requests == []  # nothing could arrive while it was down
    assert n.counters["send_failures"] >= 2  # it kept trying, with backoff
    receiver.listen()  # the same port again
    await wait_until(
        lambda: sorted(refs(receiver.accepted)) == sorted(a.fingerprint for a in alerts),
        60,
        "every alert to arrive once the receiver listens again",
        detail=lambda: refs(receiver.accepted),
    )
    await n.close()
    assert sorted(refs(receiver.accepted)) == sorted(a.fingerprint for a in alerts)
    assert n.counters.get("dead_lettered", 0) == 0
