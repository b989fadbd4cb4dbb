"""MQTT source (aiomqtt): MQTT 5 or 3.1.1, QoS 0/1, TLS, username/password, shared
subscriptions, a persistent session, and acknowledgements only after processing.

At-least-once with QoS 1. The client acks a PUBLISH (PUBACK) only after the runtime has made
the batch's alerts and dead letters durable (manual acks, paho-mqtt >= 2). The session is
persistent (MQTT 5: clean start off and a session expiry; 3.1.1: clean session off) under a
stable client id, so:

- messages published while streamproc is down are queued by the broker and delivered after
  it reconnects (up to the broker's ``max_queued_messages``: Mosquitto's default of 1000
  drops the rest silently, so raise it, see README);
- a crash between receipt and ack leaves the messages un-acked, and the broker re-delivers
  them when the session resumes; alerts appended twice are deduplicated by fingerprint.

With QoS 0 nothing is acked and nothing is re-delivered: the broker's fire-and-forget.

Retained messages: a broker sends each matching topic's retained message to every new
subscription, and the source subscribes again on every reconnect. Judged again, each copy
would count twice (four retained failed logins, after one reconnect, a brute force of
eight). So a copy is judged once:

- MQTT 5 subscribes with retain handling 1: retained messages are sent only when the
  subscription is new, not when a persistent session resumes (a restart included);
- whatever the protocol, a message the broker flags as retained whose payload is the last
  one judged on its topic is acknowledged and not judged again (the last payload of the
  ``MAX_TOPICS_REMEMBERED`` most recent topics is remembered, by a 64-bit BLAKE2b digest).
  A retained message that changed while the source was away is new, and judged. The
  digests are checkpointed with the detector state (``retained_digests``), so a restart
  knows them too: with MQTT 3.1.1, where every subscription gets the retained copies, a
  restart judges none of them again, and one restored from an older checkpoint judges again
  exactly those the restored state has not seen.

Shared subscriptions (``$share/<group>/<filter>``, MQTT 5 and Mosquitto's 3.1.1 extension)
split the messages of a filter across every client of the group: that is how MQTT load is
spread over several workers. Each worker needs its own client id then (``-<n>`` is appended).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from typing import Any

import aiomqtt
import orjson
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..config import MqttConfig
from ..decode import RawRecord
from ..errors import SourceError
from ..ops.backoff import Backoff
from .base import STATUS_PREFIX, Batch

log = logging.getLogger(__name__)

STATUS_FILTER = STATUS_PREFIX + "+"
# topics whose last payload is remembered, to know a retained copy already judged
MAX_TOPICS_REMEMBERED = 100_000


def _digest(payload: bytes) -> str:
    # stable across processes (a checkpoint outlives the process; hash() is salted)
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


def tls_context(tls: dict[str, Any] | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    ctx = ssl.create_default_context(cafile=tls.get("ca_file"))
    if tls.get("cert_file"):
        ctx.load_cert_chain(tls["cert_file"], tls.get("key_file"))
    if tls.get("insecure"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_client(
    cfg: MqttConfig,
    *,
    client_id: str | None = None,
    persistent: bool = True,
    will: aiomqtt.Will | None = None,
    timeout: float = 10.0,
) -> aiomqtt.Client:
    """An aiomqtt client from the config (also used by the agent and the producer)."""
    v5 = cfg.protocol == "5"
    kwargs: dict[str, Any] = {
        "hostname": cfg.host,
        "port": cfg.port,
        "username": cfg.username,
        "password": cfg.password,
        "identifier": client_id or cfg.client_id,
        "protocol": aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        "keepalive": cfg.keepalive,
        "tls_context": tls_context(cfg.tls),
        "will": will,
        "timeout": timeout,
    }
    if cfg.tls is not None and cfg.tls.get("insecure"):
        kwargs["tls_insecure"] = True
    if v5:
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = int(cfg.session_expiry)
        kwargs["properties"] = props
        kwargs["clean_start"] = not persistent
    else:
        kwargs["clean_session"] = not persistent
    return aiomqtt.Client(**kwargs)


class MqttSource:
    """Subscribes to ``filters`` (topic filter -> binding name) and yields batches."""

    def __init__(
        self,
        cfg: MqttConfig,
        filters: list[str],
        *,
        worker: int | None = None,
        max_batch: int = 2000,
        linger: float = 0.02,
        name: str = "mqtt",
        start_retries: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.filters = filters
        self.name = name
        self.max_batch = max_batch
        self.linger = linger
        self.start_retries = start_retries
        self.client_id = cfg.client_id if worker is None else f"{cfg.client_id}-{worker}"
        self.qos = cfg.qos
        self._queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(maxsize=max_batch * 4)
        # next_batch lingers on one event, set when ``_wanted`` messages are queued, instead of
        # one wait_for (a task and a timer) per message.
        self._wanted = 0
        self._enough = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._stopping = False
        self.connected = asyncio.Event()
        self.received = 0
        self.retained_repeats = 0  # retained copies already judged, not judged again
        # topic -> digest of the last payload judged on it (checkpointed: retained_digests)
        self._last: dict[str, str] = {}
        self.fatal: BaseException | None = None

    def retained_digests(self) -> dict[str, str]:
        """Topic -> digest of the last payload judged on it, oldest first: for a checkpoint
        taken between batches (what was judged, and so what the state holds)."""
        return dict(self._last)

    def restore_retained_digests(self, digests: Any) -> None:
        """What ``retained_digests`` gave, from a checkpoint; anything else is ignored (a
        state file from before digests were kept, or not written by us)."""
        if not isinstance(digests, dict):
            return
        kept = {
            topic: digest
            for topic, digest in digests.items()
            if isinstance(topic, str) and isinstance(digest, str)
        }
        self._last = dict(list(kept.items())[-MAX_TOPICS_REMEMBERED:])

    def subscription_filters(self) -> list[str]:
        if self.cfg.shared_group:
            return [f"$share/{self.cfg.shared_group}/{f}" for f in self.filters]
        return list(self.filters)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mqtt-source-{self.client_id}")
        # Wait for the first connection so a bad password is reported now, not as a hang.
        waiter = asyncio.create_task(self.connected.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiter.cancel()
            exc = self._task.exception()
            raise exc if exc else SourceError("MQTT source stopped before connecting")
        if self.fatal:
            raise self.fatal

    async def _run(self) -> None:
        backoff = Backoff()
        attempt = 0  # connection tries since the last success
        while not self._stopping:
            attempt += 1
            client = make_client(self.cfg, client_id=self.client_id, persistent=self.qos > 0)
            if self.qos > 0:
                # Ack after processing, not on receipt (paho-mqtt >= 2).
                client._client.manual_ack_set(True)
            try:
                async with client:
                    self._client = client
                    for f in self.subscription_filters():
                        if self.cfg.protocol == "5":
                            options = SubscribeOptions(
                                qos=self.qos,
                                retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB,
                            )
                            await client.subscribe(f, options=options)
                        else:
                            await client.subscribe(f, qos=self.qos)
                    log.info(
                        "MQTT connected to %s:%d as %r, subscribed to %s",
                        self.cfg.host,
                        self.cfg.port,
                        self.client_id,
                        ", ".join(self.filters),
                    )
                    self.connected.set()
                    backoff.reset()
                    attempt = 0
                    queue = self._queue
                    # aiomqtt's own queue (private; aiomqtt 2.x): what is already in it is
                    # moved without its iterator's task per message, which cost as much as
                    # the rest of the source (the iterator still watches for disconnects).
                    arrived: asyncio.Queue[aiomqtt.Message] | None = getattr(client, "_queue", None)
                    async for message in client.messages:
                        await queue.put(message)
                        while arrived is not None and arrived.qsize() and not queue.full():
                            queue.put_nowait(arrived.get_nowait())
                        if self._wanted and queue.qsize() >= self._wanted:
                            self._enough.set()
            except aiomqtt.MqttCodeError as exc:
                self._client = None
                self.connected.clear()
                code = getattr(exc, "rc", None)
                if _is_auth_failure(code):
                    self.fatal = SourceError(
                        f"MQTT broker {self.cfg.host}:{self.cfg.port} refused the connection: "
                        f"{_reason(code)}; check mqtt.username and mqtt.password"
                    )
                    raise self.fatal from None
                if self._stopping:
                    return
                await self._backoff(exc, backoff, attempt)
            except aiomqtt.MqttError as exc:
                self._client = None
                self.connected.clear()
                if self._stopping:
                    return
                await self._backoff(exc, backoff, attempt)

    async def _backoff(self, exc: BaseException, backoff: Backoff, attempt: int) -> None:
        if (
            self.start_retries is not None
            and attempt > self.start_retries
            and not self.connected.is_set()
        ):
            self.fatal = SourceError(
                f"cannot reach MQTT broker {self.cfg.host}:{self.cfg.port}: {exc}"
            )
            raise self.fatal
        log.warning(
            "MQTT %s:%d unavailable (%s); reconnecting in %.1fs",
            self.cfg.host,
            self.cfg.port,
            exc,
            backoff.delay,
        )
        await backoff.wait()

    async def next_batch(self, timeout: float = 1.0) -> Batch | None:
        if self.fatal:
            raise self.fatal
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        messages = [first]
        self._take(messages)
        if len(messages) < self.max_batch and self.linger > 0:
            self._wanted = self.max_batch - len(messages)
            self._enough.clear()
            try:
                await asyncio.wait_for(self._enough.wait(), self.linger)
            except TimeoutError:
                pass
            finally:
                self._wanted = 0
            self._take(messages)
        records = []
        last = self._last
        for m in messages:
            payload = m.payload
            topic = str(m.topic)
            if isinstance(payload, str):
                payload = payload.encode()
            elif payload is None:
                payload = b""
            elif isinstance(payload, bytearray):
                payload = bytes(payload)
            elif not isinstance(payload, bytes):
                payload = str(payload).encode()
            digest = _digest(payload)
            if m.retain and last.get(topic) == digest:
                # sent again because the source subscribed again: acked, not judged twice
                self.retained_repeats += 1
                continue
            last[topic] = digest
            if len(last) > MAX_TOPICS_REMEMBERED:
                del last[next(iter(last))]  # the topic remembered longest ago
            if topic.startswith(STATUS_PREFIX):
                # An agent's status or Last Will: fixed at connect time, so it carries no
                # usable event time; it becomes a host-metrics record stamped on receipt.
                from ..commands.agent import status_record

                record = status_record(payload, time.time())
                payload = orjson.dumps(record) if record is not None else payload
            records.append(RawRecord(payload, topic, 0, m.mid, None))
        self.received += len(records)
        return Batch(records, [(m.mid, m.qos) for m in messages], time.time())

    def _take(self, messages: list[aiomqtt.Message]) -> None:
        """Move what is queued now into ``messages``, up to ``max_batch``."""
        get = self._queue.get_nowait
        while len(messages) < self.max_batch:
            try:
                messages.append(get())
            except asyncio.QueueEmpty:
                return

    async def commit(self, batch: Batch) -> None:
        client = self._client
        if client is None or self.qos == 0:
            return  # after a reconnect the broker re-delivers what we did not ack
        paho_client: paho.Client = client._client
        for mid, qos in batch.ack:
            if qos > 0:
                paho_client.ack(mid, qos)

    def done(self, batch: Batch) -> None:
        pass

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._task = None


def _is_auth_failure(code: Any) -> bool:
    value = getattr(code, "value", code)
    # 3.1.1: 4 bad user name or password, 5 not authorised; 5.0: 134, 135
    return value in (4, 5, 134, 135)


def _reason(code: Any) -> str:
    value = getattr(code, "value", code)
    return {
        4: "bad user name or password",
        5: "not authorised",
        134: "bad user name or password",
        135: "not authorised",
    }.get(value, str(code))
