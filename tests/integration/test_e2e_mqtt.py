"""MQTT end to end through a real Mosquitto: detection, and messages published while
streamproc is stopped are processed after it restarts (persistent session, QoS 1)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt
import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.pipeline.runtime import Runtime
from tests.configs import config_text
from tests.streams import auth_stream
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt


def _config(
    broker, prefix: str, client_id: str, url: str, state_dir: Path, protocol: str = "5"
) -> str:
    return config_text(
        mqtt={
            "host": broker.host,
            "port": broker.port,
            "client_id": client_id,
            "qos": 1,
            "protocol": protocol,
            "dead_letter_file": f"{state_dir}/dead-letters.jsonl",
        },
        topics=[{"family": "auth-logs", "source": "mqtt", "mqtt_topic": f"{prefix}/auth/#"}],
        urls=[url],
        state_dir=state_dir,
    )


async def _publish(broker, topic: str, payloads: list[bytes], qos: int = 1) -> None:
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:6]}"
    ) as client:
        for p in payloads:
            await client.publish(topic, p, qos=qos)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_incidents_published_over_mqtt_are_detected(
    mosquitto, receiver, tmp_path, protocol
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    config = parse_config_text(
        _config(mosquitto, prefix, f"sp-{prefix}", receiver.url("json"), tmp_path, protocol)
    )
    stream = auth_stream(2000, 3)
    runtime = Runtime(config)
    await runtime.start()
    try:
        await _publish(
            mosquitto, f"{prefix}/auth/edge-1", [orjson.dumps(e) for e in stream] + [b"garbage"]
        )
        await wait_until(
            lambda: runtime.stats.records_in >= 2001 and len(receiver.accepted) >= 3,
            30,
            "every message and three alerts",
            detail=lambda: runtime.stats,
        )
        await asyncio.sleep(0.5)
    finally:
        await runtime.stop()
    assert runtime.stats.records_in == 2001
    assert runtime.stats.alerts_by_kind.get("brute_force") == 3
    assert len(receiver.accepted) == 3
    dead = [
        orjson.loads(line) for line in (tmp_path / "dead-letters.jsonl").read_bytes().splitlines()
    ]
    assert [d["reason"] for d in dead] == ["not_json"]
    assert dead[0]["source"]["topic"] == f"{prefix}/auth/edge-1"


async def test_message_published_while_stopped_is_processed_after_restart(
    mosquitto, receiver, tmp_path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    text = _config(mosquitto, prefix, f"sp-{prefix}", receiver.url("json"), tmp_path)
    first = Runtime(parse_config_text(text))
    await first.start()
    await first.stop()  # the broker now holds our persistent session

    incident = [e for e in auth_stream(200, 1) if e["username"].startswith("victim")]
    assert len(incident) == 6
    await _publish(mosquitto, f"{prefix}/auth/edge-2", [orjson.dumps(e) for e in incident])

    second = Runtime(parse_config_text(text))
    await second.start()
    try:
        await wait_until(
            lambda: len(receiver.accepted) >= 1 and second.stats.records_in >= 6,
            30,
            "the six messages published while stopped, and their alert",
            detail=lambda: second.stats,
        )
    finally:
        await second.stop()
    assert second.stats.records_in == 6
    assert len(receiver.accepted) == 1
    assert "victim0" in orjson.dumps(receiver.accepted[0]["json"]).decode()


async def test_mqtt_source_reports_an_unreachable_broker_clearly(tmp_path) -> None:
    from streamproc.config import MqttConfig
    from streamproc.errors import SourceError
    from streamproc.ops.broker import free_port
    from streamproc.sources.mqtt import MqttSource

    source = MqttSource(MqttConfig(port=free_port(), client_id="nobody"), ["x/#"], start_retries=1)
    with pytest.raises(SourceError, match="cannot reach MQTT broker"):
        await asyncio.wait_for(source.start(), 20)
    await source.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_retained_messages_are_judged_once_however_often_the_source_reconnects(
    mosquitto, receiver, tmp_path, caplog, protocol
) -> None:
    """A broker sends a topic's retained message to every new subscription, and the source
    subscribes again on each reconnect: four retained failed logins, judged again after a
    reconnect or a restart, would be eight, a brute force that never happened."""
    import logging
    import time

    from streamproc.sources.mqtt import MqttSource, make_client

    prefix = f"t{uuid.uuid4().hex[:8]}"
    client_id = f"sp-{prefix}"
    config = parse_config_text(
        _config(mosquitto, prefix, client_id, receiver.url("json"), tmp_path, protocol)
    )
    now = time.time()
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        for i in range(4):  # each device's last message, kept by the broker
            failure = {
                "timestamp": now - 60 + i,
                "username": "bob",
                "ip_address": "198.51.100.9",
                "success": False,
            }
            await client.publish(f"{prefix}/auth/d{i}", orjson.dumps(failure), qos=1, retain=True)

    def connections() -> int:
        return sum(r.getMessage().startswith("MQTT connected") for r in caplog.records)

    runtime = Runtime(config)
    with caplog.at_level(logging.INFO, "streamproc.sources.mqtt"):
        await runtime.start()
        try:
            await wait_until(lambda: runtime.stats.records_in >= 4, 30, "the retained four")
            # another client takes the session over: the broker drops the source's connection,
            # the source reconnects and subscribes again, its session still there
            async with make_client(config.mqtt, client_id=client_id, persistent=True):
                pass
            await wait_until(lambda: connections() >= 2, 30, "the source to reconnect")
            # a message after the reconnect: once it is judged, so is what came before it
            success = {
                "timestamp": now,
                "username": "ann",
                "ip_address": "10.0.0.1",
                "success": True,
            }
            await _publish(mosquitto, f"{prefix}/auth/d9", [orjson.dumps(success)])
            await wait_until(
                lambda: runtime.stats.records_in >= 5, 30, "the message after the reconnect"
            )
            await asyncio.sleep(0.5)
        finally:
            await runtime.stop()
    assert runtime.stats.records_in == 5
    assert runtime.stats.alerts_by_kind.get("brute_force") is None
    assert receiver.accepted == []
    if protocol == "3.1.1":
        # the broker sent the four again, and the source knew them for payloads it had
        # judged (and any whose ack the takeover overtook: sent again, known too)
        [source] = [s for s in runtime.sources if isinstance(s, MqttSource)]
        assert source.retained_repeats >= 4
    # A restart. MQTT 5 (retain handling 1): a resumed subscription is not new, so the broker
    # sends no copy. MQTT 3.1.1: the new subscription gets the four again, and the digests
    # checkpointed with the state (which holds the four failures) say they were judged.
    again = Runtime(config)
    await again.start()
    try:
        await _publish(mosquitto, f"{prefix}/auth/d9", [orjson.dumps(success)])
        await wait_until(lambda: again.stats.records_in >= 1, 30, "the message after")
        await asyncio.sleep(0.5)
    finally:
        await again.stop()
    [source] = [s for s in again.sources if isinstance(s, MqttSource)]
    assert again.stats.records_in == 1
    assert source.retained_repeats == (4 if protocol == "3.1.1" else 0)
    assert receiver.accepted == []
