"""Detectors: one module per detector family, registered by kind.

Importing this package imports every public module in it (``discover``): each built-in
detector registers itself, so adding one is adding its module. Where run order matters a
detector says so itself (``after``); engines run their detectors in that order.
"""

from .base import (
    REGISTRY,
    UNDECLARED,
    Detector,
    DetectorContext,
    detectors_for_family,
    discover,
    load_detector_class,
    register,
    run_order,
)
from .engine import DetectorEngine
from .factory import build_detectors, build_engine

discover(__name__)

__all__ = [
    "REGISTRY",
    "UNDECLARED",
    "Detector",
    "DetectorContext",
    "DetectorEngine",
    "build_detectors",
    "build_engine",
    "detectors_for_family",
    "discover",
    "load_detector_class",
    "register",
    "run_order",
]
