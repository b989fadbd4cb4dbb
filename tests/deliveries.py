"""What a ``Receiver`` was sent: the alerts a notification names by its ``ref`` (the
fingerprint every notification body carries), whatever the channel's format."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

REF = re.compile(r"ref ([0-9a-f]{16})")


def text_of(req: dict[str, Any]) -> str:
    if req.get("json"):
        return f"{req['json'].get('title', '')}\n{req['json'].get('message', '')}"
    form = parse_qs(req["body"].decode())
    return "\n".join(v[0] for k, v in form.items() if k in ("title", "message"))


def refs(requests: list[dict[str, Any]]) -> list[str]:
    return [fp for r in requests for fp in REF.findall(text_of(r))]
