"""A host agent killed outright: its Last Will makes host_silent fire at once, not after three
missed intervals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.pipeline.runtime import Runtime
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt


async def test_killed_agent_fires_host_silent_through_its_last_will(
    mosquitto, receiver, tmp_path
) -> None:
    text = f"""
mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}, client_id: sp-{uuid.uuid4().hex[:6]},
       qos: 1, dead_letter_file: {tmp_path}/dl.jsonl}}
topics: [{{family: host-metrics, source: mqtt,
          detectors: {{metric_threshold: {{enabled: false}}}}}}]
notify: {{urls: ["{receiver.url()}"], group_wait: 0s, group_by: [fingerprint], rate: 0}}
state_dir: {tmp_path}
"""
    (tmp_path / "c.yaml").write_text(text)
    host = f"edge-{uuid.uuid4().hex[:6]}"
    runtime = Runtime(parse_config_text(text))
    await runtime.start()
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "agent",
            "-c",
            str(tmp_path / "c.yaml"),
            "--interval",
            "1",
            "--host-name",
            host,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:

        def samples_seen() -> int:
            # retained statuses of other tests' agents arrive too: count this host's samples
            for engine in runtime.judge.engines.values():
                for d in engine.detectors:
                    if d.kind == "host_silent" and d.state.get(host) is not None:
                        return d.state.get(host).samples
            return 0

        await wait_until(lambda: samples_seen() >= 3, 30, "three of the agent's samples")
        assert receiver.accepted == []
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        # the broker publishes the Will within 1.5 keepalives (about the interval): far
        # sooner than 3 missed intervals at the 60 s minimum
        await wait_until(lambda: receiver.accepted, 30, "the alert for the agent's Last Will")
    finally:
        if agent.poll() is None:
            agent.kill()
        await runtime.stop()
    assert len(receiver.accepted) == 1
    body = orjson.dumps(receiver.accepted[0]["json"]).decode()
    assert host in body and "stopped reporting" in body
    assert runtime.stats.dead_letters == 0
