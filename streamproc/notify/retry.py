"""Retry: exponential backoff with jitter, bounded by attempts and by age. Stage 7 of notify.

    attempt   1    2      3          4                    5 ...
    delay        1s  ~2s     ~4s          ~8s                  ... capped at max_delay
                (each delay drawn from [d/2, d]: "equal jitter", so many channels failing
                 together do not retry in lock step, yet the delay still grows)

A message whose attempts reach ``max_attempts``, or whose age reaches ``max_age``, stops
retrying on its channel: it moves to the fallback channel, and from there to the dead letters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .settings import RetrySettings


@dataclass(slots=True)
class RetryPolicy:
    settings: RetrySettings
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        s = self.settings
        base = min(s.max_delay, s.initial * s.multiplier ** max(0, failures - 1))
        return self.rng.uniform(base / 2, base)

    def exhausted(self, attempts: int, created: float, now: float) -> bool:
        s = self.settings
        return attempts >= s.max_attempts or now - created >= s.max_age
