"""Alerts and silences in the JSON shapes of Alertmanager's API v2 (its ``openapi.yaml``:
gettableAlert, alertGroup, gettableSilence, postableSilence), and its matcher syntax.

An alert as Alertmanager shows it (the same mapping everywhere in streamproc):

    labels       alert.labels without "kind", plus alertname = kind, severity, and every key
                 field as a string (names made valid label names: [a-zA-Z_][a-zA-Z0-9_]*)
    annotations  summary = title, description = body
    startsAt     the firing alert's event time; endsAt: its resolve time, or (never resolved)
                 when it was read + api.resolve_timeout; updatedAt: when it was last read
    fingerprint  alert.fingerprint

Times are RFC 3339 in UTC with milliseconds (``2026-03-01T12:00:04.000Z``).

Matchers (``filter=`` of GET /api/v2/alerts and /silences, ``streamproc alert query``):
``{a="b",c=~"re",d!="x",e!~"y"}``, one matcher per item, quoted or bare values (``a=b``). A
regex matches the whole value, as in Alertmanager. What cannot be read raises BadMatcher with
Alertmanager's words, ``bad matcher format: ...``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from ..alerts import Alert
from ..notify.am_payloads import am_annotations, am_labels, label_name, rfc3339
from ..notify.silences import LabelMatcher, Silence

__all__ = ["am_annotations", "am_labels", "label_name", "rfc3339"]  # the one mapping
_ONE_MATCHER = re.compile(
    r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*")\s*(?P<op>=~|!~|!=|=)\s*'
    r'(?:(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<bare>[^,"{}\s=!~]*))\s*'
)
_ESCAPES = {"n": "\n", "t": "\t"}


class BadMatcher(ValueError):
    """A matcher Alertmanager would refuse; ``str()`` is the 400 answer's text."""


# -- times ----------------------------------------------------------------------------------


def parse_time(value: Any, where: str) -> float:
    """An RFC 3339 time (``Z`` or an offset; any fraction) as a Unix time."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected an RFC 3339 time, got {type(value).__name__}")
    text = value.strip()
    m = re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text, re.IGNORECASE
    )
    if not m:
        raise ValueError(f"{where}: {value!r} is not an RFC 3339 time")
    zone = "+00:00" if m.group(3).upper() == "Z" else m.group(3)
    base = datetime.fromisoformat(m.group(1) + zone).timestamp()
    return base + (float("0." + m.group(2)) if m.group(2) else 0.0)


# -- alerts ---------------------------------------------------------------------------------


def alert_status(silenced_by: list[str], inhibited_by: list[str]) -> dict[str, Any]:
    state = "suppressed" if silenced_by or inhibited_by else "active"
    return {"state": state, "silencedBy": silenced_by, "inhibitedBy": inhibited_by}


def gettable_alert(
    alert: Alert,
    *,
    updated: float,
    ends: float,
    receivers: list[str],
    silenced_by: list[str],
    inhibited_by: list[str],
    generator_url: str = "",
) -> dict[str, Any]:
    return {
        "labels": am_labels(alert),
        "annotations": am_annotations(alert),
        "startsAt": rfc3339(alert.event_time),
        "endsAt": rfc3339(ends),
        "updatedAt": rfc3339(updated),
        "fingerprint": alert.fingerprint,
        "receivers": [{"name": r} for r in receivers],
        "generatorURL": generator_url,
        "status": alert_status(silenced_by, inhibited_by),
    }


# -- matchers -------------------------------------------------------------------------------


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])


def parse_matchers(text: str) -> list[LabelMatcher]:
    """``{a="b",c=~"re"}``, ``a="b"`` or ``a=b`` -> matchers; BadMatcher if unreadable."""
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise BadMatcher(f"bad matcher format: {text}")
        body = body[1:-1]
    out: list[LabelMatcher] = []
    pos = 0
    while pos < len(body):
        m = _ONE_MATCHER.match(body, pos)
        if m is None:
            if body[pos:].strip() == "":
                break
            raise BadMatcher(f"bad matcher format: {text}")
        name = m.group("name")
        name = _unquote(name) if name.startswith('"') else name
        value = _unquote(m.group("quoted")) if m.group("quoted") is not None else m.group("bare")
        op = m.group("op")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise BadMatcher(f"bad matcher format: {text}: {exc}") from None
        out.append(LabelMatcher(name, op, value))
        pos = m.end()
        if pos < len(body):
            if body[pos] != ",":
                raise BadMatcher(f"bad matcher format: {text}")
            pos += 1
    return out


def parse_filter(items: list[str]) -> list[LabelMatcher]:
    """Every ``filter=`` item of a query."""
    return [m for item in items for m in parse_matchers(item)]


# -- silences -------------------------------------------------------------------------------


def silence_state(s: Silence, now: float) -> str:
    if s.ends <= now:
        return "expired"
    return "pending" if s.starts > now else "active"


def am_matcher(m: LabelMatcher) -> dict[str, Any]:
    return {
        "name": m.name,
        "value": m.value,
        "isRegex": m.op in ("=~", "!~"),
        "isEqual": m.op in ("=", "=~"),
    }


def gettable_silence(s: Silence, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "id": s.id,
        "status": {"state": silence_state(s, now)},
        "updatedAt": rfc3339(s.created),
        "matchers": [am_matcher(m) for m in s.matchers],
        "startsAt": rfc3339(s.starts),
        "endsAt": rfc3339(s.ends),
        "createdBy": s.author,
        "comment": s.comment,
    }


def silence_from_postable(body: Any, now: float) -> tuple[str | None, Silence]:
    """(the id to update, if any; the silence) from a postableSilence. ValueError says what
    is wrong, in words fit for a 400."""
    import uuid

    if not isinstance(body, dict):
        raise ValueError("a silence is a JSON object")
    raw = body.get("matchers")
    if not isinstance(raw, list) or not raw:
        raise ValueError("a silence needs at least one matcher")
    matchers: list[LabelMatcher] = []
    for i, m in enumerate(raw):
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("name"), str)
            or not m["name"]
            or not isinstance(m.get("value"), str)
            or not isinstance(m.get("isRegex"), bool)
        ):
            raise ValueError(
                f"matchers[{i}]: needs name and value (strings) and isRegex (true or false)"
            )
        equal = m.get("isEqual", True)
        if not isinstance(equal, bool):
            raise ValueError(f"matchers[{i}].isEqual must be true or false")
        op = ("=~" if m["isRegex"] else "=") if equal else ("!~" if m["isRegex"] else "!=")
        try:
            matchers.append(LabelMatcher.of(m["name"], op, m["value"]))
        except re.error as exc:
            raise ValueError(f"matchers[{i}]: bad regex: {exc}") from None
    if all(m.matches({}) for m in matchers):
        raise ValueError(
            "at least one matcher must not match the empty string "
            "(this silence would mute every alert)"
        )
    starts = parse_time(body.get("startsAt"), "startsAt")
    ends = parse_time(body.get("endsAt"), "endsAt")
    if ends <= starts:
        raise ValueError("Failed to create silence: start time must be before end time")
    if ends < now:
        raise ValueError("Failed to create silence: end time can't be in the past")
    for key in ("createdBy", "comment"):
        if not isinstance(body.get(key, ""), str):
            raise ValueError(f"{key} must be a string")
    sid = body.get("id")
    if sid is not None and (
        not isinstance(sid, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", sid)
    ):
        raise ValueError("id must be the id of an existing silence")
    silence = Silence(
        id=sid or uuid.uuid4().hex[:12],
        matchers=tuple(matchers),
        starts=max(starts, now) if not sid else starts,
        ends=ends,
        author=str(body.get("createdBy", "")),
        comment=str(body.get("comment", "")),
        created=now,
    )
    return sid or None, silence


def silence_has_matchers(s: Silence, wanted: list[LabelMatcher]) -> bool:
    """Alertmanager's filter on silences: each wanted matcher is one of the silence's."""
    return all(any(m == w for m in s.matchers) for w in wanted)
