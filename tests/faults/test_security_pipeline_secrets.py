"""The whole pipeline runs with known secrets (an MQTT password over TLS, a notify URL with a
token in its path, a dead channel with a password in its URL) and no log line (text or JSON),
metric, dead-letter record or state file contains any of them."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from pathlib import Path

import aiomqtt
import orjson
import pytest

from streamproc.config import parse_config_text
from streamproc.ops.broker import free_port
from streamproc.ops.logs import make_handler, setup_logging
from streamproc.ops.metrics import Metrics
from streamproc.ops.redact import clear_secrets, register_config_secrets
from tests.brokers import SECURE_PASSWORD, SECURE_USER
from tests.certificates import tls_context
from tests.streams import auth_stream
from tests.waiting import wait_until

pytestmark = pytest.mark.mqtt

PATH_TOKEN = "Pth-T0ken-8f3a9c2e"
DEAD_PASSWORD = "Dead-Chan-Pw-5521"


async def test_no_secret_reaches_logs_metrics_dead_letters_or_state(
    secure_broker,
    receiver,
    tmp_path: Path,
) -> None:
    from streamproc.pipeline.runtime import Runtime

    prefix = f"s{uuid.uuid4().hex[:8]}"
    dead_port = free_port()  # nothing listens: every delivery there fails and is logged
    state_dir = tmp_path / "state"
    config = parse_config_text(f"""
mqtt:
  host: 127.0.0.1
  port: {secure_broker.port}
  username: {SECURE_USER}
  password: {SECURE_PASSWORD}
  tls: {{ca_file: {secure_broker.ca_file}}}
  client_id: sp-{prefix}
  qos: 1
  dead_letter_file: {state_dir}/dead-letters.jsonl
topics:
  - family: auth-logs
    source: mqtt
    mqtt_topic: {prefix}/auth/#
notify:
  urls:
    - "{receiver.url("json", f"/hook/{PATH_TOKEN}")}"
    - "json://alerts:{DEAD_PASSWORD}@127.0.0.1:{dead_port}/x?cto=1&rto=1"
  group_wait: 0s
  group_by: [fingerprint]
  retry: {{initial: 0.05, max_attempts: 2}}
state_dir: {state_dir}
""")
    text_out, json_out = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    setup_logging("DEBUG", "text", stream=text_out)
    json_handler = make_handler("json", json_out)
    root.addHandler(json_handler)
    register_config_secrets(config)  # what `streamproc run` does at startup
    metrics = Metrics()
    runtime = Runtime(config, metrics=metrics)
    try:
        await runtime.start()
        stream = [orjson.dumps(e) for e in auth_stream(300, 2)]
        async with aiomqtt.Client(
            "127.0.0.1",
            secure_broker.port,
            username=SECURE_USER,
            password=SECURE_PASSWORD,
            tls_context=tls_context(secure_broker.ca_file),
            identifier=f"pub-{prefix}",
        ) as pub:
            for payload in [*stream, b"garbage", b'{"timestamp": 1}']:
                await pub.publish(f"{prefix}/auth/edge-1", payload, qos=1)
        await wait_until(
            lambda: runtime.stats.records_in >= len(stream) + 2 and len(receiver.accepted) >= 2,
            40,
            "every record and two alerts",
            detail=lambda: runtime.stats,
        )
        await asyncio.sleep(1.0)  # let the dead channel's retries fail and log
    finally:
        await runtime.stop()
        for h in list(root.handlers):
            if h not in old_handlers:
                root.removeHandler(h)
        root.setLevel(old_level)
        clear_secrets()

    assert len(receiver.accepted) >= 2  # the pipeline really ran and delivered
    logs = text_out.getvalue() + json_out.getvalue()
    assert logs.count("\n") > 5
    exposition = metrics.exposition().decode()
    assert "streamproc_dead_letters_total" in exposition
    dead_letters = (state_dir / "dead-letters.jsonl").read_bytes()
    assert b"not_json" in dead_letters
    state_files = b"".join(p.read_bytes() for p in state_dir.rglob("*") if p.is_file())
    secrets = [SECURE_PASSWORD, PATH_TOKEN, DEAD_PASSWORD]
    for secret in secrets:
        assert secret not in logs, f"{secret} in logs"
        assert secret not in exposition, f"{secret} in metrics"
        assert secret.encode() not in dead_letters, f"{secret} in dead letters"
        assert secret.encode() not in state_files, f"{secret} in the state directory"
    for request in receiver.accepted:  # the alert itself carries no config secret
        assert not any(s.encode() in request["body"] for s in secrets)
