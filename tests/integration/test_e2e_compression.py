"""Real topics are often compressed: every Kafka codec is read (gzip, snappy, lz4, zstd)."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamproc.config import parse_config_text
from streamproc.ops.broker import ensure_topics
from streamproc.pipeline.runtime import Runtime
from tests.streams import BASE_TS, committed_total

pytestmark = pytest.mark.kafka


async def test_compressed_topics_of_every_codec_are_consumed(kafka, receiver, tmp_path) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    topics = {
        codec: f"auth-{codec}-{uuid.uuid4().hex[:6]}" for codec in ("gzip", "snappy", "lz4", "zstd")
    }
    for codec, topic in topics.items():
        await ensure_topics({"bootstrap_servers": kafka.bootstrap_servers}, {topic: 1})
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers, compression_type=codec, linger_ms=20
        )
        await producer.start()
        try:
            for i in range(5):  # one brute force per topic
                await producer.send(
                    topic,
                    orjson.dumps(
                        {
                            "timestamp": BASE_TS + i,
                            "username": f"user-{codec}",
                            "ip_address": "192.0.2.10",
                            "success": False,
                        }
                    ),
                    key=b"k",
                )
        finally:
            await producer.stop()
    bindings = "\n".join(
        f"  - {{topic: {t}, family: auth-logs, keyed_by: username}}" for t in topics.values()
    )
    config = parse_config_text(f"""
kafka: {{bootstrap_servers: "{kafka.bootstrap_servers}", group_id: {group},
        alert_topic: {group}.alerts}}
topics:
{bindings}
notify: {{urls: ["{receiver.url()}"], group_wait: 0s, group_by: [fingerprint], rate: 0}}
state_dir: {tmp_path}
""")
    runtime = Runtime(config)
    await runtime.start()
    try:
        for _ in range(300):
            if len(receiver.accepted) >= 4:
                break
            await asyncio.sleep(0.1)
    finally:
        await runtime.stop()
    assert runtime.stats.dead_letters == 0
    assert runtime.stats.alerts_by_kind == {"brute_force": 4}
    text = " ".join(orjson.dumps(r["json"]).decode() for r in receiver.accepted)
    for codec in topics:
        assert f"user-{codec}" in text
    for topic in topics.values():
        assert await committed_total(kafka.bootstrap_servers, group, topic) == 5
