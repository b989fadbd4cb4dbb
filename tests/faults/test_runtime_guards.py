"""Memory guard: over --max-memory, consumption pauses (records stay in Kafka) and resumes
below; nothing is dropped."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streamproc.commands.run import parse_size
from streamproc.ops.metrics import Metrics
from tests.runtimes import running
from tests.streams import auth_stream, committed_total, dumps, produce
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def test_sizes_parse_like_an_operator_writes_them() -> None:
    assert parse_size("512M") == 512 << 20
    assert parse_size("2G") == 2 << 30
    assert parse_size("1.5GiB") == int(1.5 * (1 << 30))
    assert parse_size("1000") == 1000


async def test_memory_guard_pauses_consumption_without_dropping_records(
    kafka, receiver, make_config
) -> None:
    topic, group = f"auth-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(3000, 1)
    await produce(kafka.bootstrap_servers, topic, dumps(stream))
    config = make_config(
        bootstrap=kafka.bootstrap_servers,
        group=group,
        topics=[topic],
        urls=[receiver.url()],
        notify={"group_by": None},
    )
    metrics = Metrics(process_metrics=False)
    # a limit far below any Python process: the guard must pause before the first fetch
    async with running(config, metrics=metrics, max_memory=1 << 20) as runtime:
        await wait_until(lambda: runtime.paused, 4, "the memory guard to pause consumption")
        await asyncio.sleep(2)
        seen_while_paused = runtime.stats.records_in
        assert metrics.value("streamproc_consumption_paused") == 1
        assert seen_while_paused < 3000
        runtime.max_memory = 1 << 40  # the limit is lifted (memory freed, say)
        await wait_until(
            lambda: runtime.stats.records_in >= 3000 and len(receiver.accepted) >= 1,
            30,
            "every record and the alert after the limit was lifted",
            detail=lambda: runtime.stats,
        )
    assert runtime.stats.records_in == 3000, runtime.stats
    assert runtime.stats.alerts == 1, runtime.stats
    assert len(receiver.accepted) == 1
    assert await committed_total(kafka.bootstrap_servers, group, topic) == 3000
