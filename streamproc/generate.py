"""The traffic generator under its earlier name; it lives in ``streamproc.traffic``.

``python -m streamproc.generate topics/`` still writes the sample streams and their README.
"""

from __future__ import annotations

from .traffic import (
    DEFAULT_DURATION,
    DEFAULT_END,
    FAMILIES,
    KEY_FIELDS,
    KINDS_BY_FAMILY,
    MIX,
    SAMPLE_SEED,
    SAMPLE_SPECS,
    SCENARIOS,
    TS_FORMATS,
    Formatter,
    Incident,
    Traffic,
    count_alerts,
    default_plan,
    generate,
    generate_bytes,
    render_readme,
    sample_traffic,
    scenario_families,
    split_events,
    write_samples,
)
from .traffic.samples import main as _main

__all__ = [
    "DEFAULT_DURATION",
    "DEFAULT_END",
    "FAMILIES",
    "KEY_FIELDS",
    "KINDS_BY_FAMILY",
    "MIX",
    "SAMPLE_SEED",
    "SAMPLE_SPECS",
    "SCENARIOS",
    "TS_FORMATS",
    "Formatter",
    "Incident",
    "Traffic",
    "count_alerts",
    "default_plan",
    "generate",
    "generate_bytes",
    "render_readme",
    "sample_traffic",
    "scenario_families",
    "split_events",
    "write_samples",
]

if __name__ == "__main__":
    raise SystemExit(_main())
