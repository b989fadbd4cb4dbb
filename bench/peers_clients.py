"""The contestants of the peers scenario that are not streamproc, each run as a process of its
own (so that its peak memory is its own):

    python -m streamproc.bench.peers_clients raw --bootstrap H:P --topic T --events N
    python -m streamproc.bench.peers_clients bytewax --bootstrap H:P --topic T --events N \
        --alerts-topic OUT

Each reads the topic from the earliest offset until it has seen N records and prints one JSON
line: ``{"first": t, "first_count": c, "end": t, "count": n}`` (wall-clock epoch seconds of
the first record seen, how many came with it, and of the N-th).

- raw: aiokafka ``getmany`` without a group, counting records and nothing else: what the
  transport gives one Python process.
- raw-light: the same loop with the records streamproc's Kafka source asks aiokafka for
  (``streamproc.sources.kafka_records``): what the transport gives streamproc.
- bytewax: Bytewax's own Kafka connectors and operators for the brute_force rule, as a
  Bytewax user writes it: JSON-decode, keep failures, key by username + ip_address,
  ``stateful_map`` over the failure times of the last hour (both edges inclusive, 5 fire,
  then quiet for an hour), alerts to ``--alerts-topic`` as JSON
  ``{"username", "ip_address", "first_ms", "fired_ms"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from datetime import datetime
from typing import Any

THRESHOLD = 5
WINDOW_MS = 3_600_000
REALERT_MS = WINDOW_MS


class Progress:
    """When the first record and the N-th were seen."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first: float | None = None
        self.first_count = 0
        self.end: float | None = None

    def add(self, k: int) -> None:
        if self.first is None:
            self.first = time.time()
            self.first_count = k
        self.count += k
        if self.end is None and self.count >= self.n:
            self.end = time.time()

    def report(self) -> str:
        return json.dumps(
            {
                "first": self.first,
                "first_count": self.first_count,
                "end": self.end,
                "count": self.count,
            }
        )


async def raw(
    bootstrap: str, topic: str, n: int, timeout: float = 300.0, *, light: bool = False
) -> Progress:
    from aiokafka import AIOKafkaConsumer

    extra: dict[str, Any] = {}
    if light:
        from streamproc.sources.kafka_records import install, light_records

        install()
        extra["value_deserializer"] = light_records
    progress = Progress(n)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **extra,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while progress.count < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got = sum(map(len, batches.values()))
            if got:
                progress.add(got)
    finally:
        await consumer.stop()
    return progress


def brute_force_step(state: Any, event: dict[str, Any]) -> tuple[Any, Any]:
    """One failure of one (username, ip_address): (new state, alert or None)."""
    ts = round(datetime.fromisoformat(event["timestamp"]).timestamp() * 1000)
    times, quiet_until = state if state is not None else (deque(), None)
    times.append(ts)
    while times[0] < ts - WINDOW_MS:
        times.popleft()
    alert = None
    if len(times) >= THRESHOLD and (quiet_until is None or ts >= quiet_until):
        alert = {
            "username": event["username"],
            "ip_address": event["ip_address"],
            "first_ms": times[0],
            "fired_ms": ts,
        }
        quiet_until = ts + REALERT_MS
    return (times, quiet_until), alert


def bytewax_flow(bootstrap: str, topic: str, alerts_topic: str, progress: Progress) -> Any:
    import orjson
    from bytewax import operators as op
    from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
    from bytewax.dataflow import Dataflow

    flow = Dataflow("peers-brute-force")
    # tail=False: the dataflow ends at the end of each partition; the default batch_size
    # (1000) was as fast as 10,000 here
    messages = op.input("auth", flow, KafkaSource([bootstrap], [topic], tail=False))
    loads = orjson.loads
    add = progress.add

    def failure(msg: Any) -> dict[str, Any] | None:
        add(1)
        event = loads(msg.value)
        return None if event["success"] else event

    failures = op.filter_map("failures", messages, failure)
    keyed = op.key_on("user_ip", failures, lambda e: f"{e['username']}\x00{e['ip_address']}")
    judged = op.stateful_map("brute_force", keyed, brute_force_step)
    fired = op.filter_map(
        "fired",
        judged,
        lambda kv: None if kv[1] is None else KafkaSinkMessage(kv[0].encode(), orjson.dumps(kv[1])),
    )
    op.output("alerts", fired, KafkaSink([bootstrap], alerts_topic))
    return flow


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m streamproc.bench.peers_clients")
    p.add_argument("client", choices=["raw", "raw-light", "bytewax"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--alerts-topic", default="bytewax-alerts")
    args = p.parse_args(argv)
    if args.client in ("raw", "raw-light"):
        light = args.client == "raw-light"
        progress = asyncio.run(raw(args.bootstrap, args.topic, args.events, light=light))
    else:
        from bytewax.run import cli_main  # what `python -m bytewax.run` calls

        progress = Progress(args.events)
        cli_main(
            bytewax_flow(args.bootstrap, args.topic, args.alerts_topic, progress),
            workers_per_process=1,
        )
    print(progress.report(), flush=True)
    return 0 if progress.count >= args.events else 1


if __name__ == "__main__":
    sys.exit(main())
