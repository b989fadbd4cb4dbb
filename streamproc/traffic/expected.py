"""The alerts generated traffic should raise: the detector settings its counts assume, and how a
list of alerts is counted the same way.

Every family generator shapes its incidents and its background around the detectors' default
parameters, read here at generation time: change a default and the generated traffic and its
expected counts follow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def detector_defaults(kind: str) -> dict[str, Any]:
    """The parameters a ``kind`` detector runs with when the config sets none."""
    from ..detectors import load_detector_class  # on first use: importing this stays light

    return load_detector_class(kind).resolve_params({})


def default_detector(kind: str) -> Any:
    """A ``kind`` detector with its default parameters, to read the levels it judges by."""
    from ..detectors import load_detector_class

    return load_detector_class(kind)()


def count_alerts(alerts: Iterable[Any], status: str = "firing") -> dict[str, int]:
    """Count alerts (``Alert`` objects or their dicts) per kind, the way ``expected`` counts.

    ``pipeline_failed`` counts only alerts above info (info ones report successes/starts);
    customer-facing companions (``audience: customer``: the ticket acknowledgement, the
    resolution notice, the SLA apology) are not counted, only the internal alert.
    """
    counts: dict[str, int] = defaultdict(int)
    for alert in alerts:
        if _field(alert, "status") != status:
            continue
        kind = _field(alert, "kind")
        if kind == "pipeline_failed" and _field(alert, "severity") == "info":
            continue
        if _field(alert, "audience") == "customer":
            continue
        counts[kind] += 1
    return dict(counts)


def _field(alert: Any, name: str) -> Any:
    return alert.get(name) if isinstance(alert, dict) else getattr(alert, name, None)
