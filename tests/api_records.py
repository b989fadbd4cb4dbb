"""api-access-logs records at times given as seconds after ``T0``, for rule and detector
tests that build their own streams."""

from __future__ import annotations

from typing import Any

import orjson

T0 = 1_772_323_200  # 2026-03-01T00:00:00Z


def iso(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def req(
    t: float,
    ip: str = "203.0.113.9",
    endpoint: str = "/api/v1/items",
    status: int = 200,
    method: str = "GET",
    **extra: Any,
) -> bytes:
    return orjson.dumps(
        {
            "timestamp": iso(T0 + t),
            "endpoint": endpoint,
            "method": method,
            "status_code": status,
            "ip_address": ip,
            "user_agent": "curl/8",
            **extra,
        }
    )
