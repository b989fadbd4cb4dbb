"""Alerts that no channel takes are kept as dead letters (reason ``no_route``) and counted,
never logged and dropped."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.alerts import Alert, fingerprint
from streamproc.notify import Notifier
from streamproc.notify.undelivered import FILE_NAME, encode_to_fit
from streamproc.ops.metrics import Metrics
from tests.runtimes import running
from tests.waiting import wait_until


def brute_force(i: int) -> Alert:
    key = {"username": f"user{i}", "ip_address": "203.0.113.7"}
    return Alert(
        kind="brute_force",
        severity="high",
        status="firing",
        key=key,
        fingerprint=fingerprint("brute_force", key, i),
        event_time=time.time(),
        title=f"brute force {i}",
        body="b",
        labels={"kind": "brute_force"},
        family="auth-logs",
    )


def nobodys_channel(url: str) -> dict[str, Any]:
    """A real channel whose only tag no route gives any alert."""
    return {
        "urls": [{"url": url, "tags": ["nobody"]}],
        "group_wait": 0,
        "group_interval": 0,
        "group_by": ["fingerprint"],
        "rate": 0,
        "close_timeout": "1s",
    }


async def test_an_alert_no_channel_takes_is_dead_lettered_as_no_route_and_counted(
    receiver: Any, tmp_path: Path
) -> None:
    metrics = Metrics(process_metrics=False)
    n = Notifier.from_config(nobodys_channel(receiver.url("json")), state_dir=tmp_path)
    n.on_dead_letter = metrics.record_notify_dead_letters
    await n.start()
    alerts = [brute_force(1), brute_force(2)]
    await n.submit(alerts)  # durable when it returns: the dead letters are written
    assert await n.drain(2)
    await n.close()
    records = [orjson.loads(line) for line in (tmp_path / FILE_NAME).read_bytes().splitlines()]
    assert [r["reason"] for r in records] == ["no_route", "no_route"]
    assert [r["alerts"][0]["fingerprint"] for r in records] == [a.fingerprint for a in alerts]
    assert all("security-team" in r["error"] for r in records)  # the tags it had
    assert n.counters["unrouted"] == 2 and n.counters["dead_lettered"] == 2
    assert metrics.value("streamproc_notify_dead_letters_total", {"reason": "no_route"}) == 2
    assert receiver.requests == []  # the channel's tags matched nothing


async def test_an_alert_with_a_channel_is_not_dead_lettered(receiver: Any, tmp_path: Path) -> None:
    cfg = nobodys_channel(receiver.url("json"))
    cfg["urls"] = [{"url": receiver.url("json"), "tags": ["security-team"]}]
    n = Notifier.from_config(cfg, state_dir=tmp_path)
    await n.start()
    await n.submit([brute_force(1)])
    await receiver.await_for(1)
    await n.close()
    assert len(receiver.accepted) == 1
    assert not (tmp_path / FILE_NAME).exists()
    assert n.counters.get("unrouted", 0) == 0


@pytest.mark.kafka
async def test_the_runtime_puts_unrouted_alerts_on_the_alert_dead_letter_topic(
    kafka: Any, receiver: Any, make_config
) -> None:

    from tests.streams import auth_stream, dumps, produce, read_records

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka.bootstrap_servers, topic, dumps(auth_stream(300, 1)), partitions=1)
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        kafka={"alert_dlq_topic": f"{group}.alerts.dlq"},
        topics=[topic],
        urls=[{"url": receiver.url("json"), "tags": ["nobody"]}],
        notify={"group_by": None},
    )
    metrics = Metrics(process_metrics=False)
    async with running(config, metrics=metrics):
        await wait_until(
            lambda: metrics.value("streamproc_notify_dead_letters_total", {"reason": "no_route"}),
            60,
            "the alert no channel takes to be dead-lettered",
        )
    assert metrics.value("streamproc_notify_dead_letters_total", {"reason": "no_route"}) == 1
    dlq = await read_records(kafka.bootstrap_servers, f"{group}.alerts.dlq", 1)
    [record] = [orjson.loads(r.value) for r in dlq]
    assert record["reason"] == "no_route"
    assert record["alerts"][0]["kind"] == "brute_force"
    assert receiver.requests == []


def test_a_dead_letter_too_large_for_one_record_is_split_across_several() -> None:
    alerts = [{"fingerprint": f"{i:016x}", "kind": "k", "body": "x" * 10_000} for i in range(50)]
    record = {"failed_at": 1.0, "reason": "delivery_failed", "alerts": alerts}
    parts = encode_to_fit(record, 64 * 1024)
    assert len(parts) > 1 and all(len(p) <= 64 * 1024 for p in parts)
    decoded = [orjson.loads(p) for p in parts]
    assert all(d["reason"] == "delivery_failed" for d in decoded)
    assert [a["fingerprint"] for d in decoded for a in d["alerts"]] == [
        a["fingerprint"] for a in alerts
    ]
