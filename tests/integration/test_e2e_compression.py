"""Real topics are often compressed: every Kafka codec is read (gzip, snappy, lz4, zstd)."""

from __future__ import annotations

import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamproc.ops.broker import ensure_topics
from tests.configs import binding
from tests.runtimes import running
from tests.streams import BASE_TS, committed_total
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


async def test_compressed_topics_of_every_codec_are_consumed(kafka, receiver, make_config) -> None:
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
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[binding(t, keyed_by="username") for t in topics.values()],
        urls=[receiver.url()],
        notify={"rate": 0},
    )
    async with running(config) as runtime:
        await wait_until(
            lambda: len(receiver.accepted) >= 4, 30, "an alert from each codec's topic"
        )
    assert runtime.stats.dead_letters == 0
    assert runtime.stats.alerts_by_kind == {"brute_force": 4}
    text = " ".join(orjson.dumps(r["json"]).decode() for r in receiver.accepted)
    for codec in topics:
        assert f"user-{codec}" in text
    for topic in topics.values():
        assert await committed_total(kafka.bootstrap_servers, group, topic) == 5
