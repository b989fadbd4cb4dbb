"""End to end: a `streamproc run --listen` process (embedded broker) receives a GitHub
webhook, produces it to cicd-events, its consumer judges it, and the pipeline_failed alert
reaches the alerts file; a replayed delivery is not judged again; a forged one is 401."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamproc.ops.broker import free_port
from tests.paths import SAMPLES
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.kafka

SAMPLES = SAMPLES / "webhooks"
SECRET = "e2e-webhook-secret"


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def _signed(body: bytes, delivery: str, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "workflow_run",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def _failed_run_now() -> bytes:
    """The recorded workflow_run failure, finished a minute ago (a live run refuses event
    times from the future, whatever day the test runs)."""
    payload = json.loads((SAMPLES / "github-workflow_run-failure.json").read_bytes())
    run = payload["workflow_run"]
    now = time.time()
    stamp = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    run["run_started_at"] = run["created_at"] = stamp(now - 460)
    run["updated_at"] = stamp(now - 60)
    return json.dumps(payload).encode()


def _records_in(base: str) -> float:
    _, text = _get(base + "/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("streamproc_records_in_total{") and "cicd-events" in line
    )


def test_github_failure_over_http_fires_pipeline_failed_once_and_a_forgery_is_401(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = tmp_path / "streamproc.yaml"
    config.write_text(
        f"state_dir: {tmp_path}/state\n"
        "ingest:\n  webhooks:\n    github: {secret: ${GH_SECRET}}\n"
    )
    alerts = tmp_path / "alerts.jsonl"
    env = {**os.environ, "GH_SECRET": SECRET}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "run",
            "-c",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--alerts-file",
            str(alerts),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    hook = base + "/api/v1/webhooks/github"
    try:

        def ready() -> bool:
            if _get(base + "/readyz")[0] == 200:
                return True
            assert proc.poll() is None, proc.stdout.read()[-3000:]  # type: ignore[union-attr]
            return False

        wait_until_sync(ready, 90, "the run to become ready", interval=0.2)
        body = _failed_run_now()
        delivery = str(uuid.uuid4())
        status, answer = _post(hook, body, _signed(body, delivery))
        assert (status, answer) == (200, {"accepted": 1, "rejected": 0})

        def pipeline_failed() -> list[dict]:
            if not alerts.exists():
                return []
            return [
                a
                for a in map(json.loads, alerts.read_text().splitlines())
                if a["kind"] == "pipeline_failed"
            ]

        fired = wait_until_sync(pipeline_failed, 60, "the pipeline_failed alert", interval=0.3)
        assert [(a["status"], a["key"]["project"]) for a in fired] == [
            ("firing", "acme/payments-api/CI")
        ]

        status, answer = _post(hook, body, _signed(body, delivery))
        assert status == 200 and answer["duplicate"] is True
        status, _ = _post(hook, body, _signed(body, str(uuid.uuid4()), secret="forged"))
        assert status == 401
        time.sleep(2.0)  # what would have been produced has been consumed by now
        assert _records_in(base) == 1
        _, text = _get(base + "/metrics")
        assert (
            'streamproc_ingest_refused_total{endpoint="webhooks/github",'
            'reason="unauthorized"} 1.0' in text
        )
        assert SECRET not in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert SECRET not in out
    lines = [
        a
        for a in map(json.loads, alerts.read_text().splitlines())
        if a["kind"] == "pipeline_failed"
    ]
    assert len(lines) == 1
