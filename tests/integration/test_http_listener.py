"""The one HTTP listener: metrics and health, a bearer token, a body limit, TLS, and apps
mounted by other features, all over real HTTP on loopback."""

from __future__ import annotations

import argparse
import logging
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from streamproc.config import parse_config_text
from streamproc.errors import ConfigError
from streamproc.http.listener import ListenAddress, Listener
from streamproc.ops.metrics import Metrics, routes
from streamproc.ops.redact import redact_text
from tests.certificates import make_certificates

TOKEN = "s3cret-token-for-tests-0123456789"


def echo_app() -> web.Application:
    """What another feature mounts: it reads the body, so the limit must hold for it."""

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"binding": request.match_info["binding"], "bytes": len(body)})

    app = web.Application()
    app.add_routes([web.post("/events/{binding}", echo)])
    return app


async def started(
    token: str | None = None, max_body_bytes: int = 4096, ssl_context: ssl.SSLContext | None = None
) -> Listener:
    listener = Listener(
        "127.0.0.1", 0, token=token, max_body_bytes=max_body_bytes, ssl_context=ssl_context
    )
    listener.add_routes(routes(Metrics(process_metrics=False)))
    listener.mount("/api/v1", echo_app())
    await listener.start()
    return listener


@pytest.fixture
async def guarded() -> AsyncIterator[Listener]:
    listener = await started(token=TOKEN)
    yield listener
    await listener.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_health_answers_without_a_token_and_everything_else_needs_it(
    guarded: Listener, http: aiohttp.ClientSession
) -> None:
    for path in ("/healthz", "/readyz"):
        async with http.get(guarded.url + path) as resp:
            assert resp.status in (200, 503), path  # readyz: 503 until the runtime is ready
    for method, path in (("GET", "/metrics"), ("POST", "/api/v1/events/auth")):
        async with http.request(method, guarded.url + path) as resp:
            assert resp.status == 401, path
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.request(method, guarded.url + path, headers=bearer(TOKEN)) as resp:
            assert resp.status == 200, path


async def test_a_wrong_token_is_refused_and_never_echoed(
    guarded: Listener, http: aiohttp.ClientSession
) -> None:
    wrong = "not-the-token-but-a-guess-0123456789"
    for headers in (
        bearer(wrong),
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        bearer(TOKEN[:-1]),
    ):
        async with http.get(guarded.url + "/metrics", headers=headers) as resp:
            body = await resp.text()
            assert resp.status == 401
            assert wrong not in body and TOKEN not in body and TOKEN[:-1] not in body
            assert "Authorization: Bearer <token>" in body


async def test_a_mounted_app_gets_the_body_limit_413_before_it_reads(
    http: aiohttp.ClientSession,
) -> None:
    listener = await started(max_body_bytes=4096)
    try:
        url = listener.url + "/api/v1/events/auth"
        async with http.post(url, data=b"x" * 4096) as resp:
            assert resp.status == 200 and (await resp.json())["bytes"] == 4096
        async with http.post(url, data=b"x" * 4097) as resp:  # Content-Length: refused at once
            assert resp.status == 413
            assert "over the limit of 4096 bytes" in await resp.text()

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut while reading
            for _ in range(10):
                yield b"y" * 1000

        async with http.post(url, data=chunks()) as resp:
            assert resp.status == 413
    finally:
        await listener.stop()


async def test_metrics_and_readiness_are_served_by_the_listener(
    http: aiohttp.ClientSession,
) -> None:
    metrics = Metrics(process_metrics=False)
    metrics.records_in.labels("auth-logs").inc(3)
    listener = Listener("127.0.0.1", 0)
    listener.add_routes(routes(metrics))
    await listener.start()
    try:
        async with http.get(listener.url + "/metrics") as resp:
            assert 'streamproc_records_in_total{topic="auth-logs"} 3.0' in await resp.text()
        async with http.get(listener.url + "/readyz") as resp:
            assert resp.status == 503
        metrics.set_ready("sources")
        metrics.set_ready("state")
        async with http.get(listener.url + "/readyz") as resp:
            assert resp.status == 200 and "sources: ready" in await resp.text()
        async with http.head(listener.url + "/healthz") as resp:
            assert resp.status == 200
    finally:
        await listener.stop()


async def test_tls_serves_https_and_plain_http_gets_nothing(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    pytest.importorskip("cryptography")
    ca, cert, key = make_certificates(tmp_path)
    config = parse_config_text(f"api: {{ssl_certfile: {cert}, ssl_keyfile: {key}}}\n")
    listener = await started(ssl_context=config.api.ssl_context())
    try:
        assert listener.url.startswith("https://")
        client_ctx = ssl.create_default_context(cafile=str(ca))
        async with http.get(listener.url + "/healthz", ssl=client_ctx) as resp:
            assert resp.status == 200
        with pytest.raises(aiohttp.ClientError):
            async with http.get(listener.url.replace("https", "http") + "/healthz") as resp:
                await resp.read()
    finally:
        await listener.stop()


async def test_with_ssl_cafile_only_clients_with_a_certificate_of_that_ca_get_in(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    pytest.importorskip("cryptography")
    ca, cert, key = make_certificates(tmp_path)
    config = parse_config_text(
        f"api: {{ssl_certfile: {cert}, ssl_keyfile: {key}, ssl_cafile: {ca}}}\n"
    )
    listener = await started(ssl_context=config.api.ssl_context())
    try:
        anonymous = ssl.create_default_context(cafile=str(ca))
        with pytest.raises(aiohttp.ClientError):
            async with http.get(listener.url + "/healthz", ssl=anonymous) as resp:
                await resp.read()
        known = ssl.create_default_context(cafile=str(ca))
        known.load_cert_chain(str(cert), str(key))  # (signed by the CA; any such one)
        async with http.get(listener.url + "/healthz", ssl=known) as resp:
            assert resp.status == 200
    finally:
        await listener.stop()


def test_api_section_is_checked_and_its_token_is_a_secret(tmp_path: Path) -> None:
    config = parse_config_text(
        f"api: {{token: {TOKEN}, max_body_bytes: '2048', resolve_timeout: 30m}}\n"
    )
    assert config.api.token == TOKEN
    assert config.api.max_body_bytes == 2048 and config.api.resolve_timeout == 1800
    from streamproc.ops.redact import register_config_secrets

    register_config_secrets(config)
    assert TOKEN not in redact_text(f"Authorization: Bearer {TOKEN}")
    for text, says in (
        ("api: {tokn: x}", "unknown api setting 'tokn'"),
        ("api: {max_body_bytes: 10}", "api.max_body_bytes"),
        ("api: {ssl_keyfile: k.pem}", "need api.ssl_certfile"),
        ("api: {resolve_timeout: soon}", "api.resolve_timeout"),
        ("api: {ssl_certfile: /nonexistent.pem}", "cannot load"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config_text(text + "\n", file="c.yaml")
        assert says in str(err.value), text


def test_listen_address_and_each_workers_port() -> None:
    from streamproc.commands.cli import build_parser
    from streamproc.commands.workers import child_argv

    assert ListenAddress.parse("9093") == ListenAddress("127.0.0.1", 9093)
    assert ListenAddress.parse(":9093") == ListenAddress("127.0.0.1", 9093)
    assert ListenAddress.parse("0.0.0.0:9093") == ListenAddress("0.0.0.0", 9093)
    assert str(ListenAddress.parse("[::1]:9093")) == "[::1]:9093"
    for bad in ("host:", "host:http", "1:99999", ":\u00b2", "host:9\u00b9"):
        with pytest.raises(Exception, match="HOST:PORT"):
            ListenAddress.parse(bad)

    def listen_of(argv: list[str], index: int) -> str:
        args: argparse.Namespace = build_parser().parse_args(["run", *argv])
        child = child_argv(args, index, None)
        return child[child.index("--listen") + 1]

    assert listen_of(["--listen", "0.0.0.0:9100"], 2) == "0.0.0.0:9102"
    # --metrics-port is an alias with its --metrics-host
    assert listen_of(["--metrics-port", "9100"], 1) == "127.0.0.1:9101"
    assert listen_of(["--metrics-port", "9100", "--metrics-host", "0.0.0.0"], 0) == "0.0.0.0:9100"


def test_run_with_a_port_in_use_says_so_without_a_trace(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamproc.commands.cli",
                "run",
                "--demo",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert f"streamproc run: Address already in use (127.0.0.1:{port})" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_reload_that_changes_the_api_section_says_it_needs_a_restart() -> None:
    from streamproc.pipeline.reload import plan

    old = parse_config_text(f"api: {{token: {TOKEN}}}\n")
    new = parse_config_text(f"api: {{token: {TOKEN}-rotated}}\n")
    assert plan(old, parse_config_text(f"api: {{token: {TOKEN}}}\n")) == []
    assert plan(old, new) == ["api: settings (token, TLS, max_body_bytes, resolve_timeout)"]


def test_listening_beyond_loopback_without_a_token_is_worth_a_warning() -> None:
    from streamproc.http.listener import open_without_token

    assert open_without_token("0.0.0.0", None) and open_without_token("10.0.0.5", None)
    assert open_without_token("streamproc.internal", None)
    assert not open_without_token("0.0.0.0", TOKEN)
    for local in ("127.0.0.1", "::1", "localhost"):
        assert not open_without_token(local, None), local


async def test_malformed_requests_are_logged_at_a_bounded_rate_without_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A client that sends broken HTTP (bad chunk sizes, bad headers) over and over must not
    # fill the log: aiohttp logs each at ERROR with a traceback unless told otherwise.
    import asyncio

    listener = await started(token=TOKEN)
    host, port = listener.address
    broken = [
        b"POST /api/v1/events/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\x01\r\n\r\n",
    ]
    try:
        with caplog.at_level(logging.DEBUG):
            for i in range(60):
                reader, writer = await asyncio.open_connection(host, port)
                # a first request that is fine, so the broken one is not the connection's first
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" + broken[i % 4])
                await writer.drain()
                answer = await reader.read()
                writer.close()
                assert b" 400 " in answer
    finally:
        await listener.stop()
    server = [r for r in caplog.records if r.name.startswith("aiohttp")]
    loud = [r for r in server if r.levelno >= logging.WARNING]
    assert 1 <= len(loud) <= 4, [r.getMessage() for r in loud]  # one a kind of error a 10 s
    assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in loud)
    assert "bad HTTP request from 127.0.0.1" in loud[0].getMessage()
    assert TOKEN not in caplog.text
