"""notify: deliver alerts through Apprise, as a pipeline of small stages.

    inhibit.py -> silences.py -> routing.py -> dedup.py -> group.py       (submit)
    -> inhibit.py -> dedup.py -> outbox.py                               (group timers)
    -> ratelimit.py -> deliver.py -> retry.py -> (fallback) -> undelivered.py (per channel)

One stage shape (stage.py), the list built in one place (pipeline.py), run by notifier.py
(submit, the flush loop) and worker.py (one per channel).

The runtime's whole interface::

    notifier = Notifier.from_config(config.notify, state_dir=config.state_dir,
                                    alerts_file="alerts.jsonl", console=True,
                                    dead_letter=produce_to_dlq)
    await notifier.start()
    await notifier.submit(alerts)   # returns when the batch is durable: commit offsets then
    await notifier.close()

See docs/notify.md for the ``notify:`` schema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .channels import Channel, load_channels, redact_url
    from .notifier import Notifier
    from .routing import DEFAULT_ROUTES, routes_summary
    from .settings import NotifySettings, parse_duration, parse_settings

# Each name is imported from its module when first asked for: the judging side imports
# notify's light modules (active.py, settings.py) and must not pay for Apprise and its
# plugins (about 0.3 s), which notifier.py and channels.py load.
_WHERE = {
    "Channel": "channels",
    "load_channels": "channels",
    "redact_url": "channels",
    "Notifier": "notifier",
    "DEFAULT_ROUTES": "routing",
    "routes_summary": "routing",
    "NotifySettings": "settings",
    "parse_duration": "settings",
    "parse_settings": "settings",
}

__all__ = [
    "DEFAULT_ROUTES",
    "Channel",
    "Notifier",
    "NotifySettings",
    "load_channels",
    "parse_duration",
    "parse_settings",
    "redact_url",
    "routes_summary",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
