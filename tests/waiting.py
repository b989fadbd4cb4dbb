"""Waiting for something a broker, a worker or a runtime does in its own time.

A test polls a condition until it holds, and fails, saying what it waited for, when it does not
hold within the timeout: a wait that ran out is the test's failure, not a reason to assert on
whatever state was there at the end.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


def _timed_out(timeout: float, what: str, detail: Callable[[], Any] | None) -> AssertionError:
    message = f"timed out after {timeout:g}s waiting for {what}"
    if detail is not None:
        message += f" ({detail()})"
    return AssertionError(message)


async def wait_until(
    condition: Callable[[], Any | Awaitable[Any]],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    detail: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``condition`` (a function, or a coroutine function) until it returns something
    true, and return that; after ``timeout`` seconds raise AssertionError naming ``what`` and,
    when given, what ``detail()`` says about the state then."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, detail)
        await asyncio.sleep(interval)


def wait_until_sync(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    detail: Callable[[], Any] | None = None,
) -> Any:
    """``wait_until`` for code outside an event loop (a subprocess, a server thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, detail)
        time.sleep(interval)
