"""Backoff: how long a reconnect loop waits before its next try.

Every loop that reaches a broker (Kafka consumers and producers, the alert log, the shared
tables, MQTT) waits the same way: 0.5 s, then twice as long each time, at most 30 s, and
from the start again once a try succeeds::

    try ─✗─ 0.5 s ─ try ─✗─ 1 s ─ try ─✗─ 2 s ─ ... ─ try ─✗─ 30 s ─ try ─✓─ (reset)
"""

from __future__ import annotations

import asyncio

INITIAL = 0.5
CAP = 30.0


class Backoff:
    """The wait before the next try (``delay``) and how many tries failed (``attempt``)."""

    __slots__ = ("attempt", "cap", "delay", "initial")

    def __init__(self, initial: float = INITIAL, cap: float = CAP) -> None:
        self.initial = initial
        self.cap = cap
        self.delay = initial
        self.attempt = 0

    async def wait(self) -> None:
        """Count a failed try, wait ``delay``, then double it (up to ``cap``)."""
        self.attempt += 1
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap)

    def reset(self) -> None:
        """A try succeeded: the next failure waits ``initial`` again."""
        self.delay = self.initial
        self.attempt = 0
