"""Rate limit: a token bucket per channel (default 1 message/s, burst 5). ``rate limit``.

    tokens  5 ■■■■■            burst of 5 leaves at once
            0 .......■.......■  then one per 1/rate seconds
    queued  12 -> 4 sent alone + 1 digest of 8 ("... (+7 more)"), using the 5 tokens

When more messages are due than there are tokens, the oldest go out one by one and the rest
are rolled into one digest message: nothing waits for hours behind a slow bucket and nothing
is dropped. A 429 answer with ``Retry-After`` pauses the channel (``pause_until``) and empties
the bucket, so the digest forms while the channel waits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .stage import Batch, Unit

if TYPE_CHECKING:
    from .outbox import OutboxRow


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second; 0 = unlimited
    burst: int
    tokens: float = -1.0
    updated: float | None = None

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now if self.updated is None else max(self.updated, now)

    def available(self, now: float) -> int:
        if self.unlimited:
            return 1 << 30
        self._refill(now)
        return int(self.tokens)

    def take(self, now: float, n: int = 1) -> None:
        if not self.unlimited:
            self._refill(now)
            self.tokens -= n

    def wait_time(self, now: float) -> float:
        """Seconds until one whole token is available."""
        if self.unlimited:
            return 0.0
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def drain(self, now: float) -> None:
        self._refill(now)
        self.tokens = min(self.tokens, 0.0)


def plan(queued: int, tokens: int, *, digest_max: int) -> list[range]:
    """Split ``queued`` due messages (oldest first) into send units for ``tokens`` tokens.

    Each unit is a range of indexes: one message alone, or several rolled into a digest.
    With enough tokens every message is its own unit; otherwise ``tokens - 1`` go alone and
    the rest (up to ``digest_max``) become one digest.
    """
    if queued <= 0 or tokens <= 0:
        return []
    if queued <= tokens:
        return [range(i, i + 1) for i in range(queued)]
    singles = [range(i, i + 1) for i in range(tokens - 1)]
    start = tokens - 1
    return singles + [range(start, min(queued, start + max(2, digest_max)))]


@dataclass(slots=True)
class Pacing:
    """How one channel is paced now; lives as long as its worker (a reload keeps it)."""

    bucket: TokenBucket
    paused_until: float = 0.0  # 429 or backoff: nothing is sent before this
    failures: int = 0  # consecutive failed sends


class RateLimitStage:
    """``rate limit``: the due rows of one channel -> the messages to send now, one token
    each (the rest rolled into a digest by ``plan``), at most one per free send slot."""

    name = "rate limit"

    def __init__(self, pacing: Pacing, free: Callable[[], int], *, digest_max: int) -> None:
        self.pacing = pacing
        self.free = free  # send slots not in use (the channel's max_in_flight)
        self.digest_max = digest_max

    def fetch_limit(self, now: float, free: int) -> int:
        """How many due rows to read for one round: enough for every token, plus a digest."""
        bucket = self.pacing.bucket
        if bucket.unlimited:
            return free
        return min(bucket.available(now), free) + self.digest_max

    async def run(self, batch: Batch[OutboxRow]) -> Batch[Unit]:
        rows, now, bucket = batch.items, batch.now, self.pacing.bucket
        units = (
            [range(i, i + 1) for i in range(len(rows))]
            if bucket.unlimited
            else plan(len(rows), bucket.available(now), digest_max=self.digest_max)
        )
        out: list[Unit] = []
        for unit in units[: self.free()]:
            bucket.take(now)
            out.append(Unit([rows[i] for i in unit]))
        return batch.next(out)
