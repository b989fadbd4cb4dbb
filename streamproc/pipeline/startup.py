"""How long a worker took from its process start to the first record judged, and where.

Each phase is an interval on one clock (seconds since ``streamproc run`` started: this
process, imports included, or the ``--workers`` supervisor that started it), so phases that
run at once overlap on the time line instead of adding up:

    0 ──imports_config──┐
                        ├─broker─┐                       (embedded only)
                                 ├─topics─┐
                                          ├─group_join───────┐
                                          ├─notify_tables─┐  │   (concurrent: delivery only)
                                                             ├─restore─┐
                                                                       ├─first_fetch─┐
                                                                         first record judged

When the first batch is judged, one INFO line gives the total and each phase, e.g.

    first record judged after 0.91 s (imports_config 0.42, broker 0.05, topics 0.03,
    group_join 0.02, restore 0.01 (24 partitions), first_fetch 0.10, notify still running)

and the gauge ``streamproc_startup_seconds{phase}`` keeps the same figures (phase
``first_record`` is the total). ``streamproc bench startup`` reads the line.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

log = logging.getLogger("streamproc.pipeline.startup")

FIRST_RECORD = "first_record"
LOG_PREFIX = "first record judged after"
# set by the ``--workers`` supervisor for a worker's first start: when ``streamproc run``
# started, so that a worker's figure counts the supervisor's own start (phase "supervisor")
STARTED_ENV = "STREAMPROC_RUN_STARTED"

_started: tuple[int, float] | None = None  # (pid, its start): read once per process


def process_started() -> float:
    """Wall-clock time this process started (its creation time, imports included).

    On Linux: now, less the process's age, read on one clock (the boot clock: /proc/self/stat
    gives the start in clock ticks since boot, 10 ms). Not psutil's ``create_time()``: it adds
    that start to the boot time as /proc/stat gives it, rounded down to the second, so it is
    up to a second early, and each figure measured from it up to a second long (0.55 s on
    the machine where this was found, another amount after each boot).
    """
    global _started
    if _started is None or _started[0] != os.getpid():  # once per process (a fork's own)
        _started = (os.getpid(), _read_process_start())
    return _started[1]


def _read_process_start() -> float:
    try:
        with open("/proc/self/stat", "rb") as fh:
            start_ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])  # field 22
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        pass  # not Linux: the platform's own start time is exact there
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - best effort: no psutil
        return time.time()


class Startup:
    """Phase intervals from process start to the first record judged."""

    def __init__(self, started: float | None = None) -> None:
        self.started = process_started() if started is None else started
        self.phases: dict[str, tuple[float, float]] = {}  # name -> (start, end), since start
        self.notes: dict[str, str] = {}
        self.first_record: float | None = None  # seconds, once judged
        self._open: dict[str, float] = {}

    @classmethod
    def of_run(cls) -> Startup:
        """The clock of this ``streamproc run``: from this process's start, or, in a worker
        the supervisor just started, from the supervisor's (see ``STARTED_ENV``)."""
        own = process_started()
        try:
            run = float(os.environ.pop(STARTED_ENV))
        except (KeyError, ValueError):
            return cls(own)
        startup = cls(min(run, own))
        startup.phases["supervisor"] = (0.0, own - startup.started)
        return startup

    def now(self) -> float:
        return time.time() - self.started

    def begin(self, phase: str, at: float | None = None) -> None:
        """``at``: seconds since the process started (default: now)."""
        self._open.setdefault(phase, self.now() if at is None else at)

    def end(self, phase: str, note: str | None = None, metrics: Any = None) -> None:
        start = self._open.pop(phase, None)
        if start is None or phase in self.phases:
            return  # only the first time counts: later rebalances are not start-up
        self.phases[phase] = (start, self.now())
        if note:
            self.notes[phase] = note
        if metrics is not None and self.first_record is not None:  # ended after judging
            metrics.startup_seconds.labels(phase).set(self.phases[phase][1] - start)

    def seconds(self, phase: str) -> float | None:
        span = self.phases.get(phase)
        return None if span is None else span[1] - span[0]

    def judged(self, metrics: Any = None) -> None:
        """The first batch is judged: log the figures once, and set the gauges."""
        if self.first_record is not None:
            return
        self.first_record = self.now()
        parts = []
        for phase, (start, end) in sorted(self.phases.items(), key=lambda kv: kv[1]):
            note = self.notes.get(phase)
            parts.append(f"{phase} {end - start:.2f}" + (f" ({note})" if note else ""))
        # phases that judging did not wait for (delivery's side) and that are not over yet
        parts += [f"{phase} still running" for phase in self._open]
        log.info("%s %.2f s (%s)", LOG_PREFIX, self.first_record, ", ".join(parts))
        if metrics is not None:
            gauge = metrics.startup_seconds
            gauge.labels(FIRST_RECORD).set(self.first_record)
            for phase, (start, end) in self.phases.items():
                gauge.labels(phase).set(end - start)
