"""More than one deployment on one cluster, more than one worker in a deployment: internal
topics are the deployment's own, and silences and the notification log are shared by all of
its workers. Real Tansu, real workers, real receivers."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streamproc.config import parse_config_text
from streamproc.runtime import Runtime
from tests.streams import auth_stream, committed_total, dumps, produce

pytestmark = pytest.mark.kafka


def _deployment(bootstrap: str, topic: str, group: str, url: str, state_dir: Path) -> str:
    # no alert_topic: the default names are under test
    return f"""
kafka:
  bootstrap_servers: {bootstrap}
  group_id: {group}
topics:
  - topic: {topic}
    family: auth-logs
notify:
  urls: ["{url}"]
  group_wait: 0s
  group_by: [fingerprint]
state:
  checkpoint_interval: 1
state_dir: {state_dir}
"""


async def _run(runtime: Runtime, n: int, alerts: int, receiver, timeout: float = 40) -> None:
    await runtime.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline and not (
                runtime.stats.records_in >= n and len(receiver.accepted) >= alerts):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything extra that was going to arrive
    finally:
        await runtime.stop()


async def test_two_deployments_on_one_cluster_each_judge_every_record_with_their_own_state_and_alerts(
        kafka, make_receiver, tmp_path) -> None:
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    stream = auth_stream(5000, 3)
    await produce(kafka.bootstrap_servers, topic, dumps(stream),
                  [e["username"].encode() for e in stream])
    runs = []
    for name in ("blue", "green"):  # one after the other: the second finds the first's topics
        group = f"{name}-{uuid.uuid4().hex[:8]}"
        receiver = make_receiver()
        config = parse_config_text(_deployment(kafka.bootstrap_servers, topic, group,
                                               receiver.url(), tmp_path / name))
        runtime = Runtime(config)
        await _run(runtime, len(stream), 3, receiver)
        runs.append((group, runtime, receiver))
    for group, runtime, receiver in runs:
        assert runtime.stats.records_in == len(stream), group  # judged, not skipped
        assert runtime.stats.alerts_by_kind.get("brute_force") == 3, group
        assert len(receiver.accepted) == 3, (group, receiver.accepted)  # none of the other's
        assert await committed_total(kafka.bootstrap_servers, group, topic) == len(stream)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    for group, _, _ in runs:
        assert {f"{group}.alerts", f"{group}.state.{topic}"} <= existing
