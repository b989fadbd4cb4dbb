"""Templates: an alert (or a group of them) becomes a title and a body for one channel format.

Defaults are clear markdown: a severity emoji and the title, then the detector's sentence,
then the key facts as bullets, the event time, the host, and a reference (the fingerprint, to
silence or search by). Override per kind (or ``default``) with ``notify.templates``:

    templates:
      brute_force:
        title: "$emoji [$severity] $labels.username from $labels.ip_address"
        body: "$body\n\n$facts"

Placeholders (``$name`` or ``${name}``): title, body, kind, severity, SEVERITY, status,
emoji, fingerprint, time, host, family, category, facts (the bullet list), and
``labels.X``, ``key.X``, ``evidence.X``. Unknown placeholders stay as written.

Safety: everything that came from an event (titles and bodies made by detectors include
usernames, endpoints, user agents, subjects) is *untrusted*. Before it is placed into a
template it is
- cut to ``max_value_len`` characters and stripped of control characters and newlines;
- defanged: ``scheme://`` becomes ``scheme[:]//`` and ``www.`` becomes ``www[.]`` so chat
  clients do not turn it into a link;
- de-mentioned: ``@`` is followed by a zero-width space (no ``@channel``, ``@everyone``,
  ``@here``), and ``<`` ``>`` ``&`` are entity-escaped (no ``<!here>``, ``<@U123>``, HTML);
- markdown-escaped for markdown channels (``*_[]()`~|#`` get a backslash), so it cannot open
  a link, an image or emphasis. Our own markup is added around escaped values only.
"""

from __future__ import annotations

import re
import socket
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from ..alerts import SEVERITY_RANK, Alert

EMOJI = {"info": "ℹ️", "low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}
RESOLVED_EMOJI = "✅"
ZWSP = "\u200b"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]{0,20}):(/{1,2}|\\\\)")
_WWW = re.compile(r"(?i)\bwww\.")
_MD_SPECIAL = re.compile(r"([\\*_\[\]()`~|#])")
_HOSTNAME = socket.gethostname()

# Nouns for the summary line ("12 brute_force alerts from 3 IPs"), by key field.
_NOUNS = {
    "ip_address": ("IP", "IPs", "from"),
    "username": ("user", "users", "for"),
    "host": ("host", "hosts", "on"),
    "service": ("service", "services", "for"),
    "project": ("project", "projects", "in"),
    "endpoint": ("endpoint", "endpoints", "on"),
    "metric": ("metric", "metrics", "on"),
}


# Characters that none of the rules in escape_value changes (no ":" or "\\" for schemes, no
# "@&<>" or quotes, none of the markdown specials): most values (kinds, severities, IPs,
# counts) are made only of these, and skip the seven regex passes. "www." is checked apart.
_INERT = re.compile(r"[A-Za-z0-9 ,.+=%/-]*")


def escape_value(value: object, fmt: str = "markdown", max_len: int = 200) -> str:
    """Make one event-derived value inert for ``fmt`` (markdown, text, html) and cap it."""
    text = (
        value
        if isinstance(value, str)
        else (
            orjson.dumps(value, default=str).decode()
            if isinstance(value, dict | list)
            else str(value)
        )
    )
    if len(text) <= max_len and _INERT.fullmatch(text) and "www." not in text.lower():
        return text
    text = _CONTROL.sub(" ", text)
    if len(text) > max_len:
        text = text[: max(0, max_len - 1)] + "…"
    text = _SCHEME.sub(r"\1[:]\2", text)
    text = _WWW.sub(lambda m: m.group(0)[:-1] + "[.]", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("@", "@" + ZWSP)
    if fmt == "markdown":
        text = _MD_SPECIAL.sub(r"\\\1", text)
    elif fmt == "html":
        text = text.replace('"', "&quot;").replace("'", "&#x27;")
    return text


def fmt_time(ts: float) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError, TypeError):
        return "unknown"


def _host_of(alert: Alert) -> str | None:
    for src in (alert.key, alert.labels, alert.evidence):
        if isinstance(src, dict):
            for name in ("host", "hostname", "instance"):
                if src.get(name):
                    return str(src[name])
    return None


class _Template(string.Template):
    idpattern = r"(?a:[_a-zA-Z][_a-zA-Z0-9]*(?:\.[_a-zA-Z0-9\-]+)*)"


@dataclass(slots=True)
class Message:
    title: str
    body: str
    notify_type: str  # info | success | warning | failure (Apprise NotifyType values)


def notify_type_for(alerts: Sequence[Alert]) -> str:
    if all(a.status == "resolved" for a in alerts):
        return "success"
    top = max(SEVERITY_RANK.get(a.severity, 0) for a in alerts if a.status != "resolved")
    return (
        "failure"
        if top >= SEVERITY_RANK["high"]
        else ("warning" if top >= SEVERITY_RANK["low"] else "info")
    )


class Renderer:
    """Titles and bodies for single alerts, groups, and rate-limit digests."""

    def __init__(
        self,
        templates: dict[str, dict[str, str]] | None = None,
        *,
        max_value_len: int = 200,
        max_title_len: int = 250,
        max_body_len: int = 4000,
        max_group_items: int = 20,
    ) -> None:
        self.templates = templates or {}
        self.max_value_len = max_value_len
        self.max_title_len = max_title_len
        self.max_body_len = max_body_len
        self.max_group_items = max_group_items

    # -- pieces -----------------------------------------------------------------------------
    def _esc(self, value: object, fmt: str) -> str:
        return escape_value(value, fmt, self.max_value_len)

    def _bullets(self, items: list[tuple[str, str]], fmt: str) -> str:
        if fmt == "html":
            return "<ul>" + "".join(f"<li><b>{k}:</b> {v}</li>" for k, v in items) + "</ul>"
        if fmt == "markdown":
            return "\n".join(f"- **{k}:** {v}" for k, v in items)
        return "\n".join(f"- {k}: {v}" for k, v in items)

    def _facts(self, alert: Alert, fmt: str) -> list[tuple[str, str]]:
        def e(value: object) -> str:
            return self._esc(value, fmt)

        facts = [
            ("Severity", e(alert.severity)),
            ("Status", e(alert.status)),
            ("Kind", e(alert.kind)),
        ]
        for k, v in (alert.key or {}).items():
            facts.append((e(k), e(v)))
        for k, v in (alert.labels or {}).items():
            if k not in (alert.key or {}) and k not in ("kind", "family", "binding"):
                facts.append((e(k), e(v)))
        facts.append(("Event time", fmt_time(alert.event_time)))
        host = _host_of(alert)
        facts.append(("Host", e(host)) if host else ("Detected by", e(_HOSTNAME)))
        return facts

    def _emoji(self, alert: Alert) -> str:
        return RESOLVED_EMOJI if alert.status == "resolved" else EMOJI.get(alert.severity, "")

    def _cap(self, title: str, body: str, max_body: int) -> tuple[str, str]:
        if len(title) > self.max_title_len:
            title = title[: self.max_title_len - 1] + "…"
        limit = min(self.max_body_len, max_body)
        if len(body) > limit:
            body = body[: max(0, limit - 16)].rstrip() + "\n… (truncated)"
        return title, body

    def _vars(self, alert: Alert, fmt: str) -> dict[str, str]:
        def e(value: object) -> str:
            return self._esc(value, fmt)

        v = {
            "title": e(alert.title),
            "body": e(alert.body),
            "kind": e(alert.kind),
            "severity": e(alert.severity),
            "SEVERITY": e(alert.severity.upper()),
            "status": e(alert.status),
            "emoji": self._emoji(alert),
            "fingerprint": e(alert.fingerprint),
            "time": fmt_time(alert.event_time),
            "host": e(_host_of(alert) or _HOSTNAME),
            "family": e(alert.family),
            "category": e(alert.category),
            "facts": self._bullets(self._facts(alert, fmt), fmt),
        }
        for prefix, src in (
            ("labels", alert.labels),
            ("key", alert.key),
            ("evidence", alert.evidence),
        ):
            for k, val in (src or {}).items():
                v[f"{prefix}.{k}"] = e(val)
        return v

    # -- messages ---------------------------------------------------------------------------
    def render_alert(self, alert: Alert, fmt: str = "markdown", max_body: int = 1 << 30) -> Message:
        if fmt == "jsonl":
            return Message(
                alert.title[: self.max_title_len],
                alert.to_json().decode(),
                notify_type_for([alert]),
            )
        tpl = self.templates.get(alert.kind) or self.templates.get("default") or {}
        if "title" in tpl or "body" in tpl:
            v = self._vars(alert, fmt)
        else:  # the default layout uses five of the placeholders: escape only those
            e = self._esc
            v = {
                "title": e(alert.title, fmt),
                "body": e(alert.body, fmt),
                "emoji": self._emoji(alert),
                "fingerprint": e(alert.fingerprint, fmt),
                "facts": self._bullets(self._facts(alert, fmt), fmt),
            }
        if "title" in tpl:
            title = _Template(tpl["title"]).safe_substitute(v)
        else:
            word = "RESOLVED" if alert.status == "resolved" else alert.severity.upper()
            title = f"{v['emoji']} [{word}] {v['title']}".strip()
        if "body" in tpl:
            body = _Template(tpl["body"]).safe_substitute(v)
        else:
            parts = [v["body"]] if alert.body else []
            parts.append(v["facts"])
            parts.append(f"ref {v['fingerprint']}")
            body = "\n\n".join(parts)
        title, body = self._cap(title, body, max_body)
        return Message(title, body, notify_type_for([alert]))

    def summary(self, alerts: Sequence[Alert]) -> str:
        """ "12 brute_force alerts from 3 IPs for 5 users" (+ ", 2 resolved")."""
        kinds = Counter(a.kind for a in alerts)
        kind_text = " / ".join(k for k, _ in kinds.most_common(3)) + (
            " / ..." if len(kinds) > 3 else ""
        )
        text = f"{len(alerts)} {kind_text} alert{'s' if len(alerts) != 1 else ''}"
        fields: list[str] = []
        for a in alerts:
            for k in a.key or {}:
                if k not in fields:
                    fields.append(k)
        parts: list[tuple[int, str]] = []
        for f in fields:
            distinct = {str((a.key or {}).get(f)) for a in alerts if (a.key or {}).get(f)}
            if not distinct:
                continue
            one, many, prep = _NOUNS.get(f, (f, f + "s", "for"))
            if len(distinct) == 1:
                parts.append((1, f"{prep} {one} {next(iter(distinct))}"))
            else:
                parts.append((len(distinct), f"{prep} {len(distinct)} {many}"))
        # the most varied field first: "12 brute_force alerts from 3 IPs for user alice"
        parts.sort(key=lambda p: -p[0])
        for _, part in parts[:2]:
            text += " " + part
        resolved = sum(1 for a in alerts if a.status == "resolved")
        if resolved and resolved != len(alerts):
            text += f", {resolved} resolved"
        elif resolved:
            text += ", resolved"
        return text

    def render_group(
        self, alerts: Sequence[Alert], fmt: str = "markdown", max_body: int = 1 << 30
    ) -> Message:
        if len(alerts) == 1 or fmt == "jsonl":
            if fmt == "jsonl":
                body = "\n".join(a.to_json().decode() for a in alerts)
                return Message(self.summary(alerts), body, notify_type_for(alerts))
            return self.render_alert(alerts[0], fmt, max_body)
        top = max(alerts, key=lambda a: (a.status != "resolved", SEVERITY_RANK.get(a.severity, 0)))
        emoji = self._emoji(top)
        title = f"{emoji} {self._esc(self.summary(alerts), fmt)}".strip()
        lines = []
        shown = alerts[: self.max_group_items]
        for a in shown:
            word = "RESOLVED" if a.status == "resolved" else a.severity.upper()
            lines.append(
                (
                    f"{self._emoji(a)} [{word}]",
                    f"{self._esc(a.title, fmt)} ({fmt_time(a.event_time)}, "
                    f"ref {self._esc(a.fingerprint, fmt)})",
                )
            )
        if fmt == "markdown":
            body = "\n".join(f"- {k} {v}" for k, v in lines)
        elif fmt == "html":
            body = "<ul>" + "".join(f"<li>{k} {v}</li>" for k, v in lines) + "</ul>"
        else:
            body = "\n".join(f"- {k} {v}" for k, v in lines)
        if len(alerts) > len(shown):
            body += f"\n\n+{len(alerts) - len(shown)} more"
        title, body = self._cap(title, body, max_body)
        return Message(title, body, notify_type_for(alerts))

    def render_digest(
        self, groups: Sequence[Sequence[Alert]], fmt: str = "markdown", max_body: int = 1 << 30
    ) -> Message:
        """Several queued messages rolled into one because the channel's rate limit is hit."""
        alerts = [a for g in groups for a in g]
        if fmt == "jsonl":
            return self.render_group(alerts, fmt, max_body)
        first = self.render_group(groups[0], fmt, max_body)
        rest = len(groups) - 1
        title = f"{first.title} (+{rest} more)"
        lines = []
        for g in groups[: self.max_group_items]:
            refs = ", ".join(self._esc(a.fingerprint, fmt) for a in g[:5])
            more = f" +{len(g) - 5}" if len(g) > 5 else ""
            lines.append(f"{self.render_group(g, fmt, max_body).title} (ref {refs}{more})")
        body = "\n".join(f"- {t}" for t in lines)
        if len(groups) > self.max_group_items:
            body += f"\n\n+{len(groups) - self.max_group_items} more"
        note = f"{len(alerts)} alerts in {len(groups)} notifications, combined by the rate limit."
        body = f"{note}\n\n{body}"
        title, body = self._cap(title, body, max_body)
        return Message(title, body, notify_type_for(alerts))
