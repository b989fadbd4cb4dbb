"""Deliver: send one message to one channel through Apprise, with isolation. ``deliver``.

Apprise's ``async_notify`` runs every service's blocking ``send()`` in one process-wide pool
of ``min(32, cores + 4)`` threads, and a send that times out keeps its thread: one hanging
webhook can starve every other channel (measured: 12 timeouts delayed a 5 ms receiver to
3.9 s). So each channel gets its *own* small thread pool (``max_in_flight`` threads) and we
call the service's ``notify()`` there. A hung channel can only exhaust its own threads; its
sends then wait (in the outbox, on disk) while the other channels go on.

The per-call ``timeout`` stops *waiting*; the thread is counted as busy until it really
returns, so a hung channel never has more than ``max_in_flight`` threads in use.

Fast path: for json://, form:// and xml:// (one POST, response body unused) the Apprise service
still builds the request, with the network call intercepted, and fasthttp sends it on the
event loop over keep-alive connections: ~4x the throughput of a thread per send, and a hung
receiver holds sockets, not threads. ``fast=False`` on the channel (or an HTTP proxy in the
environment, which only ``requests`` honours) keeps the thread path.

Alertmanager webhook format (``format: alertmanager-webhook`` on a json:// channel): the
Apprise service builds the request the same way (URL, headers, basic auth), and its body,
Apprise's envelope, is replaced by the rendered Alertmanager JSON before it is sent, on
either path.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from apprise.common import NotifyFormat, NotifyType

from ..alerts import Alert
from . import am_payloads
from .channels import WEBHOOK_FORMAT, Channel
from .fasthttp import HTTPError, HTTPPool
from .httpcapture import Captured, capture, parse_retry_after
from .outbox import OutboxRow
from .resend import FiringTable
from .stage import Batch, Sent, Unit
from .templates import Message, Renderer, notify_type_for

# Channel formats that carry Alertmanager-shaped JSON, not text (see am_payloads.py)
AM_FORMATS = ("alertmanager", WEBHOOK_FORMAT)

_FORMATS = {
    "markdown": NotifyFormat.MARKDOWN,
    "html": NotifyFormat.HTML,
    "text": NotifyFormat.TEXT,
    "jsonl": NotifyFormat.TEXT,
}


@dataclass(slots=True)
class SendResult:
    ok: bool
    status: int | None = None  # HTTP status of the last response, when the service used HTTP
    retry_after: float | None = None
    error: str = ""  # never contains the URL or its secrets
    elapsed: float = 0.0


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def fast_capable(service: object) -> bool:
    """Services whose send() is exactly one HTTP request whose response body is unused."""
    from apprise.plugins.custom_form import NotifyForm
    from apprise.plugins.custom_json import NotifyJSON
    from apprise.plugins.custom_xml import NotifyXML

    if any(os.environ.get(v) for v in _PROXY_VARS):
        return False
    return isinstance(service, NotifyJSON | NotifyForm | NotifyXML)


def fix_formats(service: object) -> None:
    """Apprise re-parses a service's ``notify_format`` (parse_list) in every ``notify()`` to
    pick the body format: 8% of a delivery's CPU at 2,000 deliveries/s. The formats are set
    when the service is built (from its class and the URL's ``format=``) and never change,
    so answer with the parsed tuple. Guarded: with another Apprise it leaves things as is."""
    formats = getattr(service, "_formats", None)
    if not callable(formats):
        return
    try:
        fixed = formats()
    except Exception:  # noqa: BLE001 - then Apprise keeps doing it its own way
        return
    if isinstance(fixed, tuple) and fixed:
        service._formats = lambda: fixed  # type: ignore[attr-defined]


class ChannelSender:
    """Apprise sends for one channel: on its own threads, or on the loop (fast path)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        fix_formats(channel.service)
        self.fast = channel.fast and fast_capable(channel.service)
        self.executor = ThreadPoolExecutor(
            max_workers=channel.max_in_flight, thread_name_prefix=f"notify-{channel.id[:6]}"
        )
        self.pool = HTTPPool(
            channel.max_in_flight, verify=bool(getattr(channel.service, "verify_certificate", True))
        )
        self.busy = 0  # sends running (threads: including ones we stopped waiting for)

    @property
    def free(self) -> int:
        return max(0, self.channel.max_in_flight - self.busy)

    def _build(self, msg: Message) -> tuple[bool, Captured]:
        """Let the Apprise service build its request(s) without sending them."""
        with capture(intercept=True) as box:
            built = bool(
                self.channel.service.notify(
                    body=msg.body,
                    title=msg.title,
                    notify_type=NotifyType(msg.notify_type),
                    body_format=_FORMATS.get(self.channel.fmt, NotifyFormat.TEXT),
                )
            )
        if self.channel.fmt == WEBHOOK_FORMAT:  # Apprise's envelope out, our JSON in
            for req in box.requests:
                req.body = msg.body.encode()
        return built, box

    def _blocking_send_built(self, msg: Message) -> SendResult:
        """The thread path for a channel whose request body is ours (webhook format)."""
        started = time.monotonic()
        try:
            built, box = self._build(msg)
        except Exception as exc:  # noqa: BLE001 (a plugin bug must not kill the worker thread)
            return SendResult(False, error=f"{type(exc).__name__} in the Apprise service")
        if not built or not box.requests or box.unsupported:
            return SendResult(False, error="the service could not build the request")
        verify = bool(getattr(self.channel.service, "verify_certificate", True))
        with capture() as got:
            try:
                for req in box.requests:
                    response = requests.request(
                        req.method,
                        req.url,
                        data=req.body,
                        headers=req.headers,
                        verify=verify,
                        timeout=self.channel.timeout,
                    )
                    if not 200 <= response.status_code < 300:
                        break
            except requests.RequestException as exc:  # the type only: see _send_fast
                return SendResult(
                    False,
                    error=f"connection failed ({type(exc).__name__})",
                    elapsed=time.monotonic() - started,
                )
        ok = got.status is not None and 200 <= got.status < 300
        return SendResult(
            ok,
            got.status,
            got.retry_after,
            "" if ok else f"HTTP {got.status}",
            time.monotonic() - started,
        )

    def _blocking_send(self, msg: Message) -> SendResult:
        if self.channel.fmt == WEBHOOK_FORMAT:
            return self._blocking_send_built(msg)
        started = time.monotonic()
        with capture() as box:
            try:
                ok = bool(
                    self.channel.service.notify(
                        body=msg.body,
                        title=msg.title,
                        notify_type=NotifyType(msg.notify_type),
                        body_format=_FORMATS.get(self.channel.fmt, NotifyFormat.TEXT),
                    )
                )
                error = ""
            except Exception as exc:  # noqa: BLE001 (a plugin bug must not kill the worker thread)
                ok, error = False, f"{type(exc).__name__} in the Apprise service"
        if not ok and not error:
            error = f"HTTP {box.status}" if box.status else "the service reported a failure"
        return SendResult(ok, box.status, box.retry_after, error, time.monotonic() - started)

    async def send(self, msg: Message) -> SendResult:
        if self.fast:
            return await self._send_fast(msg)
        loop = asyncio.get_running_loop()
        self.busy += 1

        def release(_f: Future[SendResult]) -> None:
            loop.call_soon_threadsafe(self._release)

        try:
            fut = self.executor.submit(self._blocking_send, msg)
        except RuntimeError:  # executor shut down
            self.busy -= 1
            return SendResult(False, error="notifier is closing")
        fut.add_done_callback(release)
        try:
            # asyncio.timeout, not wait_for: see notifier.wait_event
            async with asyncio.timeout(self.channel.timeout):
                return await asyncio.wrap_future(fut)
        except TimeoutError:
            return SendResult(
                False,
                error=f"timed out after {self.channel.timeout:g}s",
                elapsed=self.channel.timeout,
            )

    async def _send_fast(self, msg: Message) -> SendResult:
        started = time.monotonic()
        self.busy += 1
        busy_released = False
        try:
            built, box = self._build(msg)  # builds the request; sends nothing
            if box.unsupported:  # e.g. a request shape we do not replay: use the thread path
                self.fast = False
                self.busy -= 1
                busy_released = True
                return await self.send(msg)
            if not built or not box.requests:
                return SendResult(False, error="the service could not build the request")
            status = 0
            headers: dict[str, str] = {}
            async with asyncio.timeout(self.channel.timeout):
                for req in box.requests:
                    status, headers = await self.pool.request(
                        req.method, req.url, req.headers, req.body
                    )
                    if not 200 <= status < 300:
                        break
            ok = 200 <= status < 300
            return SendResult(
                ok,
                status,
                parse_retry_after(headers.get("retry-after")),
                "" if ok else f"HTTP {status}",
                time.monotonic() - started,
            )
        except TimeoutError:
            return SendResult(
                False,
                error=f"timed out after {self.channel.timeout:g}s",
                elapsed=time.monotonic() - started,
            )
        except (OSError, HTTPError, asyncio.IncompleteReadError, ValueError) as exc:
            # the type only: messages can carry addresses or URL parts
            return SendResult(
                False,
                error=f"connection failed ({type(exc).__name__})",
                elapsed=time.monotonic() - started,
            )
        finally:
            if not busy_released:
                self.busy -= 1

    def _release(self) -> None:
        self.busy -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pool.close()


@dataclass(slots=True)
class Hooks:
    """Callbacks for metrics, set by whoever runs the notifier (any time, even after start)."""

    # (channel service name, outcome, seconds) after each send: Prometheus hooks here
    on_delivery: Callable[[str, str, float], None] | None = None
    # (reason, alerts) for every alert dead-lettered: no_route, delivery_failed
    on_dead_letter: Callable[[str, int], None] | None = None


class Messages:
    """Outbox rows -> the message a channel gets. Rendered once per (alerts, format, size
    limit): channels of one format share it; a row is decoded once for all channels."""

    def __init__(
        self,
        renderer: Renderer,
        firing: FiringTable,
        *,
        group_by: list[str],
        clock: Callable[[], float],
    ) -> None:
        self.renderer = renderer
        self.firing = firing
        self.group_by = group_by
        self.clock = clock
        self._render_cache: OrderedDict[tuple[Any, ...], Message] = OrderedDict()
        self._decoded: OrderedDict[bytes, list[Alert]] = OrderedDict()

    def alerts_of(self, row: OutboxRow) -> list[Alert]:
        """A row's alerts, decoded once for all channels: a group flushed to five channels
        is five rows with the same payload. Read-only: the lists are shared."""
        alerts = self._decoded.get(row.payload)
        if alerts is None:
            alerts = self._decoded[row.payload] = row.alerts
            if len(self._decoded) > 2048:
                self._decoded.popitem(last=False)
        return alerts

    def render(
        self, batch: list[OutboxRow], groups: list[list[Alert]], channel: Channel
    ) -> Message:
        if channel.fmt in AM_FORMATS:  # time-dependent (endsAt), and per channel
            return self._render_am(batch, groups, channel)
        key = (
            tuple((a.fingerprint, a.status) for g in groups for a in g),
            len(groups),
            channel.fmt,
            channel.max_body_len,
        )
        msg = self._render_cache.get(key)
        if msg is None:
            if len(groups) == 1:
                msg = self.renderer.render_group(groups[0], channel.fmt, channel.max_body_len)
            else:
                msg = self.renderer.render_digest(groups, channel.fmt, channel.max_body_len)
            self._render_cache[key] = msg
            if len(self._render_cache) > 2048:
                self._render_cache.popitem(last=False)
        return msg

    def _render_am(
        self, batch: list[OutboxRow], groups: list[list[Alert]], channel: Channel
    ) -> Message:
        """Alertmanager JSON: a list of postable alerts (``alertmanager://``) or the webhook
        payload (``alertmanager-webhook``). A resolve's startsAt is its firing's, when this
        channel sent that firing; a firing alert whose resolve this channel already sent
        (a retry can make them cross) is left out, so it cannot fire again."""
        alerts = [a for g in groups for a in g]
        starts = self.firing.starts(
            channel.id, (a.fingerprint for a in alerts if a.status == "resolved")
        )
        title = self.renderer.summary(alerts) if alerts else ""
        if channel.fmt == WEBHOOK_FORMAT:
            payload: Any = am_payloads.webhook_payload(
                alerts,
                receiver=channel.name,
                group_key=f"{channel.id}:" + ",".join(dict.fromkeys(r.gkey for r in batch)),
                group_by=self.group_by,
                external_url=channel.external_url,
                generator_url=channel.generator_url,
                starts=starts,
            )
        else:
            gone = self.firing.resolve_sent(
                channel.id, (a.fingerprint for a in alerts if a.status == "firing")
            )
            ends = self.clock() + 4 * channel.resend
            payload = [
                am_payloads.postable_alert(
                    a,
                    ends_at=a.event_time if a.status == "resolved" else ends,
                    starts_at=starts.get(a.fingerprint),
                    generator_url=channel.generator_url,
                )
                for a in alerts
                if not (a.status == "firing" and a.fingerprint in gone)
            ]
        return Message(
            title, orjson.dumps(payload).decode(), notify_type_for(alerts) if alerts else "info"
        )


class DeliverStage:
    """``deliver``: render each unit and send it on the channel's sender (its own threads or
    the fast path, with the channel's timeout); every answer goes on, good or bad."""

    name = "deliver"

    def __init__(
        self, channel: Channel, sender: ChannelSender, messages: Messages, hooks: Hooks
    ) -> None:
        self.channel = channel
        self.sender = sender
        self.messages = messages
        self.hooks = hooks

    async def run(self, batch: Batch[Unit]) -> Batch[Sent]:
        out: list[Sent] = []
        for unit in batch.items:  # a worker sends each unit in its own task: one here
            groups = [self.messages.alerts_of(r) for r in unit.rows]
            if len(unit.rows) > 1:
                batch.counts["digests"] += 1
            msg = self.messages.render(unit.rows, groups, self.channel)
            started = time.monotonic()
            result = await self.sender.send(msg)
            if self.hooks.on_delivery is not None:
                outcome = (
                    "sent" if result.ok else ("rate_limited" if result.status == 429 else "failed")
                )
                self.hooks.on_delivery(self.channel.name, outcome, time.monotonic() - started)
            out.append(Sent(unit.rows, groups, result))
        return batch.next(out)
