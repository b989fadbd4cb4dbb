"""nginx / Apache access-log lines ("combined" and "common" formats) -> api-access-logs fields.

    203.0.113.9 - alice [10/Oct/2026:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 2326 "-" "curl/8"
    remote_addr   user   time_local                   request            status bytes referer UA

Quoted fields may contain backslash escapes (nginx writes ``\\x22`` for a quote). A request
line that is not ``METHOD TARGET PROTOCOL`` (scanners send TLS handshakes and garbage to port
80, or connect and send nothing: ``""``) is kept: method ``-`` and the raw request (``-`` for
none) as the endpoint, because such lines are exactly what a security team wants to see.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..events import coerce_field, coerce_int

_LINE = re.compile(
    r"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?'
)
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\(.)")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), text)


def parse_access_log_time(text: str) -> float:
    return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp()


def _bytes_sent(text: str) -> int:
    if text == "-":
        return 0
    # 18 digits are always within 64 bits (the common case, one call); beyond, coerce_int
    # makes it a wrong_type, as no writer of an event (checkpoint, alert log) takes it
    return int(text) if len(text) <= 18 else coerce_field("bytes_sent", coerce_int, text)


def parse_combined(line: str) -> dict[str, Any] | None:
    """One log line -> a dict of api-access-logs fields, or None if it is not an access log
    (CoercionError: a byte count beyond 64 bits)."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    request = _unescape(match["request"])
    # METHOD TARGET PROTOCOL, where the target itself may hold raw spaces (attack payloads
    # do): the method is the first word, the protocol the last one if it looks like one.
    parts = request.split(" ")
    if len(parts) >= 2 and parts[0].isalpha() and parts[0].isascii():
        method = parts[0]
        rest = parts[1:]
        if len(rest) >= 2 and rest[-1].upper().startswith("HTTP/"):
            rest = rest[:-1]
        endpoint = " ".join(rest)
    else:
        # an empty request (a client that connected and sent nothing) is a probe too
        method, endpoint = "-", request or "-"
    out: dict[str, Any] = {
        "timestamp": match["time"],
        "ip_address": match["ip"],
        "method": method,
        "endpoint": endpoint,
        "status_code": match["status"] if match["status"] != "-" else None,
        "bytes_sent": _bytes_sent(match["bytes"]),
    }
    if match["user"] != "-":
        out["remote_user"] = match["user"]
    if match["agent"] is not None:
        out["user_agent"] = _unescape(match["agent"])
        referer = _unescape(match["referer"])
        if referer != "-":
            out["referer"] = referer
    return out
