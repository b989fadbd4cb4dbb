"""Start-up: what a worker does between its start and the first record judged, and how it
knows each step is done without waiting for a timeout. Real Tansu broker throughout; how long
it takes is the benchmark's business (``streamproc bench startup``), not a test's."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

import streamproc
from streamproc.config import parse_config, parse_config_text
from streamproc.ops.broker import ensure_topics
from streamproc.pipeline.runtime import Judge, Runtime
from streamproc.pipeline.startup import LOG_PREFIX, Startup
from streamproc.sources.kafka import KafkaSource
from streamproc.storage.checkpoints import KafkaCheckpointer
from streamproc.storage.tables import TopicTable
from tests.streams import auth_stream, dumps, produce
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def _kafka_config(bootstrap: str, topic: str, **kafka: Any) -> Any:
    return parse_config(
        {
            "kafka": {
                "bootstrap_servers": bootstrap,
                "group_id": f"g-{uuid.uuid4().hex[:8]}",
                **kafka,
            },
            "topics": [{"topic": topic, "family": "auth-logs"}],
        },
        file=None,
    )


async def test_empty_changelogs_are_known_empty_from_one_end_offsets_request_without_a_read(
    kafka,
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    config = _kafka_config(kafka.bootstrap_servers, topic)
    await ensure_topics(config.kafka.client_kwargs(), {topic: 3})
    tps = [TopicPartition(topic, p) for p in range(3)]
    judge = Judge(config)
    writer = KafkaCheckpointer(config.kafka, judge)
    await writer.start()
    try:
        await writer.ensure_changelogs({topic: 3})
        assert await writer.restore_all(tps) == dict.fromkeys(tps)
        assert (writer.end_offset_requests, writer.reads) == (1, 0)
        # one partition gets a checkpoint: only that one is read back
        binding = config.bindings[0].name
        judge.engine((binding, topic, 1))
        assert await writer.checkpoint({tps[1]: 42}) == {tps[1]: 42}
    finally:
        await writer.stop()
    reader = KafkaCheckpointer(config.kafka, Judge(config))
    await reader.start()
    try:
        assert await reader.restore_all(tps) == {tps[0]: None, tps[1]: 42, tps[2]: None}
        assert reader.end_offset_requests == 1
        assert reader.reads == 2  # partition 1's manifest, then its chunks; 0 and 2 unread
    finally:
        await reader.stop()


async def test_a_table_is_caught_up_by_the_high_watermark_of_its_fetches_not_by_a_timeout(
    kafka,
) -> None:
    cfg = _kafka_config(kafka.bootstrap_servers, "unused").kafka
    empty, full = f"table-{uuid.uuid4().hex[:8]}", f"table-{uuid.uuid4().hex[:8]}"
    await ensure_topics(cfg.client_kwargs(), {empty: 3, full: 3})
    # one batched produce: Tansu's end offsets are wrong after it, the fetch's high
    # watermark is not
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=50)
    await producer.start()
    futures = [await producer.send(full, b"%d" % i, partition=i % 3) for i in range(60)]
    await asyncio.gather(*futures)
    applied: dict[str, list[Any]] = {empty: [], full: []}
    tables = [TopicTable(cfg, t, applied[t].extend, name=t) for t in (empty, full)]
    try:
        for table in tables:
            await table.start()
            assert table.caught_up_by == "high watermark"
        assert applied[empty] == []
        assert sorted(int(r.value) for r in applied[full]) == list(range(60))
        # what is acknowledged before caught_up() is applied when it returns
        await producer.send_and_wait(full, b"60", partition=0)
        assert await tables[1].caught_up(timeout=5.0)
        assert tables[1].caught_up_by == "high watermark"
        assert applied[full][-1].value == b"60"
    finally:
        for table in tables:
            await table.stop()
        await producer.stop()


async def test_the_only_member_takes_every_partition_and_restores_before_start_returns(
    kafka,
) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    config = _kafka_config(kafka.bootstrap_servers, topic)
    await ensure_topics(config.kafka.client_kwargs(), {topic: 3})
    await produce(
        kafka.bootstrap_servers,
        topic,
        [b'{"n": %d}' % i for i in range(30)],
        [b"k%d" % (i % 5) for i in range(30)],
    )
    hooked: list[list[TopicPartition]] = []

    async def restore(assigned: list[TopicPartition]) -> None:
        hooked.append(sorted(assigned))

    everything = [TopicPartition(topic, p) for p in range(3)]
    source = KafkaSource(config.kafka, topics=[topic], exclusive=True)
    source.assign_hooks.append(restore)
    await source.start()
    try:
        # no group join to wait for: assigned, and the hooks (restore) already ran
        assert hooked == [everything]
        assert sorted(source.consumer.assignment()) == everything
        seen = 0
        while seen < 30:
            batch = await source.next_batch(timeout=5.0)
            assert batch is not None
            seen += len(batch.records)
            await source.commit(batch)
            source.done(batch)
    finally:
        await source.stop()
    # a restart resumes at the group's committed offsets
    again = KafkaSource(config.kafka, topics=[topic], exclusive=True)
    await again.start()
    try:
        assert await again.next_batch(timeout=1.0) is None
    finally:
        await again.stop()
    # a pattern may match topics created later: only a group subscription finds them
    assert not KafkaSource(config.kafka, pattern="auth-.*", exclusive=True).exclusive


async def test_the_first_record_judged_is_logged_with_its_phases_and_kept_as_a_gauge(
    kafka, tmp_path, caplog
) -> None:
    from streamproc.ops.metrics import Metrics

    topic = f"auth-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka.bootstrap_servers, topic, dumps(auth_stream(50, 1)), [b"u"] * 50)
    config = parse_config_text(f"""
kafka: {{bootstrap_servers: "{kafka.bootstrap_servers}", group_id: {group}}}
topics: [{{topic: {topic}, family: auth-logs}}]
notify: {{urls: ["json://127.0.0.1:9/"]}}
state_dir: {tmp_path}
""")
    config.kafka.embedded = True  # as `streamproc run` marks the broker it started itself
    metrics = Metrics(process_metrics=False)
    startup = Startup()
    runtime = Runtime(config, metrics=metrics, startup=startup)
    caplog.set_level(logging.INFO, logger="streamproc.pipeline.startup")
    await runtime.start()
    try:
        await wait_until(lambda: runtime.stats.records_in >= 50, 15, "the 50 records")
    finally:
        await runtime.stop()
    assert runtime.stats.records_in == 50
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(LOG_PREFIX)]
    assert len(lines) == 1, lines  # once, for the first batch only
    for phase in ("topics", "notify", "group_join", "restore", "first_fetch"):
        assert phase in startup.phases and f"{phase} " in lines[0]
    # judging does not wait for delivery's side (notify/, its tables, the alert-log reader)
    assert startup.phases["notify"][0] < startup.phases["group_join"][0]
    # on the time line: restored before the first fetch is judged
    assert startup.phases["restore"][1] <= startup.phases["first_fetch"][0] + 1e-6
    first = metrics.value("streamproc_startup_seconds", {"phase": "first_record"})
    assert first == pytest.approx(startup.first_record)
    for phase in ("restore", "notify"):
        assert metrics.value("streamproc_startup_seconds", {"phase": phase}) == pytest.approx(
            startup.seconds(phase)
        )


def test_a_phase_counts_its_first_time_only_so_a_later_rebalance_is_not_start_up() -> None:
    startup = Startup(started=0.0)
    startup.begin("restore", at=1.0)
    startup.end("restore", "3 partitions")
    first = startup.phases["restore"]
    startup.begin("restore")
    startup.end("restore", "1 partitions")
    assert startup.phases["restore"] == first
    assert startup.notes["restore"] == "3 partitions"


def test_a_worker_started_by_the_supervisor_counts_from_the_supervisors_start(monkeypatch) -> None:
    from streamproc.pipeline.startup import STARTED_ENV, process_started

    own = process_started()
    monkeypatch.setenv(STARTED_ENV, repr(own - 2.5))
    startup = Startup.of_run()
    assert startup.started == own - 2.5
    assert startup.phases["supervisor"] == (0.0, pytest.approx(2.5))
    assert STARTED_ENV not in os.environ  # not handed down any further
    # a restarted worker (no variable) counts from its own start
    assert Startup.of_run().started == own


def test_the_process_start_is_read_to_the_clock_tick_not_to_the_boot_second() -> None:
    # psutil's create_time() counts from the boot time rounded down to the second: a process
    # seemed to have started up to a second before it did
    before = time.time()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from streamproc.pipeline.startup import process_started\n"
            "print(repr(process_started()))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=True,
    )
    after = time.time()
    # a start is read in clock ticks (10 ms), rounded down
    assert before - 0.03 <= float(out.stdout) <= after


def test_a_route_or_inhibit_rule_delivery_would_refuse_stops_the_run_before_it_starts(
    tmp_path,
) -> None:
    # the notifier is built while the sources already consume (Apprise loads meanwhile), so
    # what it would refuse is checked with the config, each problem at its line
    config = tmp_path / "streamproc.yaml"
    config.write_text(
        "notify:\n  routes:\n    - match: {nonsense: 1}\n      tags: [x]\n"
        "  inhibit_rules:\n    - equal: [host]\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "run",
            "-c",
            str(config),
            "--alerts-file",
            str(tmp_path / "a.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=tmp_path,
    )
    assert out.returncode == 1
    assert f"{config}:3: notify.routes[0].match: unknown condition 'nonsense'" in out.stderr
    assert f"{config}:6: notify.inhibit_rules[0]: needs source and target" in out.stderr
    assert "broker" not in out.stderr  # nothing was started


def _env() -> dict[str, str]:
    """For a new interpreter: this checkout's streamproc first."""
    home = str(Path(streamproc.__file__).resolve().parent.parent)
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH")) if p)
    )
