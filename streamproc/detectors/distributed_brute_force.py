"""distributed_brute_force: failures for one username from >= 10 distinct ip_address, or from
>= 5 distinct networks (IPv4 /24, IPv6 /48), within 1 h.

A botnet guessing one account's password spreads the attempts over many addresses, so no single
(username, ip) pair reaches the brute_force threshold. Counting *distinct sources per username*
catches it; counting networks as well catches a smaller botnet spread over several providers
sooner than the address rule would. The window mechanics are in ``_distinct.py``::

    failures for alice, by source address:
    --a----b---c---d--- ... --j----> event time
      |<-------- 1 h --------->|  10th distinct address (or 5th distinct /24): FIRE once
"""

from __future__ import annotations

from typing import Any

from ._common import clip, network_of
from ._distinct import DistinctDetector, _Distinct
from .base import register


@register
class DistributedBruteForce(DistinctDetector):
    kind = "distributed_brute_force"
    family = "auth-logs"
    severity = "high"
    key_field = "username"
    value_field = "ip_address"
    defaults = {
        "threshold": 10,
        "network_threshold": 5,
        "window": 3600.0,
        "realert": 0.0,
        "samples": 5,
    }
    colocate = ("username",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        # 0 turns the network rule off
        self.network_threshold = int(self.params["network_threshold"])

    def extra_rule(self, st: _Distinct) -> dict[str, Any] | None:
        nt = self.network_threshold
        if nt <= 0 or len(st.values) < nt:
            return None
        networks = {network_of(ip) for ip in st.values}
        if len(networks) < nt:
            return None
        return {"rule": "networks"}

    def describe(
        self, key: str, st: _Distinct, extra: dict[str, Any] | None
    ) -> tuple[str, str, dict[str, Any]]:
        n = len(st.values)
        networks = sorted({network_of(ip) for ip in st.values})
        if extra is None:
            extra = {}
        extra.setdefault("rule", "addresses")
        extra["distinct_networks"] = len(networks)
        extra["networks"] = networks[:50]
        extra["network_threshold"] = self.network_threshold
        return (
            f"Distributed brute force on {clip(key)}: {n} addresses, {len(networks)} networks",
            f"Failed logins for user {clip(key)} from {n} distinct addresses in "
            f"{len(networks)} networks within {self.window / 60:g} minutes (thresholds: "
            f"{self.threshold} addresses or {self.network_threshold} networks).",
            {"username": key},
        )
