"""Starting MQTT brokers for tests: a plain Mosquitto with deliberate queue limits, and one
that takes only TLS and a password. The fixtures in conftest.py start them; a test that needs
a broker of its own (one started late, on a port chosen in advance) calls these directly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.ops.broker import free_port
from tests.certificates import make_certificates
from tests.waiting import wait_until_sync

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
# The one account of the TLS broker.
SECURE_USER = "streamproc"
SECURE_PASSWORD = "Tls-Test-Pa55word"


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )


class MqttBroker:
    def __init__(self, host: str, port: int, proc: Any = None, kind: str = "mosquitto"):
        self.host, self.port, self.proc, self.kind = host, port, proc, kind


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    def listening() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until_sync(listening, timeout, f"something to listen on {host}:{port}", interval=0.05)


def start_mosquitto(extra_conf: str = "", port: int | None = None) -> tuple[MqttBroker, Path]:
    binary = mosquitto_binary()
    if binary is None:
        raise FileNotFoundError("mosquitto")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="streamproc-mosq-"))
    conf = workdir / "mosquitto.conf"
    # Limits set on purpose: the defaults (1000 queued QoS 1 messages) drop silently.
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 1000\n"
        "max_keepalive 65535\n" + extra_conf
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if extra_conf and "listener" in extra_conf:
        time.sleep(0.3)
    else:
        wait_port("127.0.0.1", port)
    return MqttBroker("127.0.0.1", port, proc), workdir


@dataclass
class SecureBroker:
    port: int
    ca_file: Path
    workdir: Path
    proc: subprocess.Popen[bytes]


def start_secure_mosquitto(workdir: Path) -> SecureBroker:
    """A Mosquitto on a free port that takes TLS (a CA of its own, written to ``workdir``)
    and ``SECURE_USER``/``SECURE_PASSWORD`` only."""
    binary = mosquitto_binary()
    if binary is None or MOSQUITTO_PASSWD is None:
        raise FileNotFoundError("mosquitto" if binary is None else "mosquitto_passwd")
    ca_file, cert_file, key_file = make_certificates(workdir)
    passwd = workdir / "passwd"
    subprocess.run(
        [MOSQUITTO_PASSWD, "-b", "-c", str(passwd), SECURE_USER, SECURE_PASSWORD],
        check=True,
        capture_output=True,
    )
    port = free_port()
    conf = workdir / "mosquitto.conf"
    # Run as the invoking user (Mosquitto drops root to 'mosquitto', who could not read the
    # pytest temp dir).
    user_line = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user_line}per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {passwd}\n"
        "persistence false\n"
        f"listener {port} 127.0.0.1\n"
        f"cafile {ca_file}\ncertfile {cert_file}\nkeyfile {key_file}\n"
        "tls_version tlsv1.2\n"
    )
    log = workdir / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=out, stderr=out, start_new_session=True
        )
    try:
        wait_port("127.0.0.1", port)
    except Exception:  # stop it whatever went wrong, then say what
        proc.terminate()
        proc.wait(5)
        raise
    return SecureBroker(port, ca_file, workdir, proc)
