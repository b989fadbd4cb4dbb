"""See the HTTP status and Retry-After of what an Apprise service just sent.

Apprise services report only success or failure; a 429 with ``Retry-After: 30`` looks like any
other failure. To honour Retry-After for every requests-based service (json, form, Slack,
Discord, Teams, ...), ``capture()`` records the last response that ``requests`` received *in
the current thread* while a send runs. The hook wraps ``requests.Session.send`` once per
process and does nothing for threads that are not capturing, so other users of ``requests``
are unaffected.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

_local = threading.local()
_installed = False
_install_lock = threading.Lock()


@dataclass(slots=True)
class Captured:
    status: int | None = None
    retry_after: float | None = None  # seconds, parsed from the last response
    intercept: bool = False  # don't send: record the prepared requests, answer 200
    requests: list[Any] = field(default_factory=list)


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


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        original = requests.Session.send

        def send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
            box: Captured | None = getattr(_local, "box", None)
            if box is not None and box.intercept:
                box.requests.append(request)
                fake = requests.Response()
                fake.status_code, fake.reason, fake._content = 200, "OK", b""
                fake.request, fake.url, fake.encoding = request, request.url, "utf-8"
                return fake
            response = original(self, request, **kwargs)
            if box is not None:
                box.status = response.status_code
                box.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return response

        requests.Session.send = send  # type: ignore[method-assign]
        _installed = True


@contextmanager
def capture(*, intercept: bool = False) -> Iterator[Captured]:
    """Within the block, the current thread's last HTTP response lands in the yielded box.

    With ``intercept`` nothing is sent: each prepared request is recorded in ``box.requests``
    and answered with an empty 200, so a service's request can be sent by fasthttp instead.
    """
    _install()
    box = Captured(intercept=intercept)
    _local.box = box
    try:
        yield box
    finally:
        _local.box = None
