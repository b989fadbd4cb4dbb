"""A Runtime started for the length of a ``with`` block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from streamproc.config import Config
from streamproc.pipeline.runtime import Runtime


@asynccontextmanager
async def running(config: Config, **options: Any) -> AsyncIterator[Runtime]:
    """``Runtime(config, **options)``, started; stopped on leaving the block, whatever
    happened in it, so that what a test asserts afterwards is what the stopped runtime
    delivered, committed and counted."""
    runtime = Runtime(config, **options)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
