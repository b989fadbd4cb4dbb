"""Small helpers the built-in detectors share: compact keys, interning, IP networks, samples.

Memory is the constraint that shapes these. A detector that tracks a million keys pays for
every object it keeps per key, so:

- a two-part key (username, ip) is packed into *one* string (``pack2``) instead of a tuple of
  two strings: one object instead of three, and it is unambiguous because the first part is
  length-prefixed (a username may contain any character, including the separator);
- low-cardinality strings that end up in per-key state (user agents, countries) go through a
  bounded ``Interner`` so a million keys share a few hundred string objects;
- IPv4 /24 and IPv6 /48 networks are computed once per distinct address (bounded cache).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from itertools import repeat
from operator import eq, not_
from typing import Any, TypeVar, overload

_T = TypeVar("_T")

SAMPLE_TEXT_LIMIT = 512  # characters of one field kept in an alert's samples


def failed(data: dict[str, Any]) -> bool:
    """Prefilter of the detectors that count failed logins."""
    return not data["success"]


def failed_column(frame: Any) -> Any:
    """``failed`` over columns (Detector.column_prefilter)."""
    return map(not_, frame.column("success"))


def column_equals(name: str, value: Any) -> Callable[[Any], Any]:
    """A column prefilter: the records whose ``name`` is ``value``."""

    def select(frame: Any) -> Any:
        return map(eq, frame.column(name), repeat(value))

    return select


def succeeded(data: dict[str, Any]) -> bool:
    """Prefilter of the detectors that judge successful logins."""
    return bool(data["success"])


def pack2(a: str, b: str) -> str:
    """One string for the pair (a, b); ``unpack2`` inverts it for any a and b."""
    return f"{len(a)}:{a}{b}"


def unpack2(key: str) -> tuple[str, str]:
    n, _, rest = key.partition(":")
    size = int(n)
    return rest[:size], rest[size:]


class Interner:
    """``intern(s)`` returns one shared object per distinct string, for up to ``cap`` strings.

    Past the cap a string is returned as is (correct, just not shared), so hostile input with
    unbounded distinct values cannot grow this table.
    """

    __slots__ = ("_table", "cap")

    def __init__(self, cap: int = 65536) -> None:
        self._table: dict[str, str] = {}
        self.cap = cap

    @overload
    def __call__(self, value: str) -> str: ...
    @overload
    def __call__(self, value: _T) -> _T: ...

    def __call__(self, value: Any) -> Any:
        if value is None or type(value) is not str:
            return value
        table = self._table
        shared = table.get(value)
        if shared is not None:
            return shared
        if len(table) < self.cap and len(value) <= SAMPLE_TEXT_LIMIT:
            table[value] = value
        return value


_NETWORKS: dict[str, str] = {}
_NETWORKS_CAP = 65536
# the network of an address ``network_of`` has seen, else None: the cache's own lookup, for a
# loop over many records that calls ``network_of`` only on a miss (a Python call a record
# costs more than the lookup). The cache is cleared in place, never replaced.
cached_network: Callable[[str], str | None] = _NETWORKS.get
_OCTETS = frozenset(str(i) for i in range(256))  # canonical decimal octets, no leading zeros


def network_of(ip: str) -> str:
    """The /24 of an IPv4 address or the /48 of an IPv6 address, as a short string.

    IPv4-mapped IPv6 (``::ffff:198.51.100.7``) counts as IPv4. A value that is not an IP
    address (hostile or broken producers) is its own network, so it still counts as distinct.
    """
    net = _NETWORKS.get(ip)
    if net is not None:
        return net
    parts = ip.split(".")
    if (
        len(parts) == 4
        and parts[0] in _OCTETS
        and parts[1] in _OCTETS
        and parts[2] in _OCTETS
        and parts[3] in _OCTETS
    ):
        net = f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"  # the common case, without ipaddress
    else:
        try:
            addr = ipaddress.ip_address(ip.strip().split("%", 1)[0])
        except ValueError:
            net = ip
        else:
            if addr.version == 6 and addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            if addr.version == 4:
                net = str(ipaddress.ip_network(f"{addr}/24", strict=False))
            else:
                net = str(ipaddress.ip_network(f"{addr}/48", strict=False))
    if len(_NETWORKS) >= _NETWORKS_CAP:
        _NETWORKS.clear()
    _NETWORKS[ip] = net
    return net


def clip(value: Any) -> Any:
    """A sample value safe to put in an alert: long strings are cut."""
    if type(value) is str and len(value) > SAMPLE_TEXT_LIMIT:
        return value[:SAMPLE_TEXT_LIMIT] + "..."
    return value


def sample_of(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in fields:
        v = data.get(k)
        if v is not None:
            # inline clip(): this runs for every alert with samples
            out[k] = (
                v
                if type(v) is not str or len(v) <= SAMPLE_TEXT_LIMIT
                else v[:SAMPLE_TEXT_LIMIT] + "..."
            )
    return out


_DAYS: dict[int, str] = {}


def day_of(ts: float) -> str:
    """The UTC calendar day of an event time, as YYYY-MM-DD (cached per day)."""
    n = int(ts // 86400)
    day = _DAYS.get(n)
    if day is None:
        if len(_DAYS) > 4096:
            _DAYS.clear()
        day = _DAYS[n] = time.strftime("%Y-%m-%d", time.gmtime(n * 86400))
    return day


_MINUTES: dict[int, str] = {}
_SECONDS = tuple(f"{n:02d}" for n in range(60))


def iso(ts: float) -> str:
    """ISO 8601 UTC with a Z, milliseconds only when the time has a fraction."""
    whole = int(ts // 1)
    # the text up to the seconds is cached per minute: formatting it costs an alert's samples
    # ~13,600 CPU instructions a call, this ~4,500 in a minute seen before (callgrind)
    minute = whole // 60
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) > 4096:
            _MINUTES.clear()
        secs = whole % 86400
        head = _MINUTES[minute] = f"{day_of(ts)}T{secs // 3600:02d}:{secs % 3600 // 60:02d}:"
    text = head + _SECONDS[whole % 60]
    frac = ts - whole
    if frac:
        text += f".{min(999, round(frac * 1000)):03d}"
    return text + "Z"


def parse_list(value: str) -> tuple[str, ...]:
    """A comma-separated parameter (``"production,prod"``) -> lower-cased tuple."""
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


class Sweeper:
    """Decides when a detector should walk its whole state to drop dead keys.

    Sweeping on every watermark would make each batch O(keys); sweeping every ``every``
    seconds of event time keeps the cost amortised while bounding how long a dead key lingers.
    """

    __slots__ = ("every", "next_at")

    def __init__(self, every: float) -> None:
        self.every = max(float(every), 1.0)
        self.next_at = float("-inf")

    def due(self, watermark: float) -> bool:
        if watermark < self.next_at:
            return False
        self.next_at = watermark + self.every
        return True
