"""mqtt: events/s through the MQTT source (``streamproc.sources.mqtt.MqttSource``) at QoS 0
and QoS 1, via a Mosquitto started here on a free loopback port.

To measure the subscriber and not the publisher, messages are queued first: both subscribers
create persistent sessions (subscribed at QoS 1) and disconnect, N mixed events are published
at the QoS under test (the broker queues them for both sessions; ``queue_qos0_messages`` keeps
QoS 0 too), then each subscriber reconnects and drains its queue. The rate is records from
the first to the last received.

- streamproc: ``MqttSource`` batches, ``orjson.loads`` of each payload, then ``commit`` (the
  manual PUBACKs sent after a batch is handled; nothing to ack at QoS 0).
- baseline: a bare aiomqtt client, ``async for message in client.messages`` +
  ``orjson.loads`` (what BROKERS.md measured).

Both use the same protocol version (MQTT 5, the config default). Target: QoS 0 >= 80% of the
baseline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

import orjson

from .common import Context, Row, skipped

DEFAULT_EVENTS = 100_000
QOS0_TARGET = 0.80
FILTER = "streamproc/#"


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None


class Mosquitto:
    """A Mosquitto with settings chosen on purpose (the defaults drop queued messages)."""

    def __init__(self, binary: str) -> None:
        from streamproc.broker import free_port

        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="streamproc-bench-mosq-")
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as fh:
            fh.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                     "persistence false\nmax_queued_messages 0\nmax_queued_bytes 0\n"
                     "queue_qos0_messages true\nmax_inflight_messages 1000\n"
                     "max_keepalive 65535\n")
        self.proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _cfg(port: int, client_id: str, qos: int) -> Any:
    from streamproc.config import MqttConfig

    return MqttConfig(host="127.0.0.1", port=port, client_id=client_id, qos=qos)


async def create_session(port: int, client_id: str) -> None:
    from streamproc.sources.mqtt import make_client

    client = make_client(_cfg(port, client_id, 1), client_id=client_id, persistent=True)
    async with client:
        await client.subscribe(FILTER, qos=1)


async def publish(port: int, items: list[tuple[str, bytes]], qos: int) -> float:
    from streamproc.produce import publish_mqtt

    res = await publish_mqtt(_cfg(port, f"bench-pub-{time.time_ns()}", qos), items, qos=qos,
                             max_in_flight=500)
    return res.rate


async def drain_baseline(port: int, client_id: str, n: int, timeout: float) -> dict[str, Any]:
    from streamproc.sources.mqtt import make_client

    client = make_client(_cfg(port, client_id, 1), client_id=client_id, persistent=True)
    got = 0
    first = last = 0.0
    loads = orjson.loads

    async def consume() -> None:
        nonlocal got, first, last
        async for message in client.messages:
            loads(message.payload)  # type: ignore[arg-type]
            got += 1
            if got == 1:
                first = time.perf_counter()
            if got >= n:
                last = time.perf_counter()
                return

    async with client:
        try:
            await asyncio.wait_for(consume(), timeout)
        except TimeoutError:
            last = time.perf_counter()
    return {"received": got, "seconds": max(1e-9, last - first)}


async def drain_source(port: int, client_id: str, n: int, timeout: float) -> dict[str, Any]:
    from streamproc.sources.mqtt import MqttSource

    source = MqttSource(_cfg(port, client_id, 1), [FILTER], start_retries=3)
    await source.start()
    got = 0
    first = last = 0.0
    loads = orjson.loads
    deadline = time.monotonic() + timeout
    try:
        while got < n and time.monotonic() < deadline:
            batch = await source.next_batch(timeout=1.0)
            if batch is None:
                continue
            if got == 0:
                first = time.perf_counter()
            for r in batch.records:
                loads(r.value)
            got += len(batch.records)
            await source.commit(batch)
        last = time.perf_counter()
    finally:
        await source.stop()
    return {"received": got, "seconds": max(1e-9, last - first)}


def items_for(ctx: Context, n: int) -> list[tuple[str, bytes]]:
    from streamproc.produce import mqtt_items

    return mqtt_items(ctx.traffic("mixed", n), None)


def one(port: int, items: list[tuple[str, bytes]], qos: int, tag: str) -> dict[str, Any]:
    n = len(items)
    ours_id, base_id = f"bench-src-{tag}", f"bench-bare-{tag}"

    async def go() -> dict[str, Any]:
        await create_session(port, ours_id)
        await create_session(port, base_id)
        pub_rate = await publish(port, items, qos)
        timeout = max(60.0, n / 1000.0)
        base = await drain_baseline(port, base_id, n, timeout)
        ours = await drain_source(port, ours_id, n, timeout)
        return {"publish_rate": pub_rate, "baseline": base, "ours": ours}

    return asyncio.run(go())


def run(ctx: Context) -> list[Row]:
    binary = mosquitto_binary()
    if binary is None:
        for _ in range(ctx.runs):
            ctx.step("mqtt skipped")
        return [skipped("mqtt", "events/s through MqttSource",
                        "mosquitto is not installed (apt-get install mosquitto)")]
    try:
        from streamproc.sources.mqtt import MqttSource  # noqa: F401
    except ImportError as exc:
        for _ in range(ctx.runs):
            ctx.step("mqtt skipped")
        return [skipped("mqtt", "events/s through MqttSource",
                        f"streamproc.sources.mqtt.MqttSource is not available ({exc})")]
    n = ctx.n(DEFAULT_EVENTS)
    items = items_for(ctx, n)
    rows = {
        0: Row("mqtt", "QoS 0 events/s through MqttSource (+orjson)", "events/s",
               baseline_name="bare aiomqtt subscriber (+orjson)",
               target=f">= {QOS0_TARGET:.0%} of bare",
               target_check=lambda r: (r.ratio or 0) >= QOS0_TARGET),
        1: Row("mqtt", "QoS 1 events/s through MqttSource (+orjson, acks)", "events/s",
               baseline_name="bare aiomqtt subscriber (+orjson)"),
    }
    broker = Mosquitto(binary)
    try:
        for i in range(ctx.runs):
            for qos, row in rows.items():
                out = one(broker.port, items, qos, f"{qos}-{i}")
                row.runs.append(out["ours"]["received"] / out["ours"]["seconds"])
                row.baseline_runs.append(out["baseline"]["received"]
                                         / out["baseline"]["seconds"])
                row.extra.setdefault("per_run", []).append(out)
                complete = (out["ours"]["received"] == len(items)
                            and out["baseline"]["received"] == len(items))
                prior = row.verified["ok"] if row.verified else True
                row.verified = {"ok": prior and complete, "published": len(items),
                                "received": out["ours"]["received"],
                                "baseline_received": out["baseline"]["received"]}
                ctx.step(f"mqtt run {i + 1}/{ctx.runs} QoS {qos}: {row.runs[-1]:,.0f}/s vs "
                         f"bare {row.baseline_runs[-1]:,.0f}/s "
                         f"({out['ours']['received']:,}/{len(items):,} received)")
    finally:
        broker.stop()
    return list(rows.values())


STEPS_PER_RUN = 2
