"""Deliver: send one message to one channel through Apprise, with isolation. Stage 6.

Apprise's ``async_notify`` runs every service's blocking ``send()`` in one process-wide pool
of ``min(32, cores + 4)`` threads, and a send that times out keeps its thread: one hanging
webhook can starve every other channel (measured: 12 timeouts delayed a 5 ms receiver to
3.9 s). So each channel gets its *own* small thread pool (``max_in_flight`` threads) and we
call the service's ``notify()`` there. A hung channel can only exhaust its own threads; its
sends then wait (in the outbox, on disk) while the other channels go on.

The per-call ``timeout`` stops *waiting*; the thread is counted as busy until it really
returns, so a hung channel never has more than ``max_in_flight`` threads in use.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from apprise.common import NotifyFormat, NotifyType

from .channels import Channel
from .httpcapture import capture
from .templates import Message

_FORMATS = {"markdown": NotifyFormat.MARKDOWN, "html": NotifyFormat.HTML,
            "text": NotifyFormat.TEXT, "jsonl": NotifyFormat.TEXT}


@dataclass(slots=True)
class SendResult:
    ok: bool
    status: int | None = None  # HTTP status of the last response, when the service used HTTP
    retry_after: float | None = None
    error: str = ""  # never contains the URL or its secrets
    elapsed: float = 0.0


class ChannelSender:
    """Blocking Apprise sends for one channel, on its own threads."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.executor = ThreadPoolExecutor(max_workers=channel.max_in_flight,
                                           thread_name_prefix=f"notify-{channel.id[:6]}")
        self.busy = 0  # threads running a send (including ones we stopped waiting for)

    @property
    def free(self) -> int:
        return max(0, self.channel.max_in_flight - self.busy)

    def _blocking_send(self, msg: Message) -> SendResult:
        started = time.monotonic()
        with capture() as box:
            try:
                ok = bool(self.channel.service.notify(
                    body=msg.body, title=msg.title, notify_type=NotifyType(msg.notify_type),
                    body_format=_FORMATS.get(self.channel.fmt, NotifyFormat.TEXT)))
                error = ""
            except Exception as exc:  # a plugin bug must not kill the worker thread
                ok, error = False, f"{type(exc).__name__} in the Apprise service"
        if not ok and not error:
            error = f"HTTP {box.status}" if box.status else "the service reported a failure"
        return SendResult(ok, box.status, box.retry_after, error, time.monotonic() - started)

    async def send(self, msg: Message) -> SendResult:
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
            return SendResult(False, error=f"timed out after {self.channel.timeout:g}s",
                              elapsed=self.channel.timeout)

    def _release(self) -> None:
        self.busy -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
