"""The delay line: a user-space forwarder between two TUN devices (this kernel has no netem).

One TUN device sits in each of the two namespaces a link joins; this process holds both and
copies packets from one to the other after a set delay (plus optional jitter), one process per
direction so the data and the ACK direction each get a core. Order is kept: jitter delays a
packet but never lets it overtake the one before it (a link does not reorder, and TCP would
read reordering as loss).

Design choices, each for speed or precision:

- ``select()`` with a float timeout, not epoll/poll: those round up to whole milliseconds, and
  the delay must be right to well under one. select() still wakes ~0.2 ms late on this VM,
  so it is asked to wake a little early and ``sleep()`` (~0.05 ms late) covers the rest.
  Timer slack is set to 1 ns for the same reason.
- Reads are drained in bursts (non-blocking fd) and stamped once per wake-up.
- By default every 1500-byte packet is one read and one write: plain Python carries well over
  the 300 Mbit/s the lab needs this way (docs/lab.md), at about half a core for 300.
  ``--offload`` makes the TUN devices take TSO/GSO super-packets with a virtio-net header, as
  a VM's tap does (up to 64 KiB per read, re-segmented by the kernel on the way out; the wire
  MTU stays 1500): the same throughput for a fifth of the CPU. The lab uses it on links
  without loss, since a drop would then take a whole burst of segments, not one packet.

The process only creates the devices; the lab sets addresses, MTU and qdiscs with ``ip``/``tc``
once it prints ``READY``. The devices vanish with the process (they are not persistent), so a
killed forwarder leaves nothing behind. Standard library only: the lab runs it by path.

Usage::

    python forwarder.py --a NS_A:DEV_A --b NS_B:DEV_B --delay-ab-ms 15 --delay-ba-ms 15
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import random
import select
import signal
import struct
import sys
import time
from collections import deque
from typing import Optional

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
# A read must hold the biggest GSO packet (64 KiB) plus the virtio-net header.
READ_BYTES = 65536 + 64
# Packets read per wake-up before due packets get written: big enough to amortise select(),
# small enough that a burst cannot hold back packets that are due.
BURST = 64
SLEEP_BELOW_S = 0.001
SELECT_EARLY_S = 0.0004

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(path: str) -> None:
    """Move the calling thread into the network namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def open_tun(netns: str, name: str, offload: bool) -> int:
    """Create TUN device ``name`` inside netns ``netns`` (a name under /run/netns); its fd."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        setns(f"/run/netns/{netns}")
        # The device is created in the namespace of the thread that opens it.
        fd = os.open("/dev/net/tun", os.O_RDWR)
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
        if offload:
            fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
    finally:
        _check(_libc.setns(home, CLONE_NEWNET), "setns back")
        os.close(home)
    return fd


def pump(src: int, dst: int, delay_s: float, jitter_s: float, rng: random.Random) -> None:
    """Copy packets from ``src`` to ``dst`` after ``delay_s`` (+- ``jitter_s``), forever."""
    os.set_blocking(src, False)
    line: deque[tuple[float, bytes]] = deque()
    read, write, now_s, sel, sleep = os.read, os.write, time.monotonic, select.select, time.sleep
    last_due = 0.0
    watch = [src]
    while True:
        timeout: Optional[float] = None
        if line:
            now = now_s()
            while line and line[0][0] <= now:
                try:
                    write(dst, line.popleft()[1])
                except OSError:
                    pass  # far side down (a "link down" scenario): the packet is lost
            if line:
                remaining = line[0][0] - now_s()
                if remaining >= SLEEP_BELOW_S:
                    timeout = remaining - SELECT_EARLY_S
                else:
                    # select() wakes ~0.2 ms late here, sleep() ~0.05 ms: sleep the last
                    # stretch; packets arriving meanwhile wait in the TUN ring.
                    if remaining > 0:
                        sleep(remaining)
                    timeout = 0.0
        if not sel(watch, (), (), timeout)[0]:
            continue
        stamp = now_s()
        for _ in range(BURST):
            try:
                packet = read(src, READ_BYTES)
            except BlockingIOError:
                break
            except OSError:
                sleep(0.001)  # our side is going down: do not spin on a readable-but-failing fd
                break
            due = stamp + delay_s
            if jitter_s:
                due += rng.uniform(-jitter_s, jitter_s)
                due = max(due, stamp)
            # Never overtake the packet before: keeps order under jitter.
            if due < last_due:
                due = last_due
            last_due = due
            line.append((due, packet))


def main(argv: Optional[list[str]] = None) -> int:
    """Create the two TUN devices, print READY, forward until killed."""
    parser = argparse.ArgumentParser(description="TUN-to-TUN delay forwarder for the lab")
    parser.add_argument("--a", required=True, help="NETNS:DEV of side A")
    parser.add_argument("--b", required=True, help="NETNS:DEV of side B")
    parser.add_argument("--delay-ab-ms", type=float, default=0.0)
    parser.add_argument("--delay-ba-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ab-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ba-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--offload", action="store_true", help="TSO/GSO super-packets (see above)")
    args = parser.parse_args(argv)

    _libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    ns_a, dev_a = args.a.split(":", 1)
    ns_b, dev_b = args.b.split(":", 1)
    fd_a = open_tun(ns_a, dev_a, args.offload)
    fd_b = open_tun(ns_b, dev_b, args.offload)
    # Live in side A's namespace from now on, so whoever sweeps the lab's namespaces for
    # processes (teardown, `python -m tests.lab down`) finds this one too.
    setns(f"/run/netns/{ns_a}")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    print("READY", flush=True)

    parent = os.getpid()
    child = os.fork()
    if child == 0:
        # B->A runs here; it must not outlive the parent, whatever kills the parent.
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl
            os._exit(0)
        try:
            pump(fd_b, fd_a, args.delay_ba_ms / 1000.0, args.jitter_ba_ms / 1000.0, random.Random(seed + 1))
        finally:
            os._exit(0)
    try:
        pump(fd_a, fd_b, args.delay_ab_ms / 1000.0, args.jitter_ab_ms / 1000.0, random.Random(seed))
    finally:
        os.kill(child, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
