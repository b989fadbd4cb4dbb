"""The Detector interface and the registry.

A detector reads Events of one family and returns Alerts. It does no I/O and reads no clock:
everything it knows comes from event times, which is what makes replays deterministic and
state checkpointable.

Adding a detector touches one new module: subclass ``Detector``, decorate with ``@register``,
and (for built-ins) import the module in ``detectors/__init__.py``. A user's own detector is
loaded from ``module:Class`` in the config or from the ``streamproc.detectors`` entry point
group.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from ..alerts import Alert, AlertLimits, cap_alert, fingerprint
from ..errors import ConfigError
from ..events import Event
from ..windows import DEFAULT_KEY_CAP

REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make a detector available by its ``kind``."""
    if not getattr(cls, "kind", None) or not getattr(cls, "family", None):
        raise TypeError(f"{cls.__name__} must set class attributes 'kind' and 'family'")
    REGISTRY[cls.kind] = cls
    return cls


@dataclass(slots=True)
class DetectorContext:
    """What the engine tells a detector about where it runs."""

    binding: str = ""  # name of the topic binding (for labels)
    key_cap: int = DEFAULT_KEY_CAP
    labels: dict[str, str] = field(default_factory=dict)  # extra labels for every alert
    # One dict per engine (per topic binding), shared by that engine's detectors: how
    # compromise_suspected learns that brute_force fired, and how the ticket detectors share
    # one SLA table. Detectors publish themselves under their kind; nothing here does I/O.
    shared: dict[str, Any] = field(default_factory=dict)
    # how large an alert may grow: make_alert cuts what is over (alerts.cap_alert)
    limits: AlertLimits = AlertLimits()


class Detector:
    kind: ClassVar[str] = ""
    family: ClassVar[str] = ""
    severity: ClassVar[str] = "medium"
    # Every tunable with its default; ``params`` in the config override these by name, and
    # unknown names are a config error (a typo must not silently keep the default).
    defaults: ClassVar[dict[str, Any]] = {}
    # Detectors that are on unless the config turns them off.
    enabled_by_default: ClassVar[bool] = True

    def __init__(self, params: dict[str, Any] | None = None,
                 ctx: DetectorContext | None = None) -> None:
        self.ctx = ctx or DetectorContext()
        self.params = self.resolve_params(params or {})
        self.evaluations = 0

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - set(cls.defaults) - {"enabled"}
        if unknown:
            raise ConfigError(
                f"detector {cls.kind!r} has no parameter {', '.join(sorted(unknown))}",
                hint=f"known parameters: {', '.join(sorted(cls.defaults)) or 'none'}")
        merged = dict(cls.defaults)
        for name, value in params.items():
            if name == "enabled":
                continue
            default = cls.defaults[name]
            if isinstance(default, bool) != isinstance(value, bool) or (
                    isinstance(default, int | float) and not isinstance(value, int | float)):
                raise ConfigError(
                    f"detector {cls.kind!r} parameter {name!r} must be like {default!r}, "
                    f"got {value!r}")
            merged[name] = value
        return merged

    # -- the interface --------------------------------------------------------------------

    def process(self, events: list[Event]) -> list[Alert]:
        """Judge a batch of events (in arrival order; times within the allowed lateness)."""
        raise NotImplementedError

    def on_watermark(self, watermark: float) -> list[Alert]:
        """Fire timers due at or before ``watermark`` and drop state that can no longer fire."""
        return []

    def state_size(self) -> int:
        """Number of tracked keys (reported as a metric; bounded by ``ctx.key_cap``).
        Detectors that keep their keys in ``self.state`` (a KeyedState) need not override."""
        state = getattr(self, "state", None)
        return len(state) if state is not None else 0

    @property
    def evictions(self) -> int:
        """Keys dropped by the key cap (LRU) so far."""
        return int(getattr(getattr(self, "state", None), "evictions", 0))

    def snapshot(self) -> Any:
        """The detector's state as plain data (orjson-serialisable)."""
        return None

    def restore(self, state: Any) -> None:
        """Load state written by ``snapshot``."""

    # -- helpers for subclasses ------------------------------------------------------------

    def make_alert(self, *, key: dict[str, Any], incident: Any, event_time: float, title: str,
                   body: str = "", severity: str | None = None, status: str = "firing",
                   evidence: dict[str, Any] | None = None, source: dict[str, Any] | None = None,
                   labels: dict[str, str] | None = None, kind: str | None = None,
                   audience: str = "internal") -> Alert:
        kind = kind or self.kind
        merged_labels = {"kind": kind, "family": self.family}
        if self.ctx.binding:
            merged_labels["binding"] = self.ctx.binding
        merged_labels.update(self.ctx.labels)
        if labels:
            merged_labels.update(labels)
        # the fingerprint is of the whole key, before any cut (see alerts.py)
        return cap_alert(Alert(
            kind=kind, severity=severity or self.severity, status=status, key=key,
            fingerprint=fingerprint(kind, key, incident), event_time=event_time, title=title,
            body=body, labels=merged_labels, evidence=evidence or {}, source=source or {},
            family=self.family, audience=audience,
        ), self.ctx.limits)


def load_detector_class(kind: str) -> type[Detector]:
    """A registered kind, a ``module:Class`` path, or an entry point name."""
    if kind in REGISTRY:
        return REGISTRY[kind]
    if ":" in kind:
        module_name, _, attr = kind.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load detector {kind!r}: {exc}",
                              hint="give an importable module:Class") from None
        if not (isinstance(cls, type) and issubclass(cls, Detector)):
            raise ConfigError(f"{kind!r} is not a streamproc Detector subclass")
        return cls
    for ep in entry_points(group="streamproc.detectors"):
        if ep.name == kind:
            cls = ep.load()
            REGISTRY.setdefault(cls.kind or kind, cls)
            return cls
    raise ConfigError(f"unknown detector kind {kind!r}",
                      hint=f"built-in kinds: {', '.join(sorted(REGISTRY))}")


def detectors_for_family(family: str) -> list[type[Detector]]:
    return [cls for cls in REGISTRY.values() if cls.family == family]
