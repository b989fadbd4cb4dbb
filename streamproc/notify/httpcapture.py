"""See the HTTP status and Retry-After of what an Apprise service just sent.

Apprise services report only success or failure; a 429 with ``Retry-After: 30`` looks like any
other failure. To honour Retry-After for every requests-based service (json, form, Slack,
Discord, Teams, ...), ``capture()`` records the last response that ``requests`` received *in
the current thread* while a send runs. The hook wraps ``requests.Session.send`` once per
process and does nothing for threads that are not capturing, so other users of ``requests``
are unaffected.
"""

from __future__ import annotations

import base64
import email.utils
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

_local = threading.local()
_installed = False
_install_lock = threading.Lock()


@dataclass(slots=True)
class Captured:
    status: int | None = None
    retry_after: float | None = None  # seconds, parsed from the last response
    intercept: bool = False  # don't send: record the requests, answer 200
    requests: list[LightRequest] = field(default_factory=list)
    unsupported: bool = False  # an intercepted call we cannot replay (files, custom auth)


@dataclass(slots=True)
class LightRequest:
    """What ``requests.request(...)`` was asked to send, ready for fasthttp."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def _light(method: str, url: str, kwargs: dict[str, Any]) -> LightRequest | None:
    if kwargs.get("files") or kwargs.get("json") is not None:
        return None
    headers = {str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()}
    params = kwargs.get("params")
    if params:
        query = urlencode(params, doseq=True)
        url = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
    data = kwargs.get("data")
    if data is None:
        body = b""
    elif isinstance(data, bytes):
        body = data
    elif isinstance(data, str):
        body = data.encode("utf-8")
    elif isinstance(data, dict | list | tuple):
        body = urlencode(data, doseq=True).encode("ascii")
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        return None
    auth = kwargs.get("auth")
    if isinstance(auth, tuple) and len(auth) == 2:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode("latin-1", "replace"))
        headers["Authorization"] = "Basic " + token.decode("ascii")
    elif auth is not None:
        return None
    return LightRequest(str(method).upper(), url, headers, body)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from ``Retry-After: 120`` or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _answer(url: str) -> requests.Response:
    """The empty 200 an intercepted call gets. One per thread, reused: a new Response (with
    its cookie jar) cost more than the rest of the interception; the services only read
    ``status_code`` (and ``content``/``text``) before returning."""
    fake: requests.Response | None = getattr(_local, "answer", None)
    if fake is None:
        fake = requests.Response()
        fake.status_code, fake.reason, fake._content = 200, "OK", b""
        fake._content_consumed = True  # close() (a ``with`` block) then needs no raw stream
        fake.encoding = "utf-8"
        _local.answer = fake
    fake.url = url
    return fake


def _install() -> None:
    global _installed
    if _installed:  # every send calls this: skip the lock once done
        return
    with _install_lock:
        if _installed:
            return
        original = requests.Session.send

        original_request = requests.request

        def request(method: str, url: str | bytes, **kwargs: Any) -> requests.Response:
            # Intercept at requests.request (what the webhook services call), before a
            # Session is built: that setup cost more than the whole send on the fast path.
            box: Captured | None = getattr(_local, "box", None)
            if box is None or not box.intercept:
                return original_request(method, url, **kwargs)
            text_url = url.decode("utf-8") if isinstance(url, bytes) else url  # as requests does
            light = _light(method, text_url, kwargs)
            if light is None:
                box.unsupported = True
            else:
                box.requests.append(light)
            return _answer(text_url)

        def send(
            self: requests.Session, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            box: Captured | None = getattr(_local, "box", None)
            response = original(self, request, **kwargs)
            if box is not None:
                box.status = response.status_code
                box.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return response

        requests.Session.send = send  # type: ignore[method-assign]
        requests.request = request
        _installed = True


@contextmanager
def capture(*, intercept: bool = False) -> Iterator[Captured]:
    """Within the block, the current thread's last HTTP response lands in the yielded box.

    With ``intercept``, calls to ``requests.request`` send nothing: each is recorded in
    ``box.requests`` and answered with an empty 200, so fasthttp can send it instead.
    """
    _install()
    box = Captured(intercept=intercept)
    _local.box = box
    try:
        yield box
    finally:
        _local.box = None
