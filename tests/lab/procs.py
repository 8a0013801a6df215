"""The lab's child processes: process groups, reaping, waiting for a READY line."""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Optional

from .netns import LabError

__all__ = ["Proc", "signal_group", "reap", "wait_line"]


@dataclass
class Proc:
    """A process the lab started, in its own process group."""

    name: str
    host: Optional[str]
    popen: subprocess.Popen[Any]


def signal_group(popen: subprocess.Popen[Any], sig: int) -> None:
    """Send ``sig`` to the process group ``popen`` leads (it was started in a new session)."""
    # Only while the leader is unreaped: after that its pid, and so the group id, may already
    # belong to someone else.
    if popen.poll() is not None:
        return
    try:
        os.killpg(popen.pid, sig)  # start_new_session: the group id is the leader's pid
    except (ProcessLookupError, PermissionError):
        pass


def reap(popen: subprocess.Popen[Any]) -> None:
    """Wait for ``popen`` (killing it if it lingers) so no zombie is left; close its pipe."""
    try:
        popen.wait(timeout=2)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout=2)
    if popen.stdout is not None:
        popen.stdout.close()


def wait_line(popen: subprocess.Popen[Any], want: str, deadline: float, what: str) -> None:
    """Read ``popen``'s stdout until a line equal to ``want``; LabError on exit or deadline."""
    assert popen.stdout is not None
    fd = popen.stdout.fileno()
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            raise LabError(f"{what} exited ({popen.wait()}) before {want}")
        buf += chunk
        if want.encode() in buf.split(b"\n"):
            return
    raise LabError(f"{what} did not say {want} within the deadline")
