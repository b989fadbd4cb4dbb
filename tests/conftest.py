"""Shared fixtures: real brokers and real HTTP receivers, started once, in one place.

- ``kafka``: a Tansu broker (the embedded one) on a free loopback port, per test session.
- ``mosquitto``: our own Mosquitto on a free loopback port with deliberate queue limits
  (amqtt as the fallback where the binary is missing).
- ``secure_broker``: a Mosquitto that takes TLS and a password only, per test module.
- ``receiver``/``make_receiver``: a local HTTP server that Apprise ``json://``/``form://`` URLs
  post to (``streamproc.bench.receivers.Receiver``, the notify bench's receiver run in this
  process); it records every request and can be told to fail, stall or rate-limit.
- ``make_config``/``write_config``: a config (parsed, or written to a file for a subprocess)
  from the parts a test varies (tests/configs.py), its ``state_dir`` in ``tmp_path``.
- ``alertmanager``: a real Prometheus Alertmanager (``/usr/bin/prometheus-alertmanager``,
  clustering off) whose one receiver is a webhook to a ``Receiver``; skipped without the
  binary.

How they start lives in tests/brokers.py, which tests that need a broker of their own import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from streamproc.bench.receivers import Receiver

from streamproc.config import Config, parse_config_text
from streamproc.ops.broker import EmbeddedKafka, free_port
from streamproc.ops.processes import stop_process
from tests.brokers import (
    MOSQUITTO_PASSWD,
    MqttBroker,
    SecureBroker,
    mosquitto_binary,
    start_mosquitto,
    start_secure_mosquitto,
    wait_port,
)
from tests.configs import config_text


@pytest.fixture(scope="session")
def kafka() -> Iterator[EmbeddedKafka]:
    broker = EmbeddedKafka(log_file=Path(tempfile.gettempdir()) / "streamproc-test-tansu.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MqttBroker]:
    try:
        broker, _ = start_mosquitto()
    except FileNotFoundError:
        broker = _start_amqtt()
    yield broker
    if broker.proc is not None:
        broker.proc.terminate()
        broker.proc.wait(5)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    if MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto_passwd is not installed (it ships with mosquitto)")
    pytest.importorskip("cryptography")
    broker = start_secure_mosquitto(tmp_path_factory.mktemp("mosq-tls"))
    try:
        yield broker
    finally:
        broker.proc.terminate()
        broker.proc.wait(5)


def _start_amqtt() -> MqttBroker:
    try:
        import amqtt  # noqa: F401
    except ImportError:
        pytest.skip("neither mosquitto nor amqtt is installed (apt-get install mosquitto)")
    port = free_port()
    code = (
        "import asyncio\nfrom amqtt.broker import Broker\n"
        f"cfg={{'listeners':{{'default':{{'type':'tcp','bind':'127.0.0.1:{port}'}}}},"
        "'auth':{'allow-anonymous':True}}\n"
        "async def m():\n  b=Broker(cfg); await b.start(); await asyncio.Event().wait()\n"
        "asyncio.run(m())\n"
    )
    proc = subprocess.Popen(["python", "-c", code], start_new_session=True)
    wait_port("127.0.0.1", port)
    return MqttBroker("127.0.0.1", port, proc, kind="amqtt")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_receiver() -> Iterator[Any]:
    made: list[Receiver] = []

    def factory() -> Receiver:
        r = Receiver()
        made.append(r)
        return r

    yield factory
    for r in made:
        r.close()


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """``make_config(bootstrap=..., group=..., topics=[...], urls=[...], ...)``: the parsed
    ``config_text`` of those parts, with ``state_dir`` in ``tmp_path`` unless given."""

    def make(**parts: Any) -> Config:
        parts.setdefault("state_dir", tmp_path)
        return parse_config_text(config_text(**parts))

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """``write_config(path=None, **parts)``: ``config_text`` of the parts written to ``path``
    (``tmp_path/streamproc.yaml`` by default), for ``streamproc`` run as a subprocess."""

    def write(path: Path | None = None, **parts: Any) -> Path:
        parts.setdefault("state_dir", tmp_path)
        path = path or tmp_path / "streamproc.yaml"
        path.write_text(config_text(**parts))
        return path

    return write


class Alertmanager:
    """A running Alertmanager; ``hook`` is the Receiver its webhook posts to."""

    def __init__(self, port: int, proc: Any, hook: Receiver, workdir: Path) -> None:
        self.port, self.proc, self.hook, self.workdir = port, proc, hook, workdir

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self) -> list[dict[str, Any]]:
        """What Alertmanager holds now: GET /api/v2/alerts."""
        import urllib.request

        with urllib.request.urlopen(f"{self.base}/api/v2/alerts", timeout=5) as resp:
            return list(orjson.loads(resp.read()))


ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """group_wait 0s, group_interval 1s, one group per alert, resolves sent."""
    import urllib.request

    binary = (
        ALERTMANAGER_BIN
        if os.path.exists(ALERTMANAGER_BIN)
        else shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    )
    if binary is None:
        pytest.skip(
            "prometheus-alertmanager is not installed (Debian package "
            "prometheus-alertmanager; .ci/run installs it)"
        )
    hook = Receiver()
    workdir = tmp_path / "alertmanager"
    workdir.mkdir()
    conf = workdir / "alertmanager.yml"
    conf.write_text(
        "route:\n"
        "  receiver: hook\n"
        "  group_by: ['...']\n"
        "  group_wait: 0s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 4h\n"
        "receivers:\n"
        "  - name: hook\n"
        "    webhook_configs:\n"
        f"      - url: {hook.url('http', '/am')}\n"
        "        send_resolved: true\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={conf}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "stderr.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    am = Alertmanager(port, proc, hook, workdir)
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{am.base}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            hook.close()
            raise RuntimeError(
                "Alertmanager did not start: " + (workdir / "stderr.log").read_text()[-2000:]
            )
        time.sleep(0.05)
    yield am
    stop_process(proc)
    hook.close()
