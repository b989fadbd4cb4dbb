"""Start-up: what a worker does between its start and the first record judged, and how it
knows each step is done without waiting for a timeout. Real Tansu broker throughout; how long
it takes is the benchmark's business (``streamproc bench startup``), not a test's."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from streamproc.config import parse_config_text
from streamproc.runtime import Runtime
from streamproc.startup import LOG_PREFIX, Startup
from tests.streams import auth_stream, dumps, produce

pytestmark = pytest.mark.kafka


async def test_the_first_record_judged_is_logged_with_its_phases_and_kept_as_a_gauge(
        kafka, tmp_path, caplog) -> None:
    from streamproc.metrics import Metrics

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka.bootstrap_servers, topic, dumps(auth_stream(50, 1)),
                  [b"u"] * 50)
    config = parse_config_text(f"""
kafka: {{bootstrap_servers: "{kafka.bootstrap_servers}", group_id: {group}}}
topics: [{{topic: {topic}, family: auth-logs}}]
notify: {{urls: ["json://127.0.0.1:9/"]}}
state_dir: {tmp_path}
""")
    metrics = Metrics(process_metrics=False)
    startup = Startup()
    runtime = Runtime(config, metrics=metrics, startup=startup)
    caplog.set_level(logging.INFO, logger="streamproc.startup")
    await runtime.start()
    try:
        for _ in range(300):
            if runtime.stats.records_in >= 50:
                break
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert runtime.stats.records_in == 50
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(LOG_PREFIX)]
    assert len(lines) == 1, lines  # once, for the first batch only
    for phase in ("topics", "notify", "group_join", "restore", "first_fetch"):
        assert phase in startup.phases and f"{phase} " in lines[0]
    # on the time line: restored before the first fetch is judged
    assert startup.phases["restore"][1] <= startup.phases["first_fetch"][0] + 1e-6
    first = metrics.value("streamproc_startup_seconds", {"phase": "first_record"})
    assert first == pytest.approx(startup.first_record)
    for phase in ("restore", "notify"):
        assert metrics.value("streamproc_startup_seconds", {"phase": phase}) == \
            pytest.approx(startup.seconds(phase))


def test_a_phase_counts_its_first_time_only_so_a_later_rebalance_is_not_start_up() -> None:
    startup = Startup(started=0.0)
    startup.begin("restore", at=1.0)
    startup.end("restore", "3 partitions")
    first = startup.phases["restore"]
    startup.begin("restore")
    startup.end("restore", "1 partitions")
    assert startup.phases["restore"] == first
    assert startup.notes["restore"] == "3 partitions"

