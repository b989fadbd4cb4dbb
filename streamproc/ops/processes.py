"""Stopping a child process: ask, wait, then insist.

The embedded broker, and the brokers, Alertmanagers and ``streamproc run`` processes that
tests and benchmarks start, all stop the same way: a signal (SIGTERM, so the child can
close cleanly), up to ``timeout`` seconds for it to exit, then SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop_process(
    proc: subprocess.Popen[Any], timeout: float = 5.0, sig: int = signal.SIGTERM
) -> None:
    """Stop ``proc`` (see the module docstring); nothing to do if it already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
