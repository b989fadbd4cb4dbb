"""The Kafka source's records: KafkaRecords built in C, and ConsumerRecords for everyone else."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.structs import ConsumerRecord

from streamproc.config import KafkaConfig
from streamproc.ops.broker import ensure_topics
from streamproc.sources.kafka import KafkaSource
from streamproc.sources.kafka_records import KafkaRecord, installed

pytestmark = pytest.mark.kafka

SENT = [(b"alice", b'{"n": 1}'), (None, b'{"n": 2}'), (b"bob", None), (b"alice", b"not json")]


async def _produce(bootstrap: str, topic: str) -> None:
    await ensure_topics({"bootstrap_servers": bootstrap}, {topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in SENT:
            await producer.send_and_wait(topic, value, key=key, headers=[("h", b"1")])
    finally:
        await producer.stop()


async def _fetch_all(source: KafkaSource) -> list[object]:
    got: list[object] = []
    for _ in range(30):
        batch = await source.next_batch(timeout=1.0)
        if batch is not None:
            got.extend(batch.records)
            source.done(batch)
        if len(got) >= len(SENT):
            break
    return got


async def test_the_source_hands_out_kafka_records_with_every_field_the_pipeline_reads(
    kafka,
) -> None:
    topic = f"records-{uuid.uuid4().hex[:8]}"
    await _produce(kafka.bootstrap_servers, topic)
    cfg = KafkaConfig(kafka.bootstrap_servers, group_id=f"g-{uuid.uuid4().hex[:8]}")
    source = KafkaSource(cfg, topics=[topic], exclusive=True)
    await source.start()
    try:
        got = await _fetch_all(source)
    finally:
        await source.stop()
    # fails when an aiokafka release changes the record factory the fast path swaps
    assert installed()
    assert [type(r) for r in got] == [KafkaRecord] * len(SENT)
    assert [(r.key, r.value, r.topic, r.partition, r.offset) for r in got] == [  # type: ignore[attr-defined]
        (key, value, topic, 0, i) for i, (key, value) in enumerate(SENT)
    ]


async def test_other_consumers_in_the_process_still_get_whole_consumer_records(kafka) -> None:
    topic = f"records-{uuid.uuid4().hex[:8]}"
    await _produce(kafka.bootstrap_servers, topic)
    cfg = KafkaConfig(kafka.bootstrap_servers, group_id=f"g-{uuid.uuid4().hex[:8]}")
    source = KafkaSource(cfg, topics=[topic], exclusive=True)
    await source.start()  # installs the fast path for the whole process
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await _fetch_all(source)
        got: list[ConsumerRecord] = []
        for _ in range(30):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(records)
            if len(got) >= len(SENT):
                break
    finally:
        await consumer.stop()
        await source.stop()
    assert installed()
    # aiokafka's own factory, not a wrapper that would slow every other consumer
    assert PartitionRecords._consumer_record.__module__ == "aiokafka.consumer.fetcher"
    assert all(type(r) is ConsumerRecord for r in got)
    assert [(r.key, r.value, r.headers) for r in got] == [(k, v, (("h", b"1"),)) for k, v in SENT]
    assert all(r.timestamp > 0 for r in got)
