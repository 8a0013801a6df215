"""File primitives the writers share: an exclusive lock on an open file, and a positional read.

The run history (:mod:`giga_netcheck.monitor.history`), the schedule's single-run lock and the
upload spool (:mod:`giga_netcheck.board.upload`) lock with :func:`lock_fd`; atomic whole-file
writes are :func:`giga_netcheck.core.results.write_atomic`.
"""

from __future__ import annotations

import os

try:
    import fcntl
except ImportError:  # Windows: byte-range locks instead of flock
    fcntl = None  # type: ignore[assignment]
    import msvcrt


def lock_fd(fd: int, *, wait: bool = True) -> None:
    """An exclusive lock on an open file, dropped when it is closed; OSError when held and not ``wait``.

    ``flock`` where there is one; on Windows a lock on the first byte (``msvcrt.locking``).
    """
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return
    os.lseek(fd, 0, os.SEEK_SET)
    msvcrt.locking(fd, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)  # pragma: no cover - Windows


def pread(fd: int, n: int, offset: int) -> bytes:
    """``os.pread``, or seek and read where the OS has no pread (Windows)."""
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, n)  # pragma: no cover
