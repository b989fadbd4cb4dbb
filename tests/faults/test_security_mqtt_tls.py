"""Transport security against a real Mosquitto started here with a password file and a TLS
certificate made here: the right password connects over TLS; a wrong password, an untrusted
certificate or plain TCP to the TLS port fail with a clear error, never a hang. Covers a raw
aiomqtt client, the MQTT source and the host agent."""

from __future__ import annotations

import asyncio
import os
import ssl

import aiomqtt
import pytest

from streamproc.config import MqttConfig, parse_config_text
from streamproc.errors import SourceError
from tests.brokers import SECURE_PASSWORD, SECURE_USER, SecureBroker
from tests.certificates import tls_context
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt

# A wrong password must fail well within this; a hang would sit here until it expires.
NO_HANG = 20.0


def _mqtt_cfg(broker: SecureBroker, password: str, **kw: object) -> MqttConfig:
    return MqttConfig(
        host="127.0.0.1",
        port=broker.port,
        username=SECURE_USER,
        password=password,
        tls={"ca_file": str(broker.ca_file)},
        client_id=f"sec-{os.getpid()}",
        **kw,
    )  # type: ignore[arg-type]


async def test_right_password_over_tls_connects_and_round_trips_a_message(
    secure_broker: SecureBroker,
) -> None:
    async with aiomqtt.Client(
        "127.0.0.1",
        secure_broker.port,
        username=SECURE_USER,
        password=SECURE_PASSWORD,
        tls_context=tls_context(secure_broker.ca_file),
        identifier="sec-roundtrip",
    ) as client:
        await client.subscribe("sec/roundtrip", qos=1)
        await client.publish("sec/roundtrip", b"hello", qos=1)
        message = await asyncio.wait_for(anext(aiter(client.messages)), NO_HANG)
    assert message.payload == b"hello"


async def test_wrong_password_fails_fast_with_a_clear_reason(secure_broker: SecureBroker) -> None:
    client = aiomqtt.Client(
        "127.0.0.1",
        secure_broker.port,
        username=SECURE_USER,
        password="not-the-password",
        tls_context=tls_context(secure_broker.ca_file),
        identifier="sec-wrong",
        timeout=NO_HANG,
    )
    with pytest.raises(aiomqtt.MqttCodeError) as info:
        await asyncio.wait_for(client.__aenter__(), NO_HANG)
    # MQTT 3.1.1: 4/5; MQTT 5: 134 (bad user name or password) / 135 (not authorized).
    assert getattr(info.value.rc, "value", info.value.rc) in (4, 5, 134, 135)


async def test_untrusted_certificate_is_refused(secure_broker: SecureBroker) -> None:
    client = aiomqtt.Client(
        "127.0.0.1",
        secure_broker.port,
        username=SECURE_USER,
        password=SECURE_PASSWORD,
        tls_context=tls_context(None),
        identifier="sec-untrusted",
        timeout=NO_HANG,
    )
    with pytest.raises(aiomqtt.MqttError) as info:
        await asyncio.wait_for(client.__aenter__(), NO_HANG)
    assert "certificate" in str(info.value).lower() or "ssl" in str(info.value).lower()


async def test_plain_tcp_to_the_tls_port_fails_instead_of_hanging(
    secure_broker: SecureBroker,
) -> None:
    client = aiomqtt.Client(
        "127.0.0.1",
        secure_broker.port,
        username=SECURE_USER,
        password=SECURE_PASSWORD,
        identifier="sec-plain",
        timeout=5,
    )
    with pytest.raises(aiomqtt.MqttError):
        await asyncio.wait_for(client.__aenter__(), NO_HANG)


async def test_mqtt_source_connects_with_tls_and_password(secure_broker: SecureBroker) -> None:
    from streamproc.sources.mqtt import MqttSource

    cfg = _mqtt_cfg(secure_broker, SECURE_PASSWORD, qos=1)
    source = MqttSource(cfg, ["sec/source/#"], start_retries=2)
    await asyncio.wait_for(source.start(), NO_HANG)
    try:
        async with aiomqtt.Client(
            "127.0.0.1",
            secure_broker.port,
            username=SECURE_USER,
            password=SECURE_PASSWORD,
            tls_context=tls_context(secure_broker.ca_file),
            identifier="sec-pub",
        ) as pub:
            await pub.publish("sec/source/a", b'{"x": 1}', qos=1)
        batch = await wait_until(
            lambda: source.next_batch(timeout=0.5), 20, "the message published over TLS"
        )
        assert batch.records[0].value == b'{"x": 1}'
        await source.commit(batch)
    finally:
        await source.stop()


async def test_mqtt_source_reports_a_wrong_password_without_revealing_it(
    secure_broker: SecureBroker,
) -> None:
    from streamproc.sources.mqtt import MqttSource

    wrong = "Wr0ng-Secret-Value"
    source = MqttSource(_mqtt_cfg(secure_broker, wrong), ["sec/x"], start_retries=1)
    with pytest.raises(SourceError) as info:
        await asyncio.wait_for(source.start(), NO_HANG)
    await source.stop()
    message = str(info.value)
    assert "bad user name or password" in message or "not authorised" in message
    assert wrong not in message


async def test_agent_publishes_over_tls_with_password_from_the_yaml_config(
    secure_broker: SecureBroker,
) -> None:
    from streamproc.commands.agent import run_agent

    os.environ["STREAMPROC_TEST_MQTT_PASSWORD"] = SECURE_PASSWORD
    try:
        config = parse_config_text(
            "mqtt:\n  host: 127.0.0.1\n"
            f"  port: {secure_broker.port}\n  username: {SECURE_USER}\n"
            "  password: ${STREAMPROC_TEST_MQTT_PASSWORD}\n"
            f"  tls: {{ca_file: {secure_broker.ca_file}}}\n"
        )
    finally:
        del os.environ["STREAMPROC_TEST_MQTT_PASSWORD"]
    async with aiomqtt.Client(
        "127.0.0.1",
        secure_broker.port,
        username=SECURE_USER,
        password=SECURE_PASSWORD,
        tls_context=tls_context(secure_broker.ca_file),
        identifier="sec-agent-sub",
    ) as sub:
        await sub.subscribe("streamproc/host-metrics/sec-agent", qos=1)
        sent = await asyncio.wait_for(
            run_agent(config, host="sec-agent", interval=0.05, count=2), NO_HANG
        )
        first = await asyncio.wait_for(anext(aiter(sub.messages)), NO_HANG)
    assert sent == 2
    assert b'"host":"sec-agent"' in bytes(first.payload)


async def test_agent_with_a_wrong_password_stops_with_a_clear_error(
    secure_broker: SecureBroker,
) -> None:
    from streamproc.commands.agent import run_agent

    config = parse_config_text(
        "mqtt:\n  host: 127.0.0.1\n"
        f"  port: {secure_broker.port}\n  username: {SECURE_USER}\n  password: Nope-Nope-1\n"
        f"  tls: {{ca_file: {secure_broker.ca_file}}}\n"
    )
    with pytest.raises(SourceError) as info:
        await asyncio.wait_for(run_agent(config, host="sec-bad", interval=0.05, count=1), NO_HANG)
    message = str(info.value)
    assert "refused the agent" in message and "check mqtt.username and mqtt.password" in message
    assert "Nope-Nope-1" not in message


def test_kafka_sasl_ssl_settings_become_aiokafka_client_arguments(
    secure_broker: SecureBroker,
) -> None:
    config = parse_config_text(
        "kafka:\n  bootstrap_servers: 127.0.0.1:9093\n  security_protocol: SASL_SSL\n"
        "  sasl_mechanism: SCRAM-SHA-256\n  sasl_username: sp\n  sasl_password: k-Pw-123\n"
        f"  ssl_cafile: {secure_broker.ca_file}\n"
    )
    assert config.kafka is not None
    kwargs = config.kafka.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("sp", "k-Pw-123")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
