"""mqtt: events/s through the MQTT source (``streamproc.sources.mqtt.MqttSource``) at QoS 0
and QoS 1, against a bare aiomqtt subscriber, via a Mosquitto started here on a free loopback
port (unbounded queues, so nothing is dropped on purpose).

Each subscriber is measured alone (the two alternate which goes first from run to run), with
the session the source itself uses at that QoS, so both get the same broker behaviour:

- **QoS 0, live**: MqttSource uses a clean session at QoS 0 (there is nothing to re-deliver,
  so a backlog queued for an earlier session is discarded at connect, by design). So the
  subscriber connects and subscribes first, then a publisher writes the N messages and the
  rate is measured while they arrive::

      subscriber:  connect+subscribe ....... first ===== receiving ===== last
      publisher:                  CONNECT | N PUBLISH packets, one sendall | DISCONNECT
                                          |<- pub_s ->|

  The publisher must not be what is measured: it pre-encodes the N MQTT 3.1.1 PUBLISH
  packets (before the clock starts) and writes them with one blocking ``sendall`` from a
  thread, which holds no GIL while the kernel copies, so it takes almost no CPU from the
  subscriber and runs ahead of it; Mosquitto queues what the subscriber has not read yet.
  ``pub_s`` (publisher) is recorded per run next to the subscriber's seconds: when it is not
  well below them (``publisher_bound``), the run measured the publisher or the broker's
  routing, and the step line says so.
- **QoS 1, backlog**: the source's QoS 1 session is persistent, so both subscribers create
  their sessions, disconnect, N messages are published at QoS 1 (the broker queues them for
  both), then each reconnects and drains its queue; no publisher runs while measuring.

The rate is records from the first to the last received. ``verified`` is true only when
every published message arrived, at both QoS, for both subscribers: QoS 0 may lose messages
when a broker queue limit is hit or a connection drops, and this broker has neither
(``max_queued_messages 0``, loopback), so a loss here is a defect, not QoS 0's right.

- streamproc: ``MqttSource`` batches, ``orjson.loads`` of each payload, then ``commit`` (the
  manual PUBACKs sent after a batch is handled; nothing to ack at QoS 0).
- baseline: a bare aiomqtt client, ``async for message in client.messages`` +
  ``orjson.loads`` (the plain subscriber a user would write first).

Both subscribers use the same protocol version (MQTT 5, the config default). Target: QoS 0
>= 80% of the baseline. Most of either side's time is paho decoding each PUBLISH (its MQTT 5
``Properties`` above all); the source can beat the baseline because it takes what is already
in aiomqtt's queue without the per-message task of aiomqtt's ``async for`` iterator.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
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
        from streamproc.ops.broker import free_port

        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="streamproc-bench-mosq-")
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as fh:
            fh.write(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                "persistence false\nmax_queued_messages 0\nmax_queued_bytes 0\n"
                "queue_qos0_messages true\nmax_inflight_messages 1000\n"
                "max_keepalive 65535\n"
            )
        self.proc = subprocess.Popen(
            [binary, "-c", conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
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
    from streamproc.commands.produce import publish_mqtt

    res = await publish_mqtt(
        _cfg(port, f"bench-pub-{time.time_ns()}", qos), items, qos=qos, max_in_flight=500
    )
    return res.rate


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def qos0_packets(items: list[tuple[str, bytes]]) -> bytes:
    """The N messages as MQTT 3.1.1 QoS 0 PUBLISH packets, one buffer (encoded off the clock)."""
    parts = []
    for topic, payload in items:
        body = _utf8(topic) + payload
        parts.append(b"\x30" + _remaining_length(len(body)) + body)
    return b"".join(parts)


class BlastPublisher:
    """Writes pre-encoded QoS 0 PUBLISH packets with one ``sendall`` from a thread.

    No MQTT library: the aim is a publisher that is never the slower side (see the module
    docstring). Connects before the subscriber's clock matters; ``start`` begins the write.
    """

    def __init__(self, port: int, packets: bytes) -> None:
        self.packets = packets
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        client_id = f"bench-blast-{time.time_ns()}"
        # CONNECT: protocol "MQTT" level 4 (3.1.1), clean session, keepalive 600 s.
        body = _utf8("MQTT") + b"\x04\x02" + (600).to_bytes(2, "big") + _utf8(client_id)
        self.sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        connack = b""
        while len(connack) < 4:
            chunk = self.sock.recv(4 - len(connack))
            if not chunk:
                raise RuntimeError("mosquitto closed the publisher's connection")
            connack += chunk
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"publisher CONNECT refused: {connack!r}")
        self.thread = threading.Thread(target=self._write, name="bench-mqtt-blast", daemon=True)
        self.started = self.finished = 0.0
        self.error: BaseException | None = None

    def _write(self) -> None:
        try:
            self.started = time.perf_counter()
            self.sock.sendall(self.packets)
            self.finished = time.perf_counter()
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT: no Will, a clean goodbye
        except OSError as exc:
            self.error = exc
        finally:
            self.sock.close()

    def start(self) -> None:
        self.thread.start()

    def join(self) -> dict[str, Any]:
        self.thread.join()
        if self.error is not None:
            raise RuntimeError(f"publisher failed: {self.error}")
        return {"pub_s": self.finished - self.started, "pub_started": self.started}


class Counter:
    """Receipts of one subscriber: how many, and when the first and the last arrived."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.got = 0
        self.first = self.last = 0.0

    def add(self, count: int) -> None:
        now = time.perf_counter()
        if self.got == 0:
            self.first = now
        self.got += count
        self.last = now

    def result(self) -> dict[str, Any]:
        return {
            "received": self.got,
            "seconds": max(1e-9, self.last - self.first),
            "first": self.first,
            "last": self.last,
        }


# A subscriber stops when all N arrived, or when nothing arrived for IDLE_S (QoS 0 lost some).
IDLE_S = 5.0


async def bare_subscriber(
    port: int, client_id: str, qos: int, n: int, ready: Callable[[], None], timeout: float
) -> dict[str, Any]:
    from streamproc.sources.mqtt import make_client

    client = make_client(_cfg(port, client_id, qos), client_id=client_id, persistent=qos > 0)
    count = Counter(n)
    loads = orjson.loads

    async def consume() -> None:
        async for message in client.messages:
            loads(message.payload)  # type: ignore[arg-type]
            count.add(1)
            if count.got >= n:
                return

    async def idle_guard(task: asyncio.Task[None]) -> None:
        while not task.done():
            await asyncio.sleep(0.5)
            if count.got and time.perf_counter() - count.last > IDLE_S:
                task.cancel()

    async with client:
        if qos == 0:
            await client.subscribe(FILTER, qos=0)
        ready()
        task = asyncio.create_task(consume())
        guard = asyncio.create_task(idle_guard(task))
        try:
            await asyncio.wait_for(task, timeout)
        except (TimeoutError, asyncio.CancelledError):
            pass
        finally:
            guard.cancel()
    return count.result()


async def source_subscriber(
    port: int, client_id: str, qos: int, n: int, ready: Callable[[], None], timeout: float
) -> dict[str, Any]:
    from streamproc.sources.mqtt import MqttSource

    source = MqttSource(_cfg(port, client_id, qos), [FILTER], start_retries=3)
    await source.start()  # returns once subscribed
    count = Counter(n)
    loads = orjson.loads
    deadline = time.monotonic() + timeout
    ready()
    try:
        while count.got < n and time.monotonic() < deadline:
            batch = await source.next_batch(timeout=1.0)
            if batch is None:
                if count.got and time.perf_counter() - count.last > IDLE_S:
                    break
                continue
            for r in batch.records:
                loads(r.value)
            await source.commit(batch)
            count.add(len(batch.records))
    finally:
        await source.stop()
    return count.result()


SUBSCRIBERS = {"baseline": bare_subscriber, "ours": source_subscriber}


def items_for(ctx: Context, n: int) -> list[tuple[str, bytes]]:
    from streamproc.commands.produce import mqtt_items

    return mqtt_items(ctx.traffic("mixed", n), None)


def one_qos0(port: int, packets: bytes, n: int, who: str, tag: str) -> dict[str, Any]:
    """One subscriber, subscribed first; the blast publisher starts once it is ready."""

    async def go() -> dict[str, Any]:
        publisher = BlastPublisher(port, packets)
        result = await SUBSCRIBERS[who](
            port, f"bench-{who}-{tag}", 0, n, publisher.start, max(60.0, n / 1000.0)
        )
        pub = await asyncio.to_thread(publisher.join)
        result["pub_s"] = pub["pub_s"]
        # Publisher-bound: it was still writing for most of the time the subscriber received.
        result["publisher_bound"] = pub["pub_s"] > 0.5 * result["seconds"]
        return result

    return asyncio.run(go())


def one_qos1(
    port: int, items: list[tuple[str, bytes]], order: tuple[str, ...], tag: str
) -> dict[str, dict[str, Any]]:
    """Both sessions queue the N messages, then each subscriber drains its own backlog."""
    n = len(items)

    async def go() -> dict[str, dict[str, Any]]:
        for who in order:
            await create_session(port, f"bench-{who}-{tag}")
        pub_rate = await publish(port, items, 1)
        out = {}
        for who in order:
            out[who] = await SUBSCRIBERS[who](
                port, f"bench-{who}-{tag}", 1, n, lambda: None, max(60.0, n / 1000.0)
            )
            out[who]["publish_rate"] = pub_rate
        return out

    return asyncio.run(go())


def run(ctx: Context) -> list[Row]:
    binary = mosquitto_binary()
    if binary is None:
        for _ in range(ctx.runs):
            ctx.step("mqtt skipped")
        return [
            skipped(
                "mqtt",
                "events/s through MqttSource",
                "mosquitto is not installed (apt-get install mosquitto)",
            )
        ]
    try:
        from streamproc.sources.mqtt import MqttSource  # noqa: F401
    except ImportError as exc:
        for _ in range(ctx.runs):
            ctx.step("mqtt skipped")
        return [
            skipped(
                "mqtt",
                "events/s through MqttSource",
                f"streamproc.sources.mqtt.MqttSource is not available ({exc})",
            )
        ]
    items = items_for(ctx, ctx.n(DEFAULT_EVENTS))
    n = len(items)  # the generator's count, a little off the requested one
    rows = {
        0: Row(
            "mqtt",
            "QoS 0 events/s through MqttSource (+orjson)",
            "events/s",
            baseline_name="bare aiomqtt subscriber (+orjson)",
            target=f">= {QOS0_TARGET:.0%} of bare",
            target_check=lambda r: (r.ratio or 0) >= QOS0_TARGET,
        ),
        1: Row(
            "mqtt",
            "QoS 1 events/s through MqttSource (+orjson, acks)",
            "events/s",
            baseline_name="bare aiomqtt subscriber (+orjson)",
        ),
    }
    broker = Mosquitto(binary)
    packets = qos0_packets(items)
    try:
        for i in range(ctx.runs):
            # Alternate who goes first, so neither always gets the warmer (or busier) machine.
            order = ("baseline", "ours") if i % 2 == 0 else ("ours", "baseline")
            for qos, row in rows.items():
                if qos == 0:
                    out = {who: one_qos0(broker.port, packets, n, who, f"0-{i}") for who in order}
                else:
                    out = one_qos1(broker.port, items, order, f"1-{i}")
                ours, base = out["ours"], out["baseline"]
                row.runs.append(ours["received"] / ours["seconds"])
                row.baseline_runs.append(base["received"] / base["seconds"])
                row.extra.setdefault("per_run", []).append(out)
                complete = ours["received"] == n and base["received"] == n
                prior = row.verified["ok"] if row.verified else True
                row.verified = {
                    "ok": prior and complete,
                    "published": n,
                    "received": ours["received"],
                    "baseline_received": base["received"],
                }
                bound = [who for who in order if out[who].get("publisher_bound")]
                note = f"; publisher-bound: {', '.join(bound)}" if bound else ""
                ctx.step(
                    f"mqtt run {i + 1}/{ctx.runs} QoS {qos}: {row.runs[-1]:,.0f}/s vs "
                    f"bare {row.baseline_runs[-1]:,.0f}/s "
                    f"({ours['received']:,}/{n:,} received){note}"
                )
    finally:
        broker.stop()
    return list(rows.values())


STEPS_PER_RUN = 2
