"""The host agent: psutil samples that decode cleanly as host-metrics, over MQTT (with a Last
Will when it dies) and Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from streamproc.commands.agent import (
    HostSampler,
    mqtt_topic_for,
    parse_status,
    run_agent,
    status_topic_for,
)
from streamproc.config import load_config, parse_config_text
from streamproc.contracts import get_contract
from streamproc.decode import RecordDecoder
from streamproc.events import Event
from streamproc.ops.broker import ensure_topics, free_port
from tests.brokers import start_mosquitto
from tests.streams import read_records


def _mqtt_config(tmp_path: Path, port: int, extra: str = "") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n{extra}")
    return path


async def _collect(client: aiomqtt.Client, want: Any, timeout: float = 20.0) -> list[Any]:
    """Messages until ``want(messages)`` is true (or the timeout: the caller asserts)."""
    got: list[Any] = []

    async def loop() -> None:
        async for message in client.messages:
            got.append(message)
            if want(got):
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop(), timeout)
    return got


def test_a_sample_has_the_contract_fields_and_disk_percent_is_the_fullest_mount() -> None:
    sample = HostSampler("edge-1", 10.0).sample()
    for name in (
        "timestamp",
        "host",
        "cpu_percent",
        "memory_percent",
        "disk_percent",
        "load_average",
        "process_count",
        "net_bytes_sent",
        "net_bytes_recv",
    ):
        assert name in sample, name
    assert sample["disks"] and sample["disk_percent"] == max(sample["disks"].values())
    event = RecordDecoder(get_contract("host-metrics")).decode(orjson.dumps(sample), "t")
    assert isinstance(event, Event), event


def test_mqtt_topic_replaces_the_binding_wildcard_with_the_host() -> None:
    default = parse_config_text("mqtt: {host: 127.0.0.1}\n")
    assert mqtt_topic_for(default, "edge-7") == "streamproc/host-metrics/edge-7"
    custom = parse_config_text(
        "mqtt: {host: 127.0.0.1}\n"
        "topics:\n  - family: host-metrics\n    source: mqtt\n"
        "    mqtt_topic: site/a/+/metrics\n"
    )
    assert mqtt_topic_for(custom, "edge/7") == "site/a/edge_7/metrics"


@pytest.mark.mqtt
async def test_agent_publishes_samples_that_decode_cleanly_as_host_metrics(
    mosquitto: Any, tmp_path: Path
) -> None:
    host = f"edge-{uuid.uuid4().hex[:8]}"
    config = load_config(_mqtt_config(tmp_path, mosquitto.port))
    decoder = RecordDecoder(get_contract("host-metrics"))
    topic = mqtt_topic_for(config, host)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe(topic, qos=1)
        sent = await run_agent(config, host=host, interval=0.1, count=3)
        got = await _collect(sub, lambda m: len(m) >= 3)
    assert sent == 3
    assert len(got) == 3
    for message in got:
        assert message.qos == 1 and not message.retain
        event = decoder.decode(message.payload, str(message.topic))
        assert isinstance(event, Event), event
        assert event.data["host"] == host


@pytest.mark.mqtt
async def test_clean_stop_marks_the_host_offline_with_reason_stopped(
    mosquitto: Any, tmp_path: Path
) -> None:
    host = f"edge-{uuid.uuid4().hex[:8]}"
    config = load_config(_mqtt_config(tmp_path, mosquitto.port))
    await run_agent(config, host=host, interval=0.05, count=1)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe(status_topic_for(host), qos=1)
        got = await _collect(sub, lambda m: len(m) >= 1)
    assert got and got[0].retain  # a late subscriber still learns the host's state
    status = parse_status(got[0].payload)
    assert status is not None
    assert (status["host"], status["status"], status["reason"]) == (host, "offline", "stopped")


@pytest.mark.mqtt
async def test_killed_agent_publishes_its_last_will_at_once(mosquitto: Any, tmp_path: Path) -> None:
    host = f"edge-{uuid.uuid4().hex[:8]}"
    config_path = _mqtt_config(tmp_path, mosquitto.port)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe(status_topic_for(host), qos=1)
        await sub.subscribe(f"streamproc/host-metrics/{host}", qos=1)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamproc.commands.cli",
                "agent",
                "-c",
                str(config_path),
                "--interval",
                "0.2",
                "--host-name",
                host,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            running = await _collect(
                sub, lambda m: any("host-metrics" in str(x.topic) for x in m), timeout=30
            )
            assert any("host-metrics" in str(m.topic) for m in running), proc.stderr
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

            def offline(messages: list[Any]) -> bool:
                return any(
                    (parse_status(m.payload) or {}).get("status") == "offline" for m in messages
                )

            after = await _collect(sub, offline, timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if proc.stderr:
                proc.stderr.close()
    statuses = [parse_status(m.payload) for m in running + after if "host-status" in str(m.topic)]
    assert statuses[0] is not None and statuses[0]["status"] == "online"
    last = statuses[-1]
    assert last is not None
    assert (last["status"], last["reason"]) == ("offline", "connection lost")


@pytest.mark.mqtt
async def test_samples_taken_while_the_broker_is_down_are_sent_once_it_is_up(
    tmp_path: Path,
) -> None:
    port = free_port()
    host = f"edge-{uuid.uuid4().hex[:8]}"
    config = load_config(_mqtt_config(tmp_path, port))
    agent = asyncio.create_task(run_agent(config, host=host, interval=0.1, count=3))
    await asyncio.sleep(1.0)  # the agent is retrying against nothing
    broker, _ = start_mosquitto(port=port)
    try:
        # persistence is off, so subscribe quickly and let the agent's backoff catch up.
        async with aiomqtt.Client(
            "127.0.0.1", port, identifier=f"sub-{host}", clean_session=True
        ) as sub:
            await sub.subscribe(f"streamproc/host-metrics/{host}", qos=1)
            sent = await asyncio.wait_for(agent, 30)
            got = await _collect(sub, lambda m: len(m) >= 3, timeout=10)
    finally:
        broker.proc.terminate()
        broker.proc.wait(5)
    assert sent == 3
    assert len(got) >= 3  # buffered samples included
    hosts = {orjson.loads(m.payload)["host"] for m in got}
    assert hosts == {host}


@pytest.mark.kafka
async def test_agent_publishes_to_kafka_keyed_by_host(kafka: Any, tmp_path: Path) -> None:
    topic = f"agent-hm-{uuid.uuid4().hex[:8]}"
    host = "edge-kafka-1"
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"kafka:\n  bootstrap_servers: {kafka.bootstrap_servers}\n"
        f"topics:\n  - topic: {topic}\n    family: host-metrics\n"
    )
    config = load_config(path)
    assert config.kafka is not None
    await ensure_topics(config.kafka.client_kwargs(), {topic: 1})
    sent = await run_agent(config, to="kafka", host=host, interval=0.05, count=2)
    records = await read_records(kafka.bootstrap_servers, topic, 2)
    assert sent == 2 and len(records) == 2
    decoder = RecordDecoder(get_contract("host-metrics"))
    for r in records:
        assert r.key == host.encode()
        assert isinstance(decoder.decode(r.value, topic), Event)


def test_a_last_will_becomes_a_host_metrics_record_stamped_when_received() -> None:
    from streamproc.commands.agent import status_payload, status_record

    record = status_record(
        status_payload("edge-9", "offline", "connection lost", 10.0), received_at=1_700_000_000.5
    )
    assert record == {
        "timestamp": 1_700_000_000.5,
        "host": "edge-9",
        "agent_status": "offline",
        "agent_reason": "connection lost",
    }
    event = RecordDecoder(get_contract("host-metrics")).decode(orjson.dumps(record), "t")
    assert isinstance(event, Event) and event.ts == 1_700_000_000.5
    assert status_record(b'{"cpu_percent": 5}', 1.0) is None
    assert status_record(b"\xff", 1.0) is None
