"""The Detector interface and the registry.

A detector reads Events of one family and returns Alerts. It does no I/O and reads no clock:
everything it knows comes from event times, which is what makes replays deterministic and
state checkpointable.

A detector declares, on its class, everything the rest of streamproc needs to know about it:

    kind, family, severity   what it is called, which event family it reads, its alerts' level
    defaults                 every parameter with its default (config ``params`` override them)
    colocate                 the fields that co-locate its state (repartition.py), or None
    after                    kinds whose detectors it reads: they run before it in an engine
    prefilter()              which records can matter to it (a predicate over a record's data)
    prefilter_reads_record_only  whether that reads the record alone (re-keyed: ship only those)
    ship_column_prefilter()  the column expression those are picked by (column_prefilter)
    column_prefilter()       the same as a column expression: a batch is then judged from its
                             columns, Events made for the records it selects alone
    judge_batch(batch)       a batch at once, reading its columns (columns.py), where that is
                             cheaper than ``process`` a record at a time
    connect(peers)           where it finds the detectors named in ``after``

Adding a built-in detector touches one new module in this package (subclass ``Detector``,
decorate with ``@register``) plus its test and its section in docs/detectors.md: the package
imports every module it holds (``discover``), nothing lists them. A user's own detector is
loaded from ``module:Class`` in the config or from the ``streamproc.detectors`` entry point
group, and declares the same things.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Final

from ..alerts import Alert, fingerprint
from ..errors import ConfigError
from ..events import Event
from ._windows import DEFAULT_KEY_CAP
from .columns import EventBatch

REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make a detector available by its ``kind``."""
    if not getattr(cls, "kind", None) or not getattr(cls, "family", None):
        raise TypeError(f"{cls.__name__} must set class attributes 'kind' and 'family'")
    REGISTRY[cls.kind] = cls
    return cls


def discover(package: str) -> None:
    """Import every public module of ``package`` (its detectors register themselves), in name
    order. ``_helpers`` are left to the modules that import them."""
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


class _Undeclared:
    """The ``colocate`` of a detector that does not say: see ``Detector.colocate``."""

    def __repr__(self) -> str:
        return "UNDECLARED"


UNDECLARED: Final = _Undeclared()

# A record predicate: True when the record can matter to the detector (see ``prefilter``).
Prefilter = Callable[[dict[str, Any]], bool]


@dataclass(slots=True)
class DetectorContext:
    """What the engine tells a detector about where it runs."""

    binding: str = ""  # name of the topic binding (for labels)
    key_cap: int = DEFAULT_KEY_CAP
    labels: dict[str, str] = field(default_factory=dict)  # extra labels for every alert


class Detector:
    kind: ClassVar[str] = ""
    family: ClassVar[str] = ""
    severity: ClassVar[str] = "medium"
    # Every tunable with its default; ``params`` in the config override these by name, and
    # unknown names are a config error (a typo must not silently keep the default).
    defaults: ClassVar[dict[str, Any]] = {}
    # Detectors that are on unless the config turns them off.
    enabled_by_default: ClassVar[bool] = True
    # Fields that co-locate this detector's state: it is exact on a topic partitioned by any
    # one of them, and runs on a repartition topic keyed by the first otherwise
    # (repartition.py). None: it keeps no keyed state, any partitioning suits it. A detector
    # that leaves this UNDECLARED is assumed to key its state by its family's contract key
    # (auth-logs: username), and check-config says so next to it.
    colocate: ClassVar[tuple[str, ...] | _Undeclared | None] = UNDECLARED
    # Kinds whose detectors this one reads (through ``connect``): in an engine they judge each
    # batch before it does. Kinds the engine does not run are ignored.
    after: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, params: dict[str, Any] | None = None, ctx: DetectorContext | None = None
    ) -> None:
        self.ctx = ctx or DetectorContext()
        self.params = self.resolve_params(params or {})
        self.evaluations = 0

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - set(cls.defaults) - {"enabled"}
        if unknown:
            raise ConfigError(
                f"detector {cls.kind!r} has no parameter {', '.join(sorted(unknown))}",
                hint=f"known parameters: {', '.join(sorted(cls.defaults)) or 'none'}",
            )
        merged = dict(cls.defaults)
        for name, value in params.items():
            if name == "enabled":
                continue
            default = cls.defaults[name]
            if isinstance(default, bool) != isinstance(value, bool) or (
                isinstance(default, int | float) and not isinstance(value, int | float)
            ):
                raise ConfigError(
                    f"detector {cls.kind!r} parameter {name!r} must be like {default!r}, "
                    f"got {value!r}"
                )
            merged[name] = value
        return merged

    # -- the interface --------------------------------------------------------------------

    def process(self, events: list[Event]) -> list[Alert]:
        """Judge a batch of events (in arrival order; times within the allowed lateness)."""
        raise NotImplementedError

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        """Judge a batch (the engine calls this): by default ``process(batch.events)``.
        Override it to read the batch's columns (columns.py), shared by the engine's
        detectors: a detector that keeps one value per key (host_silent: a host's last
        report) can update each key once per batch from a group-by instead of once per
        record. Same contract as ``process``: same alerts, same state."""
        return self.process(batch.events)

    def prefilter(self) -> Prefilter | None:
        """Which records of a batch can matter to this detector: a predicate over a record's
        ``data``, False when ``process`` would pass the record over without touching state or
        alerting; None: every record can. Ask once per batch and apply it to the batch's
        records in order: a predicate may read the detector's state as the batch starts and
        remember earlier records of the batch (metric_threshold: a host not in state normal,
        or over a threshold earlier in the batch). ``process`` given only the records it
        passes must return what it returns given all of them (tests/unit/test_detector_registry.py
        checks every built-in). A declaration: ``process`` still receives every record and
        checks for itself. Measured on the mixed stream, picking the candidates first costs
        more than that check, whether by the predicate (a Python call per record: 0.85-0.93x
        of the events/s) or column-wise over the decoded records (``batch.falsy("success")``
        before brute_force: 332 against 283 ns per auth record; an endpoint column searched
        before sql_injection: 700 against 520 ns): a column of Python objects is read at
        100-300 ns per value, about what the detector's own check costs."""
        return None

    #: ``prefilter`` and ``column_prefilter`` read the record alone (and the detector's
    #: parameters), never state, nor its peers': a source task may then ship to this
    #: detector's repartition topic only the records they pass (pipeline/repartition.py).
    #: Only the engine's time then comes from fewer records there: say so only of a detector
    #: whose alerts do not depend on the records it passes over.
    prefilter_reads_record_only: ClassVar[bool] = False

    #: ``judge_batch`` reads the batch through ``column``, ``times``, ``origin``, ``event``
    #: and ``events_at`` alone (never ``events`` or ``rows`` of every record): an engine may
    #: then judge a batch read into columns (columns.FrameBatch), with Events made only for
    #: the records it asks for. ``process(events)`` must be ``judge_batch(EventBatch(events))``.
    reads_columns: ClassVar[bool] = False

    def column_prefilter(self) -> Any:
        """``prefilter`` over columns: a function of a batch's RecordFrame (decode/frames.py:
        ``frame.column(name)`` is a list of the decoder's values, None where a record has
        none) that returns a truth value a record, in order (an iterable: ``map`` over the
        columns keeps it at C speed), or None (every record). A detector
        that has one lets an engine judge a batch from its columns
        (``DetectorEngine.process_frame``): ``process`` then receives only the records the
        expression selects, as Events, in order. The contract is ``prefilter``'s: ``process``
        given only those records returns what it returns given all of them, and the
        expression selects at least what ``prefilter`` passes (tests/unit/test_frames.py checks
        every built-in), or fewer where the detector can tell from the columns that a record
        changes nothing (compromise_suspected, sql_injection). Asked once per batch, right
        before the detector judges it, so it may read the detector's state, and its peers'
        (they judged the batch before it)."""
        return None

    def ship_column_prefilter(self) -> Any:
        """The column expression a source task picks this detector's copies by, where it runs
        on a repartition topic and ``prefilter_reads_record_only`` (pipeline/repartition.py,
        ``ship_filter``): ``column_prefilter``, unless a detector that judges columns some
        other way (``reads_columns``: rules, through their shared matcher) gives one for
        shipping alone. It selects exactly what ``prefilter`` passes, or more."""
        return self.column_prefilter()

    def connect(self, peers: Mapping[str, Detector]) -> None:
        """Called by the engine with every detector it runs, by kind, whenever that set is
        built or changed (a reload that rebuilds one): the place to look up the detectors
        named in ``after``. Keep no other path to a peer: a reload replaces objects."""

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

    def make_alert(
        self,
        *,
        key: dict[str, Any],
        incident: Any,
        event_time: float,
        title: str,
        body: str = "",
        severity: str | None = None,
        status: str = "firing",
        evidence: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        kind: str | None = None,
        audience: str = "internal",
    ) -> Alert:
        kind = kind or self.kind
        merged_labels = {"kind": kind, "family": self.family}
        if self.ctx.binding:
            merged_labels["binding"] = self.ctx.binding
        merged_labels.update(self.ctx.labels)
        if labels:
            merged_labels.update(labels)
        # the fingerprint is of the whole key, before any cut (see alerts.py); the engine that
        # runs the detector cuts the alert (cap_alert), once, after the detector is done with
        # it. Alert's fields in order, not by name: 13 keywords cost a dataclass's __init__
        # 2.4x its work (~9,800 CPU instructions against ~4,100, measured with callgrind)
        return Alert(
            kind,
            severity or self.severity,
            status,
            key,
            fingerprint(kind, key, incident),
            event_time,
            title,
            body,
            merged_labels,
            evidence or {},
            source or {},
            self.family,
            audience,
        )


def load_detector_class(kind: str) -> type[Detector]:
    """A registered kind, a ``module:Class`` path, or an entry point name."""
    if kind in REGISTRY:
        return REGISTRY[kind]
    if ":" in kind:
        module_name, _, attr = kind.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"cannot load detector {kind!r}: {exc}", hint="give an importable module:Class"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, Detector)):
            raise ConfigError(f"{kind!r} is not a streamproc Detector subclass")
        return cls
    for ep in entry_points(group="streamproc.detectors"):
        if ep.name == kind:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Detector)):
                raise ConfigError(
                    f"entry point {kind!r} ({ep.value}) is not a streamproc Detector subclass"
                )
            REGISTRY.setdefault(cls.kind or kind, cls)
            return cls
    raise ConfigError(
        f"unknown detector kind {kind!r}", hint=f"built-in kinds: {', '.join(sorted(REGISTRY))}"
    )


def run_order(detectors: Sequence[Detector]) -> list[Detector]:
    """``detectors`` with each one after those it names in ``after`` (and otherwise in the
    order given): a stable topological order. A cycle is a config error."""
    by_kind = {d.kind: d for d in detectors}
    out: list[Detector] = []
    done: set[str] = set()

    def place(d: Detector, path: tuple[str, ...]) -> None:
        if d.kind in done:
            return
        if d.kind in path:
            cycle = " -> ".join((*path[path.index(d.kind) :], d.kind))
            raise ConfigError(
                f"detectors wait for each other: {cycle}",
                hint="'after' must not name a detector that runs after it",
            )
        for kind in d.after:
            peer = by_kind.get(kind)
            if peer is not None:
                place(peer, (*path, d.kind))
        done.add(d.kind)
        out.append(d)

    for d in detectors:
        place(d, ())
    return out


def connect_all(detectors: Iterable[Detector]) -> None:
    """Tell every detector who its peers are now (see ``Detector.connect``)."""
    detectors = list(detectors)
    peers = {d.kind: d for d in detectors}
    for d in detectors:
        d.connect(peers)


def detectors_for_family(family: str) -> list[type[Detector]]:
    return [cls for cls in REGISTRY.values() if cls.family == family]
