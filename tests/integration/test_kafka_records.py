"""The Kafka source's records: KafkaRecords built in C, and ConsumerRecords for everyone else."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.structs import ConsumerRecord

from streamproc.commands.produce import produce_kafka
from streamproc.config import KafkaConfig
from streamproc.ops.broker import ensure_topics
from streamproc.sources.kafka import KafkaSource
from streamproc.sources.kafka_records import (
    KafkaRecord,
    batch_at_a_time,
    install,
    installed,
    light_records,
)

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
    # aiokafka's own record sets and iteration, not the marked consumers' lists
    assert PartitionRecords.__iter__.__module__ == "aiokafka.consumer.fetcher"
    assert "next_fetch_offset" not in vars(PartitionRecords)
    assert [(r.key, r.value, r.headers) for r in got] == [(k, v, (("h", b"1"),)) for k, v in SENT]
    assert all(r.timestamp > 0 for r in got)


# big batches (a producer's, 512 KiB), then one record a batch, then big ones again
BIG, SMALL = 1500, 40


async def _produce_batches(bootstrap: str, topic: str) -> int:
    def items(start: int, n: int) -> list[tuple[str, bytes | None, bytes]]:
        return [
            (topic, b"user-%d" % (i % 7) if i % 5 else None, b"v%d" % i)
            for i in range(start, start + n)
        ]

    await produce_kafka({"bootstrap_servers": bootstrap}, items(0, BIG), partitions={topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for _, key, value in items(BIG, SMALL):
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    await produce_kafka({"bootstrap_servers": bootstrap}, items(BIG + SMALL, BIG), ensure=False)
    return 2 * BIG + SMALL


def _consumer(bootstrap: str, topic: str, *, marked: bool) -> AIOKafkaConsumer:
    extra = {"value_deserializer": light_records} if marked else {}
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **extra,
    )


async def _read(
    consumer: AIOKafkaConsumer, tp: TopicPartition, n: int, sizes: list[int]
) -> tuple[list[object], list[tuple[int, int]]]:
    """Every record up to ``n``, with getmany(max_records=) cycling through ``sizes``;
    and, after each call that returned records, (the last offset + 1, the position)."""
    got: list[object] = []
    positions: list[tuple[int, int]] = []
    calls = idle = 0
    while len(got) < n and idle < 5:  # records lost: the partition's end comes first
        size = sizes[calls % len(sizes)]
        records = (await consumer.getmany(tp, timeout_ms=500, max_records=size)).get(tp, [])
        calls += 1
        idle = 0 if records else idle + 1
        if records:
            got.extend(records)
            positions.append((records[-1].offset + 1, await consumer.position(tp)))
    return got, positions


async def test_getmany_stopping_inside_a_batch_leaves_the_position_after_the_last_record(
    kafka,
) -> None:
    topic = f"records-{uuid.uuid4().hex[:8]}"
    await _produce_batches(kafka.bootstrap_servers, topic)
    tp = TopicPartition(topic, 0)
    install()
    consumer = _consumer(kafka.bootstrap_servers, topic, marked=True)
    await consumer.start()
    try:
        first = (await consumer.getmany(tp, timeout_ms=5000, max_records=7))[tp]
        after_first = await consumer.position(tp)
        second = (await consumer.getmany(tp, timeout_ms=5000, max_records=300))[tp]
        after_second = await consumer.position(tp)
    finally:
        await consumer.stop()
    assert batch_at_a_time()
    assert [type(r) for r in first + second] == [KafkaRecord] * 307
    assert [r.offset for r in first + second] == list(range(307))
    assert (after_first, after_second) == (7, 307)


@pytest.mark.parametrize("sizes", [[1], [7, 300, 1], [256, 257], [5000]])
async def test_getmany_calls_resume_where_the_last_stopped_with_records_equal_to_aiokafkas(
    kafka, sizes: list[int]
) -> None:
    topic = f"records-{uuid.uuid4().hex[:8]}"
    n = await _produce_batches(kafka.bootstrap_servers, topic)
    tp = TopicPartition(topic, 0)
    install()
    marked = _consumer(kafka.bootstrap_servers, topic, marked=True)
    plain = _consumer(kafka.bootstrap_servers, topic, marked=False)
    await marked.start()
    await plain.start()
    try:
        light, positions = await _read(marked, tp, n, sizes)
        whole, plain_positions = await _read(plain, tp, n, sizes)
    finally:
        await marked.stop()
        await plain.stop()
    assert batch_at_a_time()
    # no record skipped, none handed out twice, each call's position after its last record
    assert [r.offset for r in light] == list(range(n))  # type: ignore[attr-defined]
    assert all(end == position for end, position in positions)
    assert all(end == position for end, position in plain_positions)
    assert [type(r) for r in light] == [KafkaRecord] * n
    assert [type(r) for r in whole] == [ConsumerRecord] * n
    fields = ("topic", "partition", "offset", "key", "value")
    assert [tuple(getattr(r, f) for f in fields) for r in light] == [
        tuple(getattr(r, f) for f in fields) for r in whole
    ]
