"""``streamproc agent``: the edge host agent.

Every ``--interval`` seconds (default 10) it samples this host with psutil and publishes one
host-metrics record (the contract in ``topics/host-metrics.yaml``, plus extra fields)::

    {"timestamp": "2024-05-01T12:00:00.000Z", "host": "edge-7",
     "cpu_percent": 12.5, "memory_percent": 41.0,
     "disk_percent": 88.1,                      # the fullest mount
     "disks": {"/": 40.2, "/var": 88.1},        # every mount
     "load_average": 0.42, "load_average_5": 0.3, "load_average_15": 0.2,
     "swap_percent": 0.0, "process_count": 187,
     "net_bytes_sent": 123, "net_bytes_recv": 456, "net_packets_sent": 7, ...,
     "interval": 10.0, "agent": "streamproc-agent/0.1.0"}

To MQTT: QoS 1, not retained, to the host-metrics binding's MQTT topic with the wildcard
replaced by the host (``streamproc/host-metrics/edge-7``). The agent also keeps a *status*
topic, ``streamproc/host-status/<host>`` (retained, QoS 1): ``online`` when it connects,
``offline`` with reason ``stopped`` on a clean stop, and, registered as the MQTT Last Will,
``offline`` with reason ``connection lost``, which the broker publishes the moment the agent
dies or its link drops (after 1.5 keepalives at most), so ``host_silent`` need not wait for
3 missed intervals. The status topic is outside the host-metrics filter on purpose: a Will's
payload is fixed at connect time, so it cannot carry a valid event time.

To Kafka: the host-metrics binding's Kafka topic, key = host, acks from every in-sync replica.

Overhead: one sample is a handful of /proc reads (~2-5 ms of CPU); ``cpu_percent`` is measured
since the previous sample (``interval=None``, never blocking). At 10 s that is far below 1 % of
a core. Samples taken while the broker is unreachable are kept (the last ``BUFFER`` of them) and
sent on reconnect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import psutil

from .. import __version__
from ..config import Config, MqttConfig, load_config
from ..contracts import get_contract
from ..errors import ConfigError, SourceError
from ..ops.redact import register_secret
from ..sources.base import STATUS_PREFIX as _STATUS_TOPICS

log = logging.getLogger(__name__)

AGENT = f"streamproc-agent/{__version__}"
STATUS_PREFIX = _STATUS_TOPICS.rstrip("/")
BUFFER = 360  # samples kept while the broker is unreachable (1 h at 10 s)
# Mount types that say nothing about a disk filling up.
_PSEUDO_FS = frozenset(
    {
        "squashfs",
        "tmpfs",
        "devtmpfs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "iso9660",
        "nsfs",
        "autofs",
        "devfs",
        "ramfs",
        "overlayfs-lower",
    }
)


class HostSampler:
    """Takes host-metrics samples. Keeps psutil's CPU baseline between calls."""

    def __init__(self, host: str, interval: float) -> None:
        self.host = host
        self.interval = interval
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline

    def disks(self) -> dict[str, float]:
        out: dict[str, float] = {}
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=False):
            if part.fstype in _PSEUDO_FS or part.mountpoint in out:
                continue
            # A device mounted twice (bind mounts) reports the same usage twice.
            if part.device and part.device in seen and part.device.startswith("/dev/"):
                continue
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except (PermissionError, OSError):
                continue  # unreadable or vanished mount
            if usage.total == 0:
                continue
            seen.add(part.device)
            out[part.mountpoint] = round(usage.percent, 1)
        if not out:  # containers without partitions listed: the root file system
            with contextlib.suppress(OSError):
                out["/"] = round(psutil.disk_usage("/").percent, 1)
        return out

    def sample(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        disks = self.disks()
        record: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(now, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "host": self.host,
            "cpu_percent": round(psutil.cpu_percent(interval=None), 1),
            "memory_percent": round(psutil.virtual_memory().percent, 1),
            "disk_percent": max(disks.values()) if disks else None,
            "disks": disks,
        }
        try:
            load1, load5, load15 = psutil.getloadavg()
            record.update(
                load_average=round(load1, 2),
                load_average_5=round(load5, 2),
                load_average_15=round(load15, 2),
            )
        except (AttributeError, OSError):
            pass
        with contextlib.suppress(OSError, RuntimeError):
            record["swap_percent"] = round(psutil.swap_memory().percent, 1)
        record.update(self.network())
        with contextlib.suppress(OSError):
            record["process_count"] = len(psutil.pids())
        record["interval"] = self.interval
        record["agent"] = AGENT
        if record["disk_percent"] is None:
            del record["disk_percent"]
        return record

    @staticmethod
    def network() -> dict[str, int]:
        """Cumulative counters since boot over every interface but loopback."""
        totals = dict.fromkeys(
            (
                "net_bytes_sent",
                "net_bytes_recv",
                "net_packets_sent",
                "net_packets_recv",
                "net_errors_in",
                "net_errors_out",
                "net_drops_in",
                "net_drops_out",
            ),
            0,
        )
        try:
            per_nic = psutil.net_io_counters(pernic=True)
        except OSError:
            return {}
        for name, c in per_nic.items():
            if name == "lo" or name.startswith("lo"):
                continue
            totals["net_bytes_sent"] += c.bytes_sent
            totals["net_bytes_recv"] += c.bytes_recv
            totals["net_packets_sent"] += c.packets_sent
            totals["net_packets_recv"] += c.packets_recv
            totals["net_errors_in"] += c.errin
            totals["net_errors_out"] += c.errout
            totals["net_drops_in"] += c.dropin
            totals["net_drops_out"] += c.dropout
        return totals


# -- topics ----------------------------------------------------------------------------------


def _safe_segment(host: str) -> str:
    """A host name usable as one MQTT topic level."""
    return "".join("_" if ch in "/+#\0" else ch for ch in host) or "unknown"


def mqtt_topic_for(config: Config, host: str) -> str:
    """The concrete topic for this host: the host-metrics MQTT binding's filter (or the
    contract's default) with its wildcard levels replaced by the host name."""
    topic_filter = get_contract("host-metrics").mqtt_topic
    for binding in config.bindings:
        if binding.family == "host-metrics" and binding.mqtt_topic:
            topic_filter = binding.mqtt_topic
            break
    levels = topic_filter.split("/")
    if levels[-1] == "#":
        levels[-1] = "+"
    if "+" not in levels:
        return topic_filter
    segment = _safe_segment(host)
    return "/".join(segment if level == "+" else level for level in levels)


def kafka_topic_for(config: Config) -> str:
    for binding in config.bindings:
        if binding.family == "host-metrics" and binding.source == "kafka" and binding.topic:
            return binding.topic
    return get_contract("host-metrics").kafka_topic


def status_topic_for(host: str) -> str:
    return f"{STATUS_PREFIX}/{_safe_segment(host)}"


def status_payload(
    host: str, status: str, reason: str, interval: float, now: float | None = None
) -> bytes:
    now = time.time() if now is None else now
    return orjson.dumps(
        {
            "host": host,
            "status": status,
            "reason": reason,
            "interval": interval,
            "since": datetime.fromtimestamp(now, UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "agent": AGENT,
        }
    )


def parse_status(payload: bytes) -> dict[str, Any] | None:
    """A status message (``online``/``offline``) from ``streamproc/host-status/<host>``, or
    None when the payload is not one. For the runtime's host_silent wiring."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if (
        not isinstance(doc, dict)
        or doc.get("status") not in ("online", "offline")
        or not isinstance(doc.get("host"), str)
    ):
        return None
    return doc


def status_record(payload: bytes, received_at: float) -> dict[str, Any] | None:
    """A status message turned into a host-metrics record the decoder accepts, stamped with
    the time it was received (a Will carries no usable time of its own)::

        {"timestamp": received_at, "host": "edge-7", "agent_status": "offline",
         "agent_reason": "connection lost"}

    For the runtime: subscribe to ``streamproc/host-status/+`` and feed these records to the
    host-metrics binding, so a detector can react to ``agent_status`` at once (host_silent must
    then not count such a record as a sample). None when the payload is not a status."""
    status = parse_status(payload)
    if status is None:
        return None
    return {
        "timestamp": received_at,
        "host": status["host"],
        "agent_status": status["status"],
        "agent_reason": str(status.get("reason", "")),
    }


# -- publishers ------------------------------------------------------------------------------

Publish = Callable[[dict[str, Any]], Awaitable[None]]


async def _tick_loop(
    sampler: HostSampler, publish: Publish, interval: float, count: int | None, stop: asyncio.Event
) -> int:
    """Sample on a fixed schedule (no drift; a late tick is skipped, never doubled)."""
    sent = 0
    start = time.monotonic()
    tick = 0
    while count is None or sent < count:
        await publish(sampler.sample())
        sent += 1
        if count is not None and sent >= count:
            break
        tick += 1
        now = time.monotonic()
        next_at = start + tick * interval
        if next_at < now:  # we fell behind (suspend, slow broker): realign
            tick = int((now - start) / interval) + 1
            next_at = start + tick * interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), next_at - now)
        if stop.is_set():
            break
    return sent


async def run_mqtt(
    config: Config, host: str, interval: float, count: int | None, stop: asyncio.Event
) -> int:
    import aiomqtt

    from ..sources.mqtt import make_client

    cfg = config.mqtt or MqttConfig()
    topic = mqtt_topic_for(config, host)
    status_topic = status_topic_for(host)
    will = aiomqtt.Will(
        status_topic,
        status_payload(host, "offline", "connection lost", interval),
        qos=1,
        retain=True,
    )
    sampler = HostSampler(host, interval)
    pending: deque[bytes] = deque(maxlen=BUFFER)
    client_id = f"streamproc-agent-{_safe_segment(host)}"[:64]
    # Keepalive ~ the interval: the broker declares us dead (and sends the Will) within 1.5x.
    keepalive = max(5, min(int(cfg.keepalive), int(interval * 2) or 5))
    cfg_for_agent = dataclasses.replace(cfg, keepalive=keepalive)
    delay = 0.5
    sent_total = 0
    while not stop.is_set():
        client = make_client(cfg_for_agent, client_id=client_id, persistent=False, will=will)
        try:
            async with client:
                delay = 0.5
                await client.publish(
                    status_topic,
                    status_payload(host, "online", "started", interval),
                    qos=1,
                    retain=True,
                )
                log.info(
                    "agent %s publishing to mqtt %s:%d topic %s every %.1fs",
                    host,
                    cfg.host,
                    cfg.port,
                    topic,
                    interval,
                )
                while pending:
                    await client.publish(topic, pending[0], qos=1)
                    pending.popleft()

                async def publish(record: dict[str, Any], client: aiomqtt.Client = client) -> None:
                    payload = orjson.dumps(record)
                    pending.append(payload)
                    await client.publish(topic, payload, qos=1)
                    pending.pop()

                remaining = None if count is None else count - sent_total
                sent_total += await _tick_loop(sampler, publish, interval, remaining, stop)
                # A clean stop: say so, so nobody waits for a Will that never comes.
                await client.publish(
                    status_topic,
                    status_payload(host, "offline", "stopped", interval),
                    qos=1,
                    retain=True,
                )
                return sent_total
        except aiomqtt.MqttCodeError as exc:
            code = getattr(getattr(exc, "rc", None), "value", getattr(exc, "rc", None))
            if code in (4, 5, 134, 135):
                # Mosquitto answers a wrong password with "not authorised" (5 / 135).
                why = (
                    "bad user name or password"
                    if code in (4, 134)
                    else "not authorised (wrong user name or password, or an ACL)"
                )
                raise SourceError(
                    f"MQTT broker {cfg.host}:{cfg.port} refused the agent: "
                    f"{why}; check mqtt.username and mqtt.password"
                ) from None
            log.warning("MQTT %s:%d: %s; reconnecting in %.1fs", cfg.host, cfg.port, exc, delay)
        except aiomqtt.MqttError as exc:
            log.warning(
                "MQTT %s:%d unavailable (%s); reconnecting in %.1fs", cfg.host, cfg.port, exc, delay
            )
        # Keep sampling while disconnected, so the gap is filled once the broker is back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        pending.append(orjson.dumps(sampler.sample()))
        delay = min(delay * 2, max(interval, 5.0))
    return sent_total


async def run_kafka(
    config: Config, host: str, interval: float, count: int | None, stop: asyncio.Event
) -> int:
    from aiokafka import AIOKafkaProducer

    if config.kafka is None:
        raise ConfigError(
            "agent --to kafka needs a 'kafka' section with bootstrap_servers",
            file=config.file,
            hint="add kafka: {bootstrap_servers: HOST:9092}",
        )
    topic = kafka_topic_for(config)
    producer = AIOKafkaProducer(
        **config.kafka.client_kwargs(), acks="all", client_id=f"streamproc-agent-{host}"
    )
    await producer.start()
    key = host.encode()
    try:
        log.info(
            "agent %s publishing to kafka %s topic %s every %.1fs",
            host,
            config.kafka.bootstrap_servers,
            topic,
            interval,
        )

        async def publish(record: dict[str, Any]) -> None:
            await producer.send_and_wait(topic, orjson.dumps(record), key=key)

        return await _tick_loop(HostSampler(host, interval), publish, interval, count, stop)
    finally:
        await producer.stop()


async def run_agent(
    config: Config,
    *,
    to: str = "mqtt",
    host: str | None = None,
    interval: float = 10.0,
    count: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Publish samples until ``count`` are sent or ``stop`` is set; returns how many."""
    if interval <= 0:
        raise ConfigError("--interval must be > 0 seconds")
    host = host or socket.gethostname()
    stop = stop or asyncio.Event()
    if config.mqtt is not None:
        register_secret(config.mqtt.password)
    if config.kafka is not None:
        register_secret(config.kafka.sasl_password)
    if to == "kafka":
        return await run_kafka(config, host, interval, count, stop)
    return await run_mqtt(config, host, interval, count, stop)


def main(args: argparse.Namespace) -> int:
    from ..ops.logs import setup_logging

    setup_logging(getattr(args, "log_level", "INFO"), getattr(args, "log_format", "text"))
    config = load_config(args.config)

    async def amain() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await run_agent(
            config,
            to=args.to,
            host=args.host_name,
            interval=args.interval,
            count=args.count,
            stop=stop,
        )

    sent = asyncio.run(amain())
    log.info("agent stopped after %d samples", sent)
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    from .cli import main as cli_main

    sys.exit(cli_main(["agent", *sys.argv[1:]]))
