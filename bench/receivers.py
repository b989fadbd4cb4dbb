"""Local HTTP receivers: what Apprise ``json://``/``form://`` URLs and Alertmanager webhooks
post to, in the tests and in the notify bench. One request handler, two ways to run it.

``Endpoint`` answers HTTP/1.1 requests (keep-alive, body by Content-Length) on 127.0.0.1 and
records each one: method, path, headers, body, its JSON (or None), the status it got, when it
arrived (body read) and when it was answered. It can be told to answer late (``delay``), to
refuse the next ``fail_next`` requests with ``fail_status``, and to add response headers
(``Retry-After`` only on a refusal, as a rate-limiting webhook does).

- ``Receiver``: one endpoint served by an event loop in a thread of this process. Tests change
  its behaviour between requests, read what it recorded, and stop and restart its listener to
  play a webhook service that crashed.
- ``Receivers``: ``n`` endpoints in a child process, like webhooks on another machine: their
  CPU is not charged to the process being measured. In the measured process, a few hundred
  receiver threads competed for the GIL with the sender; every ``socket.send`` and SQLite step
  the sender made (both release the GIL) then waited for them (cProfile: 315 us per
  ``socket.send``), so the bench measured the receivers, not the notifier.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from http import HTTPStatus
from multiprocessing.connection import Connection
from typing import Any

import orjson

HANG = 30.0  # seconds a hanging receiver holds every request


class Endpoint:
    """The request handler and what it recorded; serve it with ``asyncio.start_server``."""

    def __init__(self, delay: float = 0.0, on_answer: Callable[[], None] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()  # tests read and set from another thread
        self.status = 200
        self.delay = delay
        self.headers: dict[str, str] = {}
        self.fail_next = 0  # answer this many requests with fail_status first
        self.fail_status = 500
        self.on_answer = on_answer
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] < 300]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, headers = _parse_head(head)
                length = next((v for k, v in headers.items() if k.lower() == "content-length"), "0")
                body = await reader.readexactly(int(length or 0))
                arrived = time.time()
                if self.delay:
                    await asyncio.sleep(self.delay)
                with self.lock:
                    status = self.status
                    if self.fail_next > 0:
                        self.fail_next -= 1
                        status = self.fail_status
                    self.requests.append(
                        {
                            "method": method,
                            "path": path,
                            "headers": headers,
                            "body": body,
                            "json": _json_or_none(body),
                            "status": status,
                            "arrived": arrived,
                            "at": time.time(),
                        }
                    )
                    extra = [
                        f"{k}: {v}"
                        for k, v in self.headers.items()
                        if status != 200 or k.lower() != "retry-after"
                    ]
                if self.on_answer is not None:
                    self.on_answer()
                writer.write(
                    "\r\n".join(
                        [
                            f"HTTP/1.1 {status} {_reason(status)}",
                            *extra,
                            "Content-Length: 0",
                            "",
                            "",
                        ]
                    ).encode("latin-1")
                )
                await writer.drain()
                if any(
                    k.lower() == "connection" and v.lower() == "close" for k, v in headers.items()
                ):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # the receiver stopped mid-request (a hanging channel's, at the end of a run):
            # asyncio's server would log a traceback for each cancelled connection
            writer.close()
        finally:
            self.writers.discard(writer)
            writer.close()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
    return method, path, headers


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class Receiver(Endpoint):
    """One endpoint served from a thread of this process (tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="http-receiver"
        )
        self._thread.start()
        self._server: asyncio.Server | None = None
        self.listen()

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def listen(self) -> None:
        """Accept connections (again, on the same port after ``stop_listening``)."""

        async def start() -> asyncio.Server:
            return await asyncio.start_server(self.handle, "127.0.0.1", self.port, backlog=1024)

        self._server = self._call(start())
        self.port = self._server.sockets[0].getsockname()[1]

    def stop_listening(self) -> None:
        """Refuse connections and drop the open ones, as a crashed webhook service does."""

        async def stop(server: asyncio.Server) -> None:
            server.close()
            for writer in list(self.writers):
                writer.close()
            await server.wait_closed()

        if self._server is not None:
            self._call(stop(self._server))
            self._server = None

    def url(self, scheme: str = "json", path: str = "/notify") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.accepted) >= n:
                return self.accepted
            time.sleep(0.05)
        return self.accepted

    async def await_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.accepted) >= n:
                return self.accepted
            await asyncio.sleep(0.05)
        return self.accepted

    def close(self) -> None:
        self.stop_listening()

        async def cancel_handlers() -> None:  # a delayed answer would outlive the test
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._call(cancel_handlers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def _bump(counts: Any, idx: int) -> None:
    counts[idx] += 1


def _serve(conn: Connection, counts: Any, delays: list[float]) -> None:
    """Child process: one endpoint per delay; answers counted in shared memory."""

    async def main() -> None:
        endpoints = [Endpoint(d, on_answer=partial(_bump, counts, i)) for i, d in enumerate(delays)]
        servers = [
            await asyncio.start_server(e.handle, "127.0.0.1", 0, backlog=1024) for e in endpoints
        ]
        conn.send([s.sockets[0].getsockname()[1] for s in servers])
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "arrivals":
                conn.send([[(r["arrived"], r["json"]) for r in e.requests] for e in endpoints])
            elif cmd == "reset":
                for i, e in enumerate(endpoints):
                    e.requests = []
                    counts[i] = 0
                conn.send("ok")
            elif cmd == "stop":
                return

    asyncio.run(main())


class Receivers:
    """``n`` endpoints in one child process, each answering after ``delay`` seconds; the last
    ``hanging`` of them hold every request for ``HANG`` seconds (a channel that hangs)."""

    def __init__(self, n: int, delay: float = 0.02, *, hanging: int = 0) -> None:
        self.delay = delay
        delays = [delay] * (n - hanging) + [HANG] * hanging
        ctx = mp.get_context("spawn")
        self._counts = ctx.Array("q", n, lock=False)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self._counts, delays), daemon=True)
        self.proc.start()
        self.ports: list[int] = self.conn.recv()

    def urls(self) -> list[str]:
        return [f"json://127.0.0.1:{p}/notify" for p in self.ports]

    def count(self) -> int:
        """Requests answered so far, all receivers (shared memory: cheap to poll)."""
        return sum(self._counts)

    def reset(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def arrivals(self) -> list[list[tuple[float, Any]]]:
        """Per receiver: (arrival time, JSON body or None) of every request answered since
        reset(); arrival is when the body was read, before the receiver's delay."""
        self.conn.send("arrivals")
        return self.conn.recv()  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
