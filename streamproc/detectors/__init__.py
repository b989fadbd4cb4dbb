"""Detectors: one module per detector family, registered by kind.

Importing this package registers every built-in detector.
"""

# Importing registers. The factory builds an engine's detectors in registration order;
# compromise_suspected imports brute_force, so brute_force always registers (and runs) first.
from . import (  # noqa: F401
    brute_force,
    compromise_suspected,
    deployment,
    distributed_brute_force,
    host_silent,
    metric_below,
    metric_threshold,
    password_spray,
    pipeline_failed,
    rate_abuse,
    revenue_drop,
    revenue_target_exceeded,
    revenue_target_missed,
    sla_breach,
    sql_injection,
    ticket_created,
    ticket_resolved,
    unusual_login,
)
from .base import (
    REGISTRY,
    Detector,
    DetectorContext,
    detectors_for_family,
    load_detector_class,
    register,
)
from .engine import DetectorEngine
from .factory import build_detectors, build_engine

__all__ = [
    "REGISTRY", "Detector", "DetectorContext", "DetectorEngine", "build_detectors",
    "build_engine", "detectors_for_family", "load_detector_class", "register",
]
