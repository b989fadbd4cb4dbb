"""password_spray: failures for >= 20 distinct usernames from one ip_address within 10 min.

One address trying one common password against many accounts stays under every per-account
threshold (brute_force never fires); counting *distinct usernames per address* catches it.
The window mechanics (exact distinct counts, inclusive edges, out-of-order failures) are
described in ``_distinct.py``::

    failures from 198.51.100.7:  alice bob carol ... (20th distinct user)
    ---x----x----x--- ... ---x----> event time
       |<------ 10 min ------>|  FIRE once; quiet for ``realert`` (default: the window)
"""

from __future__ import annotations

from typing import Any

from ._common import clip
from ._distinct import DistinctDetector, _Distinct
from .base import register


@register
class PasswordSpray(DistinctDetector):
    kind = "password_spray"
    family = "auth-logs"
    severity = "high"
    key_field = "ip_address"
    value_field = "username"
    defaults = {"threshold": 20, "window": 600.0, "realert": 0.0, "samples": 5}
    colocate = ("ip_address",)

    def describe(
        self, key: str, st: _Distinct, extra: dict[str, Any] | None
    ) -> tuple[str, str, dict[str, Any]]:
        n = len(st.values)
        return (
            f"Password spray from {clip(key)}: {n} accounts",
            f"Failed logins for {n} distinct usernames from {clip(key)} within "
            f"{self.window / 60:g} minutes (threshold {self.threshold}).",
            {"ip_address": key},
        )
