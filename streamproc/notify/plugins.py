"""Our Apprise services, registered with Apprise's ``@notify`` decorator.

- ``streamprocfile://alerts/?path=%2Fabs%2Ffile.jsonl`` appends the body (one JSON alert per
  line; the channel renders ``jsonl`` for this schema) to a file.
- ``streamprocconsole://stdout/`` prints a readable message to stdout.
- ``alertmanager://[user:password@]host[:port][/prefix][?token=T]`` (``alertmanagers://`` for
  TLS, ``&verify=no`` to skip the certificate check) POSTs the body, a JSON list of
  Alertmanager postable alerts (the channel renders ``alertmanager`` for this schema), to
  ``/api/v2/alerts`` under the prefix, with basic auth or ``Authorization: Bearer T``.

They are ordinary Apprise services, so they travel the same pipeline as Slack or e-mail
(dedup, retry, dead-letter); nothing in the pipeline knows them by name except the renderer
choice in channels.py.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import requests
from apprise.decorators import notify

from ..storage.files import open_private, private_dir
from .schemas import (
    ALERTMANAGER_SCHEMAS,
    CONSOLE_SCHEMA,
    FILE_SCHEMA,
    console_url,  # noqa: F401 - the URLs of these services, built here as well
    file_url,  # noqa: F401
)

ALERTMANAGER_PORT = 9093
_file_lock = threading.Lock()
_console_lock = threading.Lock()


@notify(on=FILE_SCHEMA, name="streamproc alerts file")
def _write_file(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    path = (meta.get("qsd") or {}).get("path")
    if not path:
        return False
    data = body if body.endswith("\n") else body + "\n"
    with _file_lock:
        private_dir(Path(path).parent)
        with open_private(path, "a", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            # fsync: the notification log will say "sent"; the file must then hold it.
            os.fsync(fh.fileno())
    return True


@notify(on=CONSOLE_SCHEMA, name="streamproc console")
def _print_console(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    with _console_lock:
        out = sys.stdout
        out.write(f"\n{title}\n" if title else "\n")
        out.write(body.rstrip("\n") + "\n")
        out.flush()
    return True


def alertmanager_endpoint(meta: dict[str, Any]) -> str:
    """``http(s)://host:port[/prefix]/api/v2/alerts`` for an ``alertmanager(s)://`` URL."""
    scheme = "https" if meta.get("schema") == "alertmanagers" else "http"
    host = str(meta.get("host") or "")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = meta.get("port") or ALERTMANAGER_PORT
    prefix = str(meta.get("fullpath") or "").rstrip("/")
    return f"{scheme}://{host}:{port}{prefix}/api/v2/alerts"


def _post_alertmanager(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    headers = {"Content-Type": "application/json", "User-Agent": "streamproc"}
    token = (meta.get("qsd") or {}).get("token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    auth = None
    if meta.get("user"):
        auth = (unquote(str(meta["user"])), unquote(str(meta.get("password") or "")))
    # requests.request: what deliver.py's status capture sees (429 and Retry-After)
    response = requests.request(
        "POST",
        alertmanager_endpoint(meta),
        data=body.encode(),
        headers=headers,
        auth=auth,
        timeout=(4.0, 10.0),
        verify=bool(meta.get("verify", True)),
    )
    return 200 <= response.status_code < 300


for _schema in ALERTMANAGER_SCHEMAS:
    notify(on=_schema, name="Alertmanager")(_post_alertmanager)
