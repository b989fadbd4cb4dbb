"""Config YAML from the parts a test varies, for the sections tests keep writing.

``config_text(bootstrap=..., group=..., topics=[topic], urls=[url], state_dir=tmp_path)`` is
a deployment reading one auth-logs topic from a broker, with its own consumer group and alert
topic, sending each alert in a notification of its own as soon as it fires. The
``make_config`` and ``write_config`` fixtures (conftest.py) put ``state_dir`` under the
test's ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


def binding(topic: str, family: str = "auth-logs", **options: Any) -> dict[str, Any]:
    """One entry of ``topics:``."""
    return {"topic": topic, "family": family, **options}


def config_text(
    *,
    bootstrap: str | None = None,
    group: str | None = None,
    kafka: Mapping[str, Any] | None = None,
    topics: Sequence[str | Mapping[str, Any]] = (),
    urls: Sequence[str] = (),
    notify: Mapping[str, Any] | None = None,
    state_dir: Path | str | None = None,
    **sections: Any,
) -> str:
    """The YAML of a config:

    - ``kafka:`` ``bootstrap_servers``; with ``group``, ``group_id: <group>`` and
      ``alert_topic: <group>.alerts`` (each test's own, so tests sharing the session's broker
      never read each other's alerts); ``kafka`` adds or overrides keys;
    - ``topics:`` a binding for each entry: a topic name (auth-logs) or a ``binding(...)``;
    - ``notify:`` ``urls`` with ``group_wait: 0s`` and ``group_by: [fingerprint]`` (each
      alert a notification of its own, sent as soon as it fires, so tests count alerts by
      what arrives); ``notify`` adds or overrides keys (``rate``...), and a key it gives
      ``None`` is left out (the product's default);
    - ``state_dir:``, and any other section as given (``state={"checkpoint_interval": 1}``).
    """
    doc: dict[str, Any] = {}
    if bootstrap is not None or kafka:
        doc["kafka"] = {}
        if bootstrap is not None:
            doc["kafka"]["bootstrap_servers"] = bootstrap
        if group is not None:
            doc["kafka"].update(group_id=group, alert_topic=f"{group}.alerts")
        doc["kafka"].update(kafka or {})
    if topics:
        doc["topics"] = [binding(t) if isinstance(t, str) else dict(t) for t in topics]
    if urls or notify:
        options = {"group_wait": "0s", "group_by": ["fingerprint"], **(notify or {})}
        doc["notify"] = {"urls": list(urls)} | {k: v for k, v in options.items() if v is not None}
    if state_dir is not None:
        doc["state_dir"] = str(state_dir)
    doc.update(sections)
    return yaml.safe_dump(doc, sort_keys=False)
