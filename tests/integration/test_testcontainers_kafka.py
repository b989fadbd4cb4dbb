"""The same end-to-end path against a real Apache Kafka image, where a Docker engine exists.

Our CI machines have no Docker engine: there the test is skipped with the reason, within
milliseconds (``docker.from_env()`` fails fast).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.streams import auth_stream, committed_total, dumps, produce


@pytest.fixture(scope="module")
def apache_kafka():
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine here
        pytest.skip(f"no Docker engine available for testcontainers ({type(exc).__name__})")
    try:
        from testcontainers.kafka import KafkaContainer
    except ImportError:  # pragma: no cover - newer testcontainers layouts
        from testcontainers.community.kafka import KafkaContainer  # type: ignore[no-redef]
    with KafkaContainer("apache/kafka:3.9.1").with_kraft() as container:
        yield container.get_bootstrap_server()


async def test_brute_force_end_to_end_on_apache_kafka(apache_kafka, receiver, tmp_path) -> None:
    from streamproc.config import parse_config_text
    from streamproc.pipeline.runtime import Runtime

    topic, group = f"auth-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    stream = auth_stream(2000, 2)
    await produce(apache_kafka, topic, dumps(stream))
    config = parse_config_text(f"""
kafka: {{bootstrap_servers: "{apache_kafka}", group_id: {group}}}
topics: [{{topic: {topic}, family: auth-logs}}]
notify: {{urls: ["{receiver.url("json")}"], group_wait: 0s, group_by: [fingerprint]}}
state_dir: {tmp_path}
""")
    runtime = Runtime(config)
    await runtime.start()
    try:
        for _ in range(600):
            if runtime.stats.records_in >= 2000 and len(receiver.accepted) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await runtime.stop()
    assert len(receiver.accepted) == 2
    assert await committed_total(apache_kafka, group, topic) == 2000
