"""The traffic generator under its earlier name; it lives in ``streamproc.traffic``.

``python -m streamproc.generate topics/`` still writes the sample streams and their README.
"""

from __future__ import annotations

from .traffic import *  # noqa: F403 (this module is the package under another name)
from .traffic import __all__  # noqa: F401 (the same names, re-exported)
from .traffic.samples import main as _main

if __name__ == "__main__":
    raise SystemExit(_main())
