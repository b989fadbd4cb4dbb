"""Memory guard: over --max-memory, consumption pauses (records stay in Kafka) and resumes
below; nothing is dropped."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streamproc.commands.run import parse_size
from streamproc.config import parse_config_text
from streamproc.ops.metrics import Metrics
from streamproc.pipeline.runtime import Runtime
from tests.streams import auth_stream, committed_total, dumps, produce

pytestmark = pytest.mark.kafka


def test_sizes_parse_like_an_operator_writes_them() -> None:
    assert parse_size("512M") == 512 << 20
    assert parse_size("2G") == 2 << 30
    assert parse_size("1.5GiB") == int(1.5 * (1 << 30))
    assert parse_size("1000") == 1000


async def test_memory_guard_pauses_consumption_without_dropping_records(
    kafka, receiver, tmp_path
) -> None:
    topic, group = f"auth-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(3000, 1)
    await produce(kafka.bootstrap_servers, topic, dumps(stream))
    config = parse_config_text(f"""
kafka: {{bootstrap_servers: "{kafka.bootstrap_servers}", group_id: {group},
        alert_topic: {group}.alerts}}
topics: [{{topic: {topic}, family: auth-logs}}]
notify: {{urls: ["{receiver.url()}"], group_wait: 0s}}
state_dir: {tmp_path}
""")
    metrics = Metrics(process_metrics=False)
    # a limit far below any Python process: the guard must pause before the first fetch
    runtime = Runtime(config, metrics=metrics, max_memory=1 << 20)
    await runtime.start()
    try:
        for _ in range(40):
            if runtime.paused:
                break
            await asyncio.sleep(0.1)
        assert runtime.paused
        await asyncio.sleep(2)
        seen_while_paused = runtime.stats.records_in
        assert metrics.value("streamproc_consumption_paused") == 1
        assert seen_while_paused < 3000
        runtime.max_memory = 1 << 40  # the limit is lifted (memory freed, say)
        for _ in range(300):
            if runtime.stats.records_in >= 3000 and len(receiver.accepted) >= 1:
                break
            await asyncio.sleep(0.1)
    finally:
        await runtime.stop()
    assert runtime.stats.records_in == 3000, runtime.stats
    assert runtime.stats.alerts == 1, runtime.stats
    assert len(receiver.accepted) == 1
    assert await committed_total(kafka.bootstrap_servers, group, topic) == 3000
