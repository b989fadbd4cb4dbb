"""The same end-to-end path against a real Apache Kafka image, where a Docker engine exists.

Our CI machines have no Docker engine: there the test is skipped with the reason, within
milliseconds (``docker.from_env()`` fails fast).
"""

from __future__ import annotations

import uuid

import pytest

from tests.runtimes import running
from tests.streams import auth_stream, committed_total, dumps, produce
from tests.waiting import wait_until


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


async def test_brute_force_end_to_end_on_apache_kafka(apache_kafka, receiver, make_config) -> None:

    topic, group = f"auth-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    stream = auth_stream(2000, 2)
    await produce(apache_kafka, topic, dumps(stream))
    config = make_config(
        bootstrap=apache_kafka,
        kafka={"group_id": group},
        topics=[topic],
        urls=[receiver.url("json")],
    )
    async with running(config) as runtime:
        await wait_until(
            lambda: runtime.stats.records_in >= 2000 and len(receiver.accepted) >= 2,
            60,
            "every record and two alerts",
            detail=lambda: runtime.stats,
        )
    assert len(receiver.accepted) == 2
    assert await committed_total(apache_kafka, group, topic) == 2000
