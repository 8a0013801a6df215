"""Plumbing for network namespaces: commands, batches, setns, and finding processes in them.

Everything here works on namespaces by name (``/run/netns/NAME``, as ``ip netns`` makes
them). Nothing touches the root namespace's interfaces, routes or rules.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, TypeVar

__all__ = [
    "LabError",
    "run",
    "ip_batch",
    "tc_batch",
    "iptables_restore",
    "netns_add",
    "netns_delete",
    "netns_list",
    "in_netns",
    "call_in_netns",
    "write_sysctl",
    "pids_in_netns",
    "kill_pids",
    "wait_gone",
    "process_start",
    "missing_tools",
    "NETNS_DIR",
]

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    """The lab could not be built or a command in it failed; the message says which."""


def run(cmd: Sequence[str], *, input: Optional[str] = None, timeout: float = 10.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (bounded by ``timeout``); raise :class:`LabError` with its stderr on failure."""
    try:
        proc = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        shown = f"\n{input.strip()}" if input and len(input) < 4000 else ""
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {detail}{shown}")
    return proc


def ip_batch(lines: Sequence[str], netns: Optional[str] = None) -> None:
    """Run ``ip`` commands in one process (``ip -batch``), inside ``netns`` if given."""
    if lines:
        run(["ip", *(["-n", netns] if netns else []), "-batch", "-"], input="\n".join(lines) + "\n")


def tc_batch(lines: Sequence[str], netns: str) -> None:
    """Run ``tc`` commands in one process inside ``netns``."""
    if lines:
        run(["tc", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n")


def iptables_restore(rules: str, netns: str) -> None:
    """Load an ``iptables-restore`` document into ``netns`` (its tables start empty)."""
    if rules.strip():
        run(["ip", "netns", "exec", netns, "iptables-restore"], input=rules)


def netns_list(prefix: str = "") -> list[str]:
    """Named network namespaces whose name starts with ``prefix``."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def netns_add(names: Sequence[str]) -> None:
    """Create the named namespaces (one ``ip`` process for all)."""
    ip_batch([f"netns add {name}" for name in names])


def netns_delete(names: Sequence[str]) -> None:
    """Delete the named namespaces that exist; their veths and routes go with them."""
    present = set(netns_list())
    lines = [f"netns delete {name}" for name in names if name in present]
    # -force: go on past a namespace someone else deleted meanwhile.
    if lines:
        run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n", check=False)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Move the *calling thread* into namespace ``name`` for the block, then back.

    Network namespaces are per thread in Linux: sockets opened inside the block live in the
    namespace and keep working after it. Other threads are not affected.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"setns {name}: {os.strerror(err)}")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                # A thread stuck in a lab namespace would poison everything after it.
                err = ctypes.get_errno()
                raise LabError(f"setns back from {name}: {os.strerror(err)}")
    finally:
        os.close(target)
        os.close(home)


def call_in_netns(name: str, fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Call ``fn`` in a short-lived thread inside namespace ``name``; its result or exception."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            with in_netns(name):
                box["result"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=body, name=f"netns:{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise LabError(f"call in {name} did not finish within {timeout}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def write_sysctl(name: str, values: dict[str, str]) -> None:
    """Set sysctls (``net.ipv4.ip_forward`` style keys) inside namespace ``name``.

    /proc/sys/net is resolved against the opening thread's namespace, so a thread inside the
    namespace writes them without spawning ``ip netns exec sysctl``.
    """

    def body() -> None:
        for key, value in values.items():
            Path("/proc/sys", *key.split(".")).write_text(f"{value}\n")

    call_in_netns(name, body)


def _netns_inode(name: str) -> Optional[tuple[int, int]]:
    try:
        st = os.stat(NETNS_DIR / name)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def pids_in_netns(names: Sequence[str]) -> dict[str, list[int]]:
    """Processes whose (main thread's) network namespace is one of ``names`` (like ``ip netns pids``)."""
    wanted = {}
    for name in names:
        key = _netns_inode(name)
        if key is not None:
            wanted[key] = name
    found: dict[str, list[int]] = {name: [] for name in names}
    if not wanted:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue  # gone, or a kernel thread
        name = wanted.get((st.st_dev, st.st_ino))
        if name is not None:
            found[name].append(int(entry))
    return found


def kill_pids(pids: Sequence[int], sig: int = signal.SIGKILL) -> None:
    """Signal ``pids``, never this process or its parent, ignoring ones already gone."""
    spare = {os.getpid(), os.getppid()}
    for pid in pids:
        if pid in spare:
            continue
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids: Sequence[int], timeout_s: float = 3.0) -> list[int]:
    """Wait until every pid of ``pids`` has left its network namespace (exited: a zombie's
    namespace links are gone too); SIGKILL is delivered asynchronously. Returns those left."""
    deadline = time.monotonic() + timeout_s
    left = list(pids)
    while left:
        left = [pid for pid in left if _readable_ns(pid)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return left


def process_start(pid: int) -> Optional[int]:
    """``pid``'s start time (clock ticks since boot, /proc/PID/stat field 22), or None when it
    is gone: with the pid, it names one process, as a pid alone does not once pids wrap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _readable_ns(pid: int) -> bool:
    try:
        os.stat(f"/proc/{pid}/ns/net")
        return True
    except OSError:
        return False


def missing_tools(tools: Sequence[str]) -> list[str]:
    """The tools of ``tools`` not found on PATH (root's sbin dirs included)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [tool for tool in tools if shutil.which(tool, path=path) is None]
