"""``python -m streamproc.traffic topics/``: write the sample streams and their README."""

from .samples import main

raise SystemExit(main())
