"""The one HTTP listener of ``streamproc run``: metrics, health and every API, on the
runtime's asyncio loop (aiohttp).

    client ──► TLS (optional) ──► body limit (413) ──► bearer token (401) ──► route
                                                        (health paths skip it)

What is served is mounted, not written here: ``metrics.routes`` adds ``/metrics``,
``/healthz`` and ``/readyz``; the Alertmanager API (http/alertmanager.py) is mounted at
``/api/v2``; another feature mounts its own ``aiohttp.web.Application`` under its prefix
with ``listener.mount("/api/v1", app)`` without touching this module. The body limit and the
token apply to every route, mounted ones included, because they are middlewares of the root
application (aiohttp runs a parent's middlewares for its sub-applications' routes too).

Routes are fixed once the listener starts (aiohttp freezes the router): mount everything
before ``start()``. A handler that needs the runtime, which starts after the listener (so a
port in use fails the start before anything else runs), answers 503 until it is there.

Bodies reach handlers as sent: the server decodes no Content-Encoding (http/encoding.py
says why); a handler that reads a body decodes it there, so that a body of an encoding
refused is refused by the handler, counted and answered 415, never by aiohttp unseen.

Token: compared in constant time (``hmac.compare_digest``); a 401 names the header to send
and never echoes what was sent. Health paths answer without one, so a load balancer or a
kubelet probe needs no secret.
"""

from __future__ import annotations

import hmac
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .encoding import SERVER_OPTIONS

log = logging.getLogger("streamproc.http")

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a silence or a batch of events, not a file upload

# Answer without a token: what load balancers, kubelets and Alertmanager clients probe.
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/-/healthy", "/-/ready"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequestLog(logging.Filter):
    """aiohttp logs every request it cannot parse (a bad chunk size, a header with a control
    character) at ERROR, with a traceback and the bytes it choked on, an Authorization line's
    too when that is the broken one: a client sending broken HTTP in a loop would fill the
    log. On aiohttp's server logger such a record becomes one WARNING line naming the client
    and what was wrong, at most one a kind of error every ``interval`` seconds, the next
    carrying how many were suppressed. Any other record passes as it is."""

    interval = 10.0

    def __init__(self) -> None:
        super().__init__()
        # error kind -> [time of the last line logged, suppressed since]; aiohttp's parse
        # errors are a handful of classes, so this stays small
        self._last: dict[str, list[float]] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        kind = type(exc).__name__
        now = time.monotonic()
        entry = self._last.get(kind)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            self.suppressed += 1
            return False
        # the first line only: the lines after it quote the request's bytes
        what = (exc.message or kind).split("\n", 1)[0].rstrip(": ")[:120]
        args = record.args if isinstance(record.args, tuple) else ()
        msg = "bad HTTP request from %s, answered %s: %s"
        values: tuple[object, ...] = (args[0] if args else "?", exc.code, what)
        if entry is not None and entry[1]:
            msg += " (%d similar suppressed in the last %.0f s)"
            values += (int(entry[1]), now - entry[0])
        self._last[kind] = [now, 0]
        record.msg, record.args = msg, values
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _bound_bad_request_logs() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestLog) for f in server_log.filters):
        server_log.addFilter(BadRequestLog())


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, default_host: str = "127.0.0.1") -> ListenAddress:
        """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[::1]:PORT``."""
        from ..errors import ConfigError

        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = "", text
        host = host.strip("[]") or default_host
        # ASCII digits: isdigit() alone takes '²', which int() refuses
        if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
            raise ConfigError(
                f"--listen {text!r} is not HOST:PORT",
                hint="e.g. 127.0.0.1:9093, :9093 or 0.0.0.0:9093",
            )
        return cls(host, int(port))

    def offset(self, n: int) -> ListenAddress:
        """The address of worker ``n`` of ``streamproc run --workers``: port + n."""
        return ListenAddress(self.host, self.port + n if self.port else 0)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def open_without_token(host: str, token: str | None) -> bool:
    """True when ``host`` lets other machines in and no token guards the API: worth a
    warning at start (anyone reaching it reads alerts and adds silences)."""
    import ipaddress

    if token:
        return False
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: assume it resolves to another interface
        return True


def server_ssl_context(
    certfile: str, keyfile: str | None = None, cafile: str | None = None
) -> ssl.SSLContext:
    """TLS for the listener: its certificate and key; with ``cafile``, clients must present
    a certificate signed by that CA (mutual TLS)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class Listener:
    """One aiohttp server for metrics, health and the APIs. Mount, then ``start()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or None
        self.ssl_context = ssl_context
        self.max_body_bytes = max_body_bytes
        # client_max_size: a handler reading a chunked body past the limit gets 413 too
        self.app = web.Application(
            client_max_size=max_body_bytes, middlewares=[self._limit_body, self._check_token]
        )
        self._runner: web.AppRunner | None = None
        self.tokenless: tuple[str, ...] = ()  # route prefixes served without the token

    # -- what is served ---------------------------------------------------------------------

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        self.app.add_routes(list(routes))

    def mount(self, prefix: str, app: web.Application) -> None:
        """Serve ``app`` under ``prefix`` (e.g. ``/api/v1``); the token and the body limit
        apply to it as to every route."""
        self.app.add_subapp(prefix, app)

    def without_token(self, prefix: str) -> None:
        """Serve the routes under ``prefix`` without the bearer token: for senders that
        cannot send one and prove who they are otherwise (CI webhooks sign their bodies with
        a secret of their own: sources/http.py). Decided on the route a request resolved
        to, not on its raw path, so ``.../webhooks/../events/x`` cannot slip through."""
        self.tokenless = (*self.tokenless, prefix)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        _bound_bad_request_logs()
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, **SERVER_OPTIONS)
        await runner.setup()
        site = web.TCPSite(
            runner, self.host, self.port, ssl_context=self.ssl_context, reuse_address=True
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            # asyncio words it "error while attempting to bind on address ...": say it as
            # the OS does, with the address, for `streamproc run: Address already in use`
            errno = exc.errno or 0
            raise OSError(
                errno,
                os.strerror(errno) if errno else str(exc),
                str(ListenAddress(self.host, self.port)),
            ) from None
        self._runner = runner
        if runner.addresses:
            self.port = int(runner.addresses[0][1])

    @property
    def address(self) -> tuple[str, int]:
        """The address the socket is bound to (port 0 given: the port picked)."""
        assert self._runner is not None and self._runner.addresses, "not started"
        host, port = self._runner.addresses[0][:2]
        return str(host), int(port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{ListenAddress(self.host, self.port)}"

    # -- middlewares ------------------------------------------------------------------------

    @web.middleware
    async def _limit_body(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            # refused before a byte of it is read
            raise web.HTTPRequestEntityTooLarge(
                max_size=self.max_body_bytes,
                actual_size=length,
                text=f"request body of {length} bytes is over the limit of "
                f"{self.max_body_bytes} bytes\n",
            )
        return await handler(request)

    def _tokenless(self, request: web.Request) -> bool:
        if not self.tokenless:
            return False
        resource = request.match_info.route.resource
        return resource is not None and resource.canonical.startswith(self.tokenless)

    @web.middleware
    async def _check_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token is None or request.path in HEALTH_PATHS or self._tokenless(request):
            return await handler(request)
        sent = request.headers.get("Authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        ):
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Bearer realm="streamproc"'},
                text="unauthorized: send the API token as 'Authorization: Bearer <token>'\n",
            )
        return await handler(request)
