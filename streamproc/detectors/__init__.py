"""Detectors: one module per detector family, registered by kind.

Importing this package registers every built-in detector.
"""

from . import brute_force  # noqa: F401  (registers)
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
    "REGISTRY", "Detector", "build_detectors", "build_engine", "DetectorContext", "DetectorEngine", "detectors_for_family",
    "load_detector_class", "register",
]
