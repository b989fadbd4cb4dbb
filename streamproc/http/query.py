"""``streamproc alert query``: the active alerts of a running streamproc, as ``amtool alert
query`` shows them, for hosts without amtool.

It asks the Alertmanager API of a running ``streamproc run --listen`` (``--url``, default
``$STREAMPROC_API_URL`` or http://127.0.0.1:9108): the active alerts live in that process
(and, with Kafka, in every worker of the deployment), not in a file the CLI could read.

    streamproc alert query                         active alerts, neither silenced nor inhibited
    streamproc alert query alertname=brute_force   those matching (Alertmanager matchers)
    streamproc alert query -s -i                   silenced and inhibited ones only
    streamproc alert query -o json                 the API's JSON (gettableAlert list)
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from ..errors import StreamprocError
from .am_shapes import BadMatcher, parse_matchers, parse_time

DEFAULT_URL = "http://127.0.0.1:9108"


def api_get(
    url: str,
    path: str,
    params: list[tuple[str, str]],
    *,
    token: str | None,
    cafile: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """GET ``path`` of the API at ``url`` and decode its JSON; StreamprocError says why not
    (never with the token)."""
    full = url.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    request = urllib.request.Request(full, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=cafile) if full.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:300].strip()
        if exc.code == 401:
            hint = "give the API token with --token or $STREAMPROC_API_TOKEN"
            raise StreamprocError(f"{url}: 401 unauthorized; {hint}") from None
        raise StreamprocError(f"{url}{path}: HTTP {exc.code}: {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StreamprocError(
            f"cannot reach {url} ({reason}); is `streamproc run --listen` running there? (--url)"
        ) from None


def _short_time(text: str) -> str:
    return datetime.fromtimestamp(parse_time(text, "startsAt"), UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )


def format_simple(alerts: list[dict[str, Any]]) -> str:
    rows = [("Alertname", "Starts At", "Summary", "State")]
    rows += [
        (
            a["labels"].get("alertname", ""),
            _short_time(a["startsAt"]),
            a["annotations"].get("summary", ""),
            a["status"]["state"],
        )
        for a in alerts
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def main(args: argparse.Namespace) -> int:
    try:
        for m in args.matchers:  # checked here, so a typo is not a round trip
            parse_matchers(m)
    except BadMatcher as exc:
        raise StreamprocError(str(exc)) from None
    chosen = {"active": args.active, "silenced": args.silenced, "inhibited": args.inhibited}
    if not any(chosen.values()):  # as amtool: active alerts that nothing mutes
        chosen = {"active": True, "silenced": False, "inhibited": False}
    params = [(name, "true" if on else "false") for name, on in chosen.items()]
    params += [("filter", m) for m in args.matchers]
    token = args.token or os.environ.get("STREAMPROC_API_TOKEN") or None
    alerts = api_get(args.url, "/api/v2/alerts", params, token=token, cafile=args.cafile)
    if args.output == "json":
        print(json.dumps(alerts, indent=2))
    else:
        print(format_simple(alerts))
    sys.stdout.flush()
    return 0
