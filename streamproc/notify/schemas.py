"""The URLs of our own Apprise services (plugins.py registers the services with Apprise).

Apart from plugins.py, so that naming them (channels.py builds and redacts their URLs) does
not import Apprise, which loads every one of its plugins when first used (about 0.3 s of
start-up).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

FILE_SCHEMA = "streamprocfile"  # Apprise schemas cannot contain "-"
CONSOLE_SCHEMA = "streamprocconsole"
ALERTMANAGER_SCHEMAS = ("alertmanager", "alertmanagers")


def file_url(path: str | os.PathLike[str]) -> str:
    return f"{FILE_SCHEMA}://alerts/?path={quote(str(Path(path).resolve()), safe='')}"


def console_url() -> str:
    return f"{CONSOLE_SCHEMA}://stdout/"
