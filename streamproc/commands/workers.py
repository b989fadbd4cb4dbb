"""``streamproc run --workers N``: N processes in one Kafka consumer group.

Kafka is the distributed engine: every worker is an ordinary consumer-group member, so the
group coordinator spreads the partitions over the workers of one machine and of every other
machine that runs the same config (same ``group_id``). Each worker owns its partitions'
state (restored from the changelog when a partition moves: storage/checkpoints.py), and the
alert log is read by a second group, so each alert is delivered by exactly one worker. Each
worker keeps its own ``state_dir/worker-N``; what all of them must see alike is read by each
from the deployment's topics: silences (notify/silences.py) and the notification log
(notify/sharedlog.py).

This module only supervises: it starts the workers as child processes, restarts one that
dies (with backoff), forwards SIGTERM/SIGINT, and waits for them. With the embedded broker it
starts the broker first and hands its address to the workers.

MQTT bindings: with ``mqtt.shared_group`` set, every worker subscribes to
``$share/<group>/<filter>`` and the broker splits the messages; without it only worker 0
subscribes (a plain subscription in N workers would process every message N times).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..storage.files import private_dir

if TYPE_CHECKING:
    from ..http.listener import ListenAddress

log = logging.getLogger("streamproc.commands.workers")


def default_workers(config: Config) -> int:
    if config.kafka is None:
        return 1  # embedded demo and MQTT-only: one process
    return os.cpu_count() or 1


def listen_address(args: argparse.Namespace) -> ListenAddress | None:
    """Where ``run`` serves HTTP: ``--listen``, else ``--metrics-host:--metrics-port``."""
    if not getattr(args, "listen", None) and getattr(args, "metrics_port", None) is None:
        return None  # no HTTP: the listener's aiohttp (0.3 s of start-up) is not imported
    from ..http.listener import ListenAddress

    if getattr(args, "listen", None):
        return ListenAddress.parse(args.listen)
    return ListenAddress(args.metrics_host, args.metrics_port)


def child_argv(args: argparse.Namespace, index: int, bootstrap: str | None) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "streamproc.commands.cli",
        "run",
        "--workers",
        "1",
        "--worker-index",
        str(index),
        "--log-level",
        args.log_level,
        "--log-format",
        args.log_format,
    ]
    if args.config:
        argv += ["-c", args.config]
    if bootstrap:
        argv += ["--kafka-bootstrap", bootstrap]
    if args.alerts_file:
        argv += ["--alerts-file", args.alerts_file]
    address = listen_address(args)
    if address is not None:
        argv += ["--listen", str(address.offset(index))]
    if args.exit_when_idle is not None:
        argv += ["--exit-when-idle", str(args.exit_when_idle)]
    if args.watch_config:
        argv += ["--watch-config"]
    if args.max_memory:
        argv += ["--max-memory", args.max_memory]
    if getattr(args, "embedded_console", False):
        argv += ["--embedded-console"]
    return argv


def run_workers(args: argparse.Namespace, config: Config) -> int:
    workers = args.workers
    broker: Any = None
    bootstrap = args.kafka_bootstrap
    if config.kafka is None and config.mqtt is None and not bootstrap:
        import asyncio

        from ..config import KafkaConfig
        from ..ops.broker import EmbeddedKafka
        from .run import feed_samples

        private_dir(config.state_dir)
        broker = EmbeddedKafka(log_file=config.state_dir / "tansu.log").start()
        bootstrap = broker.bootstrap_servers
        log.info("embedded broker on %s for %d workers", bootstrap, workers)
        config.kafka = kafka = KafkaConfig(bootstrap_servers=bootstrap, embedded=True)
        if args.demo:
            from ..ops.broker import ensure_topics

            async def prepare() -> int:
                await ensure_topics(
                    kafka.client_kwargs(),
                    {b.topic: 3 for b in config.kafka_bindings if b.topic},
                )
                return await feed_samples(config)

            log.info("demo: fed %d sample records", asyncio.run(prepare()))
        args.embedded_console = True
    procs: dict[int, subprocess.Popen[bytes]] = {}
    restarts: dict[int, float] = {}
    stopping = False

    started = getattr(args, "startup", None)

    def start(i: int) -> None:
        env = None
        if started is not None and i not in restarts:  # a worker's first start counts ours
            from ..pipeline.startup import STARTED_ENV

            env = dict(os.environ, **{STARTED_ENV: repr(started.started)})
        procs[i] = subprocess.Popen(child_argv(args, i, bootstrap), env=env)
        log.info("worker %d started (pid %d)", i, procs[i].pid)

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for i in range(workers):
        start(i)
    rc = 0
    try:
        while procs:
            time.sleep(0.2)
            for i, p in list(procs.items()):
                code = p.poll()
                if code is None:
                    continue
                if stopping or code == 0:
                    del procs[i]
                    rc = rc or code
                    continue
                delay = 1.0 if time.monotonic() - restarts.get(i, 0) > 60 else 10.0
                log.error("worker %d exited with %d; restarting in %.0fs", i, code, delay)
                restarts[i] = time.monotonic()
                time.sleep(delay)
                if not stopping:
                    start(i)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if broker is not None:
            broker.stop()
    return rc
