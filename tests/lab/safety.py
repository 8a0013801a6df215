"""The process-wide safety net: every lab of this process goes down at exit or on a signal.

A lab registers itself when it starts coming up and unregisters when it is down (or detached).
``atexit`` and SIGINT/SIGTERM handlers (installed once, from the main thread, chaining to the
handlers that were there before) tear down whatever is still registered.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from .netlab import Lab

__all__ = ["live_labs", "teardown_all", "register", "unregister", "LAB_NETWORKS", "is_lab_address"]

LAB_NETWORKS: tuple[str, ...] = ("198.18.0.0/15", "2001:2::/48")
"""Every address the lab gives out: the benchmarking ranges of RFC 2544 and of RFC 5180 (IPv6),
which route nowhere real."""


def is_lab_address(address: str) -> bool:
    """True for an address inside :data:`LAB_NETWORKS`."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n) for n in LAB_NETWORKS)


_live: dict[int, Lab] = {}
_live_lock = threading.RLock()
_handlers_installed = False


def live_labs() -> list[Lab]:
    """Labs of this process that are up (or coming up)."""
    with _live_lock:
        return list(_live.values())


def teardown_all() -> None:
    """Tear down every lab of this process (atexit and signal handlers call this)."""
    for lab in live_labs():
        try:
            lab.down()
        except Exception as exc:  # keep going: the other labs must still go
            print(f"tests.lab: teardown of {lab.run_id} failed: {exc}", file=sys.stderr)


def register(lab: Lab) -> None:
    global _handlers_installed
    with _live_lock:
        _live[id(lab)] = lab
        if _handlers_installed:
            return
        _handlers_installed = True
    atexit.register(teardown_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            signal.signal(sig, _make_handler(previous))


def unregister(lab: Lab) -> None:
    with _live_lock:
        _live.pop(id(lab), None)


def _make_handler(previous: Any) -> Callable[[int, Optional[FrameType]], None]:
    def handler(signum: int, frame: Optional[FrameType]) -> None:
        teardown_all()
        if callable(previous):
            previous(signum, frame)  # e.g. Python's SIGINT handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        # SIG_IGN: the process chose to ignore it; the labs are down, carry on.

    return handler
