"""Random draws the family generators share: skewed (Zipf) popularity, weighted choices and
IPv4 addresses from reserved first octets."""

from __future__ import annotations

import random
from typing import Any


def zipf_cum(n: int, s: float = 1.1) -> list[float]:
    total = 0.0
    out = []
    for rank in range(1, n + 1):
        total += rank**-s
        out.append(total)
    return out


def random_ip(rng: random.Random, first_octets: tuple[int, ...]) -> str:
    return (
        f"{rng.choice(first_octets)}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}."
        f"{rng.randrange(2, 254)}"
    )


def net24(ip: str) -> str:
    return ip.rsplit(".", 1)[0]


def weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...], k: int) -> list[Any]:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs], k=k)
