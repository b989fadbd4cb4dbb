"""Kafka end to end: real Tansu broker, real runtime, real Apprise delivery to a local HTTP
receiver."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from tests.runtimes import running
from tests.streams import auth_stream, committed_total, dumps, produce, read_records
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


async def test_ten_thousand_auth_events_with_three_incidents_deliver_exactly_three_alerts(
    kafka, receiver, make_config
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(10_000, 3)
    keys = [e["username"].encode() for e in stream]
    await produce(kafka.bootstrap_servers, topic, dumps(stream), keys)
    config = make_config(
        bootstrap=kafka.bootstrap_servers, group=group, topics=[topic], urls=[receiver.url("json")]
    )
    async with running(config) as runtime:
        await wait_until(
            lambda: runtime.stats.records_in >= 10_000 and len(receiver.accepted) >= 3,
            60,
            "every record and three alerts",
            detail=lambda: runtime.stats,
        )
    # let anything extra that was going to arrive arrive
    await asyncio.sleep(1.0)
    bodies = [r["json"] for r in receiver.accepted]
    assert runtime.stats.records_in == 10_000
    assert runtime.stats.dead_letters == 0
    assert runtime.stats.alerts_by_kind.get("brute_force") == 3
    assert len(bodies) == 3, bodies
    text = " ".join(orjson.dumps(b).decode() for b in bodies)
    for k in range(3):
        assert f"victim{k}" in text
    # the committed offsets account for every record produced (counted, not end offsets)
    assert await committed_total(kafka.bootstrap_servers, group, topic) == 10_000


async def test_bad_records_go_to_the_topic_dlq_with_reason_and_original_bytes(
    kafka, receiver, make_config
) -> None:

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    good = dumps(auth_stream(200, 1))
    bad = [b"not json", b"[1,2]", b'{"username": "x"}', b"\xff\xfe\xfd"]
    values = good[:100] + bad + good[100:]
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    config = make_config(
        bootstrap=kafka.bootstrap_servers, group=group, topics=[topic], urls=[receiver.url("json")]
    )
    async with running(config) as runtime:
        await wait_until(
            lambda: runtime.stats.records_in >= len(values) and len(receiver.accepted) >= 1,
            60,
            "every record and the alert",
            detail=lambda: runtime.stats,
        )
    assert runtime.stats.events == 200
    assert runtime.stats.dead_letters == 4
    seen = [
        orjson.loads(r.value)
        for r in await read_records(kafka.bootstrap_servers, f"{topic}.dlq", 4)
    ]
    import base64

    assert sorted(d["reason"] for d in seen) == sorted(
        ["not_json", "not_object", "missing_field", "not_utf8"]
    )
    assert {base64.b64decode(d["raw_b64"]) for d in seen} == set(bad)
    assert all(d["source"]["topic"] == topic and d["source"]["offset"] >= 100 for d in seen)
    assert await committed_total(kafka.bootstrap_servers, group, topic) == len(values)
