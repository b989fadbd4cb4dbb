"""Local HTTP receivers for Apprise ``json://`` URLs, with a fixed answer latency.

Each receiver is an HTTP/1.1 server on 127.0.0.1 that waits ``delay`` seconds before answering
200, like a chat webhook across a network. It records when each request arrived and its JSON
body, so a benchmark can count deliveries and measure latency.

The receivers run in a child process (asyncio servers, one per channel), like a webhook on
another machine: their CPU is not charged to the process being measured. In the measured
process, a few hundred receiver threads competed for the GIL with the sender; every
``socket.send`` and SQLite step the sender made (both release the GIL) then waited for them
(cProfile: 315 us per ``socket.send``), so the bench measured the receivers, not the notifier.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import time
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import orjson

_LEN = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def _serve(conn: Connection, counts: Any, n: int, delay: float) -> None:
    """Child process: ``n`` servers; arrivals kept here, counts in shared memory."""

    async def main() -> None:
        arrivals: list[list[tuple[float, bytes]]] = [[] for _ in range(n)]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         idx: int) -> None:
            try:
                while True:  # keep-alive: one request after another on this connection
                    head = await reader.readuntil(b"\r\n\r\n")
                    m = _LEN.search(head)
                    body = await reader.readexactly(int(m.group(1))) if m else b""
                    await asyncio.sleep(delay)
                    arrivals[idx].append((time.time(), body))
                    counts[idx] += 1
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                pass
            finally:
                writer.close()

        servers = [await asyncio.start_server(partial(handle, idx=i), "127.0.0.1", 0,
                                              backlog=1024) for i in range(n)]
        conn.send([s.sockets[0].getsockname()[1] for s in servers])
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "arrivals":
                conn.send(arrivals)
            elif cmd == "reset":
                arrivals = [[] for _ in range(n)]
                for i in range(n):
                    counts[i] = 0
                conn.send("ok")
            elif cmd == "stop":
                return

    asyncio.run(main())


class Receivers:
    """``n`` receivers in one child process."""

    def __init__(self, n: int, delay: float = 0.02) -> None:
        self.delay = delay
        ctx = mp.get_context("spawn")
        self._counts = ctx.Array("q", n, lock=False)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self._counts, n, delay),
                                daemon=True)
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
        """Per receiver: (arrival time, JSON body or None) of every request since reset()."""
        self.conn.send("arrivals")
        out = []
        for recs in self.conn.recv():
            docs = []
            for at, body in recs:
                try:
                    docs.append((at, orjson.loads(body)))
                except orjson.JSONDecodeError:
                    docs.append((at, None))
            out.append(docs)
        return out

    def close(self) -> None:
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
