"""Kafka end to end: real Tansu broker, real runtime, real Apprise delivery to a local HTTP
receiver."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.pipeline.runtime import Runtime
from tests.streams import auth_config, auth_stream, committed_total, dumps, produce

pytestmark = pytest.mark.kafka


async def _run_until(runtime: Runtime, predicate, timeout: float = 60.0) -> None:
    await runtime.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline and not predicate():
            await asyncio.sleep(0.1)
    finally:
        await runtime.stop()


async def test_ten_thousand_auth_events_with_three_incidents_deliver_exactly_three_alerts(
    kafka, receiver, tmp_path
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(10_000, 3)
    keys = [e["username"].encode() for e in stream]
    await produce(kafka.bootstrap_servers, topic, dumps(stream), keys)
    config = parse_config_text(
        auth_config(kafka.bootstrap_servers, topic, group, receiver.url("json"), tmp_path)
    )
    runtime = Runtime(config)

    def done() -> bool:
        return runtime.stats.records_in >= 10_000 and len(receiver.accepted) >= 3

    await _run_until(runtime, done)
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
    kafka, receiver, tmp_path
) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    good = dumps(auth_stream(200, 1))
    bad = [b"not json", b"[1,2]", b'{"username": "x"}', b"\xff\xfe\xfd"]
    values = good[:100] + bad + good[100:]
    await produce(kafka.bootstrap_servers, topic, values, partitions=1)
    config = parse_config_text(
        auth_config(kafka.bootstrap_servers, topic, group, receiver.url("json"), tmp_path)
    )
    runtime = Runtime(config)
    await _run_until(
        runtime, lambda: runtime.stats.records_in >= len(values) and len(receiver.accepted) >= 1
    )
    assert runtime.stats.events == 200
    assert runtime.stats.dead_letters == 4
    consumer = AIOKafkaConsumer(
        f"{topic}.dlq",
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=f"{group}-dlq-reader",
    )
    await consumer.start()
    try:
        seen = []
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                seen.extend(orjson.loads(m.value) for m in msgs)
            if len(seen) >= 4:
                break
    finally:
        await consumer.stop()
    import base64

    assert sorted(d["reason"] for d in seen) == sorted(
        ["not_json", "not_object", "missing_field", "not_utf8"]
    )
    assert {base64.b64decode(d["raw_b64"]) for d in seen} == set(bad)
    assert all(d["source"]["topic"] == topic and d["source"]["offset"] >= 100 for d in seen)
    assert await committed_total(kafka.bootstrap_servers, group, topic) == len(values)
