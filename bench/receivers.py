"""Local HTTP receivers for Apprise ``json://`` URLs, with a fixed answer latency.

Each receiver is a real threaded HTTP server on 127.0.0.1 that sleeps ``delay`` seconds before
answering 200, like a chat webhook across a network. It records when each request arrived and
its JSON body, so a benchmark can count deliveries and measure latency.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class _Server(ThreadingHTTPServer):
    # Apprise senders open many connections at once; the default backlog (5) refuses some.
    request_queue_size = 1024
    daemon_threads = True


class Receiver:
    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.arrivals: list[tuple[float, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                time.sleep(receiver.delay)
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError:
                    doc = None
                with receiver.lock:
                    receiver.arrivals.append((time.time(), doc))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/notify"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def reset(self) -> None:
        with self.lock:
            self.arrivals.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
