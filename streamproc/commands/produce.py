"""``streamproc produce``: realistic traffic with known incidents, to Kafka, MQTT or files.

    streamproc produce --scenario mixed --events 1000000 --bootstrap 127.0.0.1:9092
    streamproc produce --scenario auth --events 20000 --rate 2000 --to mqtt
    streamproc produce --scenario mixed --events 50000 --to files --out-dir data/

Kafka records are keyed by the family's contract key (username, ip_address, host...) and sent
in pre-built batches (``create_batch``/``send_batch``), one open batch per partition, with the
partition chosen by the Java client's murmur2 partitioner, so keyed detectors see every event
of a key in one partition. Plain ``send()`` is capped near 105k records/s on Tansu; batches
reach several times that (measured: `streamproc bench kafka`, the produce row).

At the end the expected alert counts are printed: a run of ``streamproc run`` or ``replay``
over the produced data should raise exactly those.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contracts import get_contract
from ..pipeline.batches import BatchWriter
from ..traffic import Traffic, generate

log = logging.getLogger(__name__)

# One Kafka batch holds up to this many bytes (aiokafka's default is 16 KiB; bigger batches
# mean fewer requests, which is what limits Tansu).
KAFKA_BATCH_BYTES = 512 * 1024
MAX_IN_FLIGHT_BATCHES = 64


@dataclass(slots=True)
class ProduceResult:
    records: int = 0
    seconds: float = 0.0
    per_topic: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def kafka_topics(config: Any | None, families: Sequence[str]) -> dict[str, str]:
    """family -> Kafka topic: the config's plain-topic binding for the family, else the
    contract's default topic."""
    out = {}
    for family in families:
        topic = get_contract(family).kafka_topic
        if config is not None:
            for b in config.bindings:
                if b.family == family and b.source in ("kafka", "file") and b.topic:
                    topic = b.topic
                    break
        out[family] = topic
    return out


def mqtt_topic_for_key(topic_filter: str, key: str | None) -> str:
    """A concrete topic under a binding's filter: wildcard levels become the (sanitised) key."""
    levels = topic_filter.split("/")
    if levels and levels[-1] == "#":
        levels[-1] = "+"
    segment = "".join("_" if ch in "/+#\0" else ch for ch in (key or "")) or "events"
    return "/".join(segment if level == "+" else level for level in levels)


def kafka_items(traffic: Traffic, topics: dict[str, str]) -> list[tuple[str, bytes | None, bytes]]:
    """(topic, key, value) for every record, all families in event-time order."""
    return [(topics[fam], key, value) for fam, key, value in traffic.merged_bytes()]


async def produce_kafka(
    client_kwargs: dict[str, Any],
    items: Sequence[tuple[str, bytes | None, bytes]],
    *,
    rate: float = 0.0,
    partitions: dict[str, int] | None = None,
    progress: Callable[[int], None] | None = None,
    ensure: bool = True,
) -> ProduceResult:
    """Send ``items`` with pre-built batches; returns how many and how fast.

    ``partitions`` (topic -> count) creates missing topics with that many partitions (default
    3); existing topics keep theirs. ``rate`` > 0 paces sending to that many records/s.
    """
    from aiokafka import AIOKafkaProducer

    from ..ops.broker import ensure_topics

    topics = sorted({t for t, _, _ in items})
    if ensure and topics:
        await ensure_topics(client_kwargs, {t: (partitions or {}).get(t, 3) for t in topics})
    producer = AIOKafkaProducer(
        **client_kwargs,
        acks=1,
        linger_ms=0,
        max_batch_size=KAFKA_BATCH_BYTES,
        max_request_size=max(KAFKA_BATCH_BYTES * 2, 1048576),
    )
    await producer.start()
    result = ProduceResult()
    try:
        writer = BatchWriter(producer)
        for topic in topics:
            await writer.partition_count(topic)
        in_flight: list[asyncio.Future[Any]] = []
        per_topic: dict[str, int] = {}
        for topic, _, _ in items:
            per_topic[topic] = per_topic.get(topic, 0) + 1
        # Pacing: write a slice, then wait for the schedule. Unpaced, slices only bound how
        # much is queued at once (and feed the progress bar).
        slice_n = max(1, int(rate / 50)) if rate > 0 else 50_000
        start = time.perf_counter()
        sent = 0
        for i in range(0, len(items), slice_n):
            chunk = items[i : i + slice_n]
            in_flight.extend(await writer.write(chunk))
            if len(in_flight) >= MAX_IN_FLIGHT_BATCHES:
                await asyncio.gather(*in_flight)
                in_flight.clear()
            sent += len(chunk)
            if rate > 0:
                delay = start + sent / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if progress is not None:
                progress(len(chunk))
        await asyncio.gather(*in_flight)
        result.seconds = time.perf_counter() - start
        result.records = sent
        result.per_topic = per_topic
    finally:
        await producer.stop()
    return result


async def publish_mqtt(
    mqtt_cfg: Any,
    items: Sequence[tuple[str, bytes]],
    *,
    qos: int = 1,
    rate: float = 0.0,
    max_in_flight: int = 200,
    client_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ProduceResult:
    """Publish (topic, payload) pairs through paho's own queue (aiomqtt's ``publish`` awaits
    each message, ~3k msgs/s); QoS 1 keeps at most ``max_in_flight`` unacknowledged
    (Mosquitto drops or disconnects a publisher that floods it: a 100k QoS 1 burst made one
    disconnect the publisher "out of memory"). Returns when every message is written (QoS 0)
    or acknowledged (QoS 1)."""
    from ..sources.mqtt import make_client

    client = make_client(
        mqtt_cfg, client_id=client_id or f"streamproc-produce-{time.time_ns()}", persistent=False
    )
    paho_client = client._client
    paho_client.max_inflight_messages_set(max_in_flight)
    paho_client.max_queued_messages_set(0)  # unbounded: we pace below
    result = ProduceResult()
    chunk = 500
    async with client:
        start = time.perf_counter()
        infos = []
        sent = 0
        for topic, payload in items:
            info = paho_client.publish(topic, payload, qos=qos)
            if qos:
                infos.append(info)
            sent += 1
            result.per_topic[topic] = result.per_topic.get(topic, 0) + 1
            if sent % chunk == 0:
                # Let the network loop write (and read acks); bound what waits in paho's queue.
                await asyncio.sleep(0)
                while (
                    qos
                    and sum(1 for i in infos[-4 * max_in_flight :] if not i.is_published())
                    > 2 * max_in_flight
                ):
                    await asyncio.sleep(0.001)
                if rate > 0:
                    delay = start + sent / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if progress is not None:
                    progress(chunk)
                infos = [i for i in infos if not i.is_published()]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            infos = [i for i in infos if not i.is_published()]
            if not infos and not paho_client._out_packet:
                break
            await asyncio.sleep(0.005)
        result.seconds = time.perf_counter() - start
        result.records = sent
    return result


def mqtt_items(traffic: Traffic, config: Any | None) -> list[tuple[str, bytes]]:
    filters = {}
    for family in traffic.records:
        topic_filter = get_contract(family).mqtt_topic
        if config is not None:
            for b in config.bindings:
                if b.family == family and b.mqtt_topic:
                    topic_filter = b.mqtt_topic
                    break
        filters[family] = topic_filter
    out = []
    for fam, key, value in traffic.merged_bytes():
        out.append((mqtt_topic_for_key(filters[fam], key.decode() if key else None), value))
    return out


def print_expected(traffic: Traffic, out: Any = None) -> None:
    out = out or sys.stdout
    print(
        f"expected alerts ({traffic.scenario}, seed {traffic.seed}, {len(traffic):,} events):",
        file=out,
    )
    for kind, n in traffic.expected.items():
        if n:
            extra = f" (+{traffic.resolved[kind]} resolved)" if traffic.resolved.get(kind) else ""
            print(f"  {kind:<26} {n:>7,}{extra}", file=out)


def main(args: Any) -> int:
    from ..config import KafkaConfig, MqttConfig, load_config
    from ..errors import ConfigError

    config = load_config(args.config) if getattr(args, "config", None) else None
    try:
        traffic = generate(args.scenario, args.events, seed=args.seed)
    except ValueError as exc:
        print(f"streamproc produce: {exc}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{f} {len(r):,}" for f, r in traffic.records.items())
    print(f"generated {len(traffic):,} events ({sizes})", file=sys.stderr)
    if args.to == "files":
        paths = traffic.write_jsonl(args.out_dir)
        for path in paths.values():
            print(f"wrote {path}", file=sys.stderr)
    elif args.to == "kafka":
        if args.bootstrap:
            kcfg = KafkaConfig(bootstrap_servers=args.bootstrap)
            if config is not None and config.kafka is not None:
                kcfg = config.kafka
                kcfg.bootstrap_servers = args.bootstrap
        elif config is not None and config.kafka is not None:
            kcfg = config.kafka
        else:
            raise ConfigError(
                "no Kafka broker to produce to",
                hint="give --bootstrap HOST:PORT, or a config with "
                "kafka.bootstrap_servers, or use --to files",
            )
        topics = kafka_topics(config, list(traffic.records))
        items = kafka_items(traffic, topics)
        result = asyncio.run(produce_kafka(kcfg.client_kwargs(), items, rate=args.rate))
        print(
            f"produced {result.records:,} records in {result.seconds:.2f}s "
            f"({result.rate:,.0f}/s) to {kcfg.bootstrap_servers}: "
            + ", ".join(f"{t} {n:,}" for t, n in sorted(result.per_topic.items())),
            file=sys.stderr,
        )
    else:
        mcfg = config.mqtt if config is not None and config.mqtt is not None else MqttConfig()
        if args.bootstrap:
            host, _, port = args.bootstrap.rpartition(":")
            mcfg.host, mcfg.port = host or mcfg.host, int(port)
        items_m = mqtt_items(traffic, config)
        result = asyncio.run(publish_mqtt(mcfg, items_m, qos=mcfg.qos, rate=args.rate))
        print(
            f"published {result.records:,} messages in {result.seconds:.2f}s "
            f"({result.rate:,.0f}/s) to {mcfg.host}:{mcfg.port} at QoS {mcfg.qos}",
            file=sys.stderr,
        )
    print_expected(traffic)
    return 0


__all__ = [
    "ProduceResult",
    "kafka_items",
    "kafka_topics",
    "main",
    "mqtt_items",
    "print_expected",
    "produce_kafka",
    "publish_mqtt",
]
