"""A small asyncio HTTP/1.1 client with keep-alive, for the plain webhook services.

Why: Apprise sends with ``requests`` on a thread, one new TCP connection per message. For
json://, form:// and xml:// (one POST per message, response body ignored) streamproc lets the
Apprise service build the exact request (payload, headers, auth) with the network call
intercepted (httpcapture.intercept), then sends it here: no thread per send, connections
reused, and a hung receiver holds only a socket of its own channel. Everything else, and any
setup with an HTTP(S) proxy configured, goes through Apprise's own ``send()`` on threads.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit

_SKIP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class HTTPError(Exception):
    pass


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class HTTPPool:
    """Keep-alive connections to one channel's endpoints (at most ``limit`` kept idle)."""

    def __init__(self, limit: int, *, verify: bool = True) -> None:
        self.limit = limit
        self.idle: dict[tuple[str, int, bool], deque[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None
        self.verify = verify
        self._heads: dict[
            tuple[str, str, tuple[tuple[str, str], ...]], tuple[tuple[str, int, bool], bytes]
        ] = {}

    def _ssl_ctx(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context()
            if not self.verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        return self._ssl

    def _head(
        self, method: str, url: str, headers: dict[str, str]
    ) -> tuple[tuple[str, int, bool], bytes]:
        """Connection key and request head up to Content-Length. A channel sends the same
        method, URL and headers every time: parsed and formatted once, not per message."""
        cache_key = (method, url, tuple(headers.items()))
        hit = self._heads.get(cache_key)
        if hit is not None:
            return hit
        u = urlsplit(url)
        tls = u.scheme == "https"
        host = u.hostname or ""
        port = u.port or (443 if tls else 80)
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        netloc = host if u.port is None else f"{host}:{port}"
        if ":" in host:  # IPv6 literal
            netloc = f"[{host}]" if u.port is None else f"[{host}]:{port}"
        lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _SKIP]
        head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1", "replace")
        if len(self._heads) >= 64:  # URLs or headers that vary per message: stay bounded
            self._heads.clear()
        self._heads[cache_key] = ((host, port, tls), head)
        return (host, port, tls), head

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        key, prefix = self._head(method, url, headers)
        head = prefix + b"%d\r\n\r\n" % len(body)
        host, port, tls = key
        pool = self.idle.setdefault(key, deque())
        while pool:  # a reused connection may have been closed by the server: try the next
            conn = pool.pop()
            try:
                return await self._exchange(conn, head + body, key)
            except (ConnectionError, asyncio.IncompleteReadError, HTTPError):
                conn.close()
            except BaseException:  # cancelled (timeout): the connection's state is unknown
                conn.close()
                raise
        reader, writer = await asyncio.open_connection(
            host, port, ssl=self._ssl_ctx() if tls else None, server_hostname=host if tls else None
        )
        conn = _Conn(reader, writer)
        try:
            return await self._exchange(conn, head + body, key)
        except BaseException:
            conn.close()
            raise

    async def _exchange(
        self, conn: _Conn, data: bytes, key: tuple[str, int, bool]
    ) -> tuple[int, dict[str, str]]:
        conn.writer.write(data)
        await conn.writer.drain()
        status_line = await conn.reader.readline()
        if not status_line:
            raise HTTPError("connection closed before the response")
        parts = status_line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HTTPError("not an HTTP response")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            line = await conn.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        reusable = headers.get("connection", "").lower() != "close"
        if "content-length" in headers:
            await conn.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await conn.reader.readline()).split(b";")[0].strip() or b"0", 16)
                await conn.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif status not in (204, 304) and not 100 <= status < 200:
            await conn.reader.read()  # body until close
            reusable = False
        pool = self.idle.setdefault(key, deque())
        if reusable and len(pool) < self.limit:
            pool.append(conn)
        else:
            conn.close()
        return status, headers

    def close(self) -> None:
        for pool in self.idle.values():
            while pool:
                pool.pop().close()
