"""Alerts in Alertmanager's shapes: labels, annotations, postable alerts, webhook payloads.

One mapping, used wherever an alert leaves streamproc in Alertmanager's terms (the
``alertmanager://`` channel, the ``alertmanager-webhook`` channel format, and anything that
answers Alertmanager's API later)::

    labels       = alert.labels without "kind"            (family, binding, ... kept)
                   + every key field  {k: str(v)}          (username, ip_address, ...)
                   + {"alertname": alert.kind, "severity": alert.severity}
    annotations  = {"summary": alert.title, "description": alert.body}
    fingerprint  = alert.fingerprint                       (streamproc's, not Alertmanager's)
    startsAt     = the firing alert's event_time           (RFC 3339, UTC, milliseconds)
    endsAt       = the resolve time for a resolved alert; for a firing one, the time until
                   which the sender vouches for it (see ``postable_alert``)

Label names are sanitised to Prometheus' ``[a-zA-Z_][a-zA-Z0-9_]*`` (every other character
becomes ``_``, a leading digit gets a ``_`` in front); values are ``str(value)``. When two
sources give the same name, the later in the list above wins, so ``alertname`` and
``severity`` always say the alert's kind and severity.

Values are copied as they are: no markdown escaping, no defanging. These payloads are for
machines, and Alertmanager's own templates escape for the chat service they render into.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..alerts import Alert

_BAD_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(name: Any) -> str:
    """A Prometheus label name: ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    text = _BAD_NAME_CHARS.sub("_", str(name))
    if not text or text[0].isdigit():
        text = "_" + text
    return text


def am_labels(alert: Alert) -> dict[str, str]:
    """The alert's Alertmanager labels (see the module docstring for the mapping)."""
    labels: dict[str, str] = {}
    for k, v in (alert.labels or {}).items():
        if k != "kind":
            labels[label_name(k)] = str(v)
    for k, v in (alert.key or {}).items():
        labels[label_name(k)] = str(v)
    labels["alertname"] = str(alert.kind)
    labels["severity"] = str(alert.severity)
    return labels


def am_annotations(alert: Alert) -> dict[str, str]:
    return {"summary": str(alert.title), "description": str(alert.body)}


def rfc3339(ts: float) -> str:
    """``2026-11-29T20:31:46.123Z``; a time that cannot be one gives the epoch."""
    try:
        when = datetime.fromtimestamp(float(ts), UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        when = datetime.fromtimestamp(0, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def postable_alert(
    alert: Alert, *, ends_at: float, starts_at: float | None = None, generator_url: str = ""
) -> dict[str, Any]:
    """One element of the JSON list ``POST /api/v2/alerts`` takes.

    ``ends_at``: for a resolved alert, its resolve time (``alert.event_time``); for a firing
    one, the time the sender promises to have re-sent it by (Prometheus: now + 4 resend
    intervals), so that Alertmanager resolves it on its own if the sender dies.
    ``starts_at``: the firing alert's event time when known (a resolved alert carries its
    resolve time only); default ``alert.event_time``.
    """
    out: dict[str, Any] = {
        "labels": am_labels(alert),
        "annotations": am_annotations(alert),
        "startsAt": rfc3339(alert.event_time if starts_at is None else starts_at),
        "endsAt": rfc3339(ends_at),
    }
    if generator_url:
        out["generatorURL"] = generator_url
    return out


def webhook_alert(
    alert: Alert, *, starts_at: float | None = None, generator_url: str = ""
) -> dict[str, Any]:
    """One element of ``alerts`` in Alertmanager's webhook payload. A firing alert's
    ``endsAt`` is Go's zero time, as Alertmanager sends it."""
    resolved = alert.status == "resolved"
    return {
        "status": "resolved" if resolved else "firing",
        "labels": am_labels(alert),
        "annotations": am_annotations(alert),
        "startsAt": rfc3339(alert.event_time if starts_at is None else starts_at),
        "endsAt": rfc3339(alert.event_time) if resolved else "0001-01-01T00:00:00Z",
        "generatorURL": generator_url,
        "fingerprint": alert.fingerprint,
    }


def _common(dicts: Sequence[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    common = dict(dicts[0])
    for d in dicts[1:]:
        common = {k: v for k, v in common.items() if d.get(k) == v}
    return common


def webhook_payload(
    alerts: Sequence[Alert],
    *,
    receiver: str,
    group_key: str,
    group_by: Sequence[str] = (),
    external_url: str = "",
    generator_url: str = "",
    starts: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Alertmanager's webhook JSON (version 4) for one message of ``alerts``.

    ``status`` is ``firing`` when any alert fires, else ``resolved``; ``groupLabels`` are the
    ``group_by`` labels all alerts share; ``starts`` maps a fingerprint to its firing time
    (startsAt of a resolved alert); ``truncatedAlerts`` is 0: every alert is listed."""
    starts = starts or {}
    items = [
        webhook_alert(a, starts_at=starts.get(a.fingerprint), generator_url=generator_url)
        for a in alerts
    ]
    common_labels = _common([i["labels"] for i in items])
    wanted = {label_name(g) for g in group_by}
    if "kind" in group_by:
        wanted.add("alertname")
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
        "receiver": receiver,
        "groupLabels": {k: v for k, v in common_labels.items() if k in wanted},
        "commonLabels": common_labels,
        "commonAnnotations": _common([i["annotations"] for i in items]),
        "externalURL": external_url,
        "alerts": items,
    }
