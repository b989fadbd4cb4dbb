"""Files streamproc writes hold alert payloads, customer e-mail addresses, raw records and
detector state: they are created readable by their owner only (0600), and the folders we
create for them 0700, whatever the umask. A file that already exists with wider permissions
(written by an older version) is narrowed when we open it for writing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` with the folders it creates 0700 (existing ones are left as they are)."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.parent != path:
        private_dir(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        pass
    return path


def _narrow(fd: int) -> None:
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError:  # not ours to change (e.g. a shared file named by the user)
            pass


def open_private(path: str | os.PathLike[str], mode: str = "ab", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing ("w", "a", with "b" or not), the file created 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        _narrow(fd)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty and 0600 if it does not exist (before SQLite opens it: SQLite gives
    its -wal and -shm files the database file's permissions), or narrow it if it does."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        _narrow(fd)
    finally:
        os.close(fd)
    return Path(path)
