"""Round-trip-time methods: one small class each, chosen per target by what the OS allows.

- ``icmp``: echo requests built and parsed with scapy, sent and received on a plain raw
  socket; the reply time is the kernel's receive timestamp (SO_TIMESTAMPNS), so Python's
  scheduling does not inflate the RTT (scapy's own send/receive loop adds milliseconds).
- ``icmp-dgram``: the same over an unprivileged ICMP datagram socket where the OS allows it
  (Linux ``net.ipv4.ping_group_range``, macOS).
- ``udp-echo``: datagrams to a measurement server's UDP echo port (no privilege needed).
- ``tcp-connect``: time to a SYN-ACK or RST; an answered refusal is still a round trip.

Each method sends one probe per call to :meth:`RttMethod.once` and returns the RTT in ms, or
None when nothing came back in time. Opening a method raises :class:`PermissionFailure` where
the OS forbids it, so the caller can fall back and label the series.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import sys
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional

from giga_netcheck.core.errors import PermissionFailure, ProbeError, UnreachableFailure
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.protocol import UDP_MAGIC, UDP_REPLY_MAGIC
from giga_netcheck.measure.failures import map_exception

# Python does not export SO_TIMESTAMPNS; 35 is its value on Linux (asm-generic/socket.h).
# Elsewhere we fall back to user-space receive times.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)

_id_lock = threading.Lock()
_next_id = [os.getpid() & 0xFFFF]


def _new_ident() -> int:
    with _id_lock:
        _next_id[0] = (_next_id[0] + 1) & 0xFFFF
        return _next_id[0]


class RttMethod(ABC):
    """One way of timing a round trip to one host."""

    name = "base"

    def __init__(self, host: str, port: Optional[int] = None) -> None:
        self.host = host
        self.port = port

    @abstractmethod
    def once(self, timeout_s: float) -> Optional[float]:
        """Send one probe; RTT in ms, or None if it was lost or timed out."""

    def close(self) -> None:
        """Release sockets."""

    def __enter__(self) -> RttMethod:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _resolve(host: str) -> str:
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
    except socket.gaierror as exc:
        raise UnreachableFailure(f"{host}: {exc}") from exc


class IcmpRaw(RttMethod):
    """ICMP echo on a raw socket; needs root or CAP_NET_RAW."""

    name = "icmp"
    _sock_type = socket.SOCK_RAW

    def __init__(self, host: str, port: Optional[int] = None) -> None:
        super().__init__(host, port)
        from scapy.layers.inet import ICMP, IP  # scapy is slow to import: only when used

        self._ICMP, self._IP = ICMP, IP
        self.addr = _resolve(host)
        self.sock = open_socket(self._sock_type, socket.IPPROTO_ICMP, f"{self.name} socket")
        _enable_timestamps(self.sock)
        self.sock.setblocking(False)
        self.ident = _new_ident()
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _matches(self, data: bytes) -> bool:
        reply = self._IP(data)[self._ICMP] if self._sock_type == socket.SOCK_RAW else self._ICMP(data)
        if reply.type != 0 or reply.seq != self.seq:
            return False
        # datagram sockets: the kernel rewrites the id to the socket's port, so only seq counts
        return self._sock_type != socket.SOCK_RAW or reply.id == self.ident

    def once(self, timeout_s: float) -> Optional[float]:
        self.seq = (self.seq + 1) & 0xFFFF
        packet = bytes(self._ICMP(type=8, id=self.ident, seq=self.seq) / (b"giga-netcheck" + b"\0" * 43))
        sent_at = time.time()
        try:
            self.sock.sendto(packet, (self.addr, 0))
        except OSError as exc:
            raise map_exception(exc) from exc

        def ours(data: bytes, src) -> bool:
            if src[0] != self.addr:
                return False
            try:
                return self._matches(data)
            except Exception:  # a packet scapy cannot parse is not our reply
                return False

        return _await_reply(self.sock, sent_at, timeout_s, ours)


class IcmpDgram(IcmpRaw):
    """ICMP echo on an unprivileged datagram socket (``ping_group_range``)."""

    name = "icmp-dgram"
    _sock_type = socket.SOCK_DGRAM


def _await_reply(sock: socket.socket, sent_at: float, timeout_s: float, ours: Callable[[bytes, Any], bool]) -> Optional[float]:
    """Wait for the datagram ``ours`` accepts; its RTT in ms from the kernel's receive time."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return None
        try:
            data, ancdata, src = receive(sock, 4096)
        except BlockingIOError:
            continue
        except ConnectionRefusedError:  # ICMP port unreachable for a connected UDP socket
            return None
        if ours(data, src):
            return max(0.0, ((_kernel_time(ancdata) or time.time()) - sent_at) * 1000.0)


def receive(sock: socket.socket, size: int) -> tuple[bytes, list[Any], Any]:
    """One datagram: (data, ancillary data, source). Where the OS has no ``recvmsg`` (Windows),
    ``recvfrom`` and no ancillary data, so the receive time is taken in user space."""
    if hasattr(sock, "recvmsg") and hasattr(socket, "CMSG_SPACE"):
        data, ancdata, _, src = sock.recvmsg(size, socket.CMSG_SPACE(16))
        return data, ancdata, src
    data, src = sock.recvfrom(size)
    return data, [], src


_IN_PROGRESS = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, getattr(errno, "WSAEWOULDBLOCK", errno.EINPROGRESS)}
"""What a non-blocking connect says while the handshake runs (Windows: WSAEWOULDBLOCK, 10035)."""
_REFUSED = {errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", errno.ECONNREFUSED)}


def tcp_handshake(address: str, port: int, timeout_s: float) -> tuple[Optional[float], int]:
    """One TCP handshake to ``address`` (IPv4 or IPv6 literal): (ms to the first answer, None when
    none came in time or the OS refused the connect at once; the error: 0, ECONNREFUSED for an
    answering RST, ETIMEDOUT, or the OS's errno). Closes with RST (SO_LINGER 0), so thousands of probes leave no TIME_WAIT behind.
    Portable: Windows says WSAEWOULDBLOCK for a connect in progress and signals a failed one as
    exceptional, not writable. Creating the socket may raise OSError (no such family)."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t0 = time.perf_counter()
        rc = sock.connect_ex((address, port))
        if rc not in _IN_PROGRESS:
            refused = rc in _REFUSED
            return ((time.perf_counter() - t0) * 1000.0 if refused else None), (errno.ECONNREFUSED if refused else rc)
        _, writable, failed = select.select([], [sock], [sock], timeout_s)
        if not writable and not failed:
            return None, errno.ETIMEDOUT
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return (time.perf_counter() - t0) * 1000.0, (errno.ECONNREFUSED if err in _REFUSED else err)
    finally:
        sock.close()


def open_socket(sock_type: int, proto: int, what: str) -> socket.socket:
    """An IPv4 socket of ``sock_type``/``proto``; a refusal for want of privilege (or a kernel
    without the protocol) becomes a :class:`PermissionFailure` naming ``what``."""
    try:
        return socket.socket(socket.AF_INET, sock_type, proto)
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in (errno.EPERM, errno.EACCES, errno.EPROTONOSUPPORT):
            raise PermissionFailure(f"{what} not permitted: {exc}") from exc
        raise


def _enable_timestamps(sock: socket.socket) -> None:
    if SO_TIMESTAMPNS is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            pass  # then _kernel_time finds nothing and user-space time is used


def _kernel_time(ancdata) -> Optional[float]:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9
    return None


class UdpEcho(RttMethod):
    """Datagrams to a giga-netcheck server's UDP echo port.

    The server answers ``UDP_MAGIC + rest`` with ``UDP_REPLY_MAGIC + rest`` (core/protocol.py:
    a reply no server answers again); an exact echo is also taken, from servers older than that."""

    name = "udp-echo"

    def __init__(self, host: str, port: Optional[int] = None) -> None:
        super().__init__(host, port)
        if not port:
            raise ProbeError(f"{host}: no UDP echo port known")
        self.addr = _resolve(host)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        _enable_timestamps(self.sock)
        self.sock.connect((self.addr, port))
        self.sock.setblocking(False)
        self.token = os.urandom(4)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def once(self, timeout_s: float) -> Optional[float]:
        self.seq += 1
        ident = self.token + struct.pack("!I", self.seq)
        payload = UDP_MAGIC + ident + b"\0" * 52
        sent_at = time.time()
        try:
            self.sock.send(payload)
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:  # an earlier probe met a closed port
                return None
            raise map_exception(exc) from exc
        return _await_reply(self.sock, sent_at, timeout_s, lambda data, src: data[4:12] == ident and data[:4] in _ECHO_REPLIES)


_ECHO_REPLIES = (UDP_REPLY_MAGIC, UDP_MAGIC)


class TcpConnect(RttMethod):
    """Time for a TCP handshake's first answer (SYN-ACK, or RST from a closed port)."""

    name = "tcp-connect"

    def __init__(self, host: str, port: Optional[int] = None) -> None:
        super().__init__(host, port or 80)
        self.addr = _resolve(host)

    def once(self, timeout_s: float) -> Optional[float]:
        try:
            rtt, err = tcp_handshake(self.addr, self.port, timeout_s)
        except OSError as exc:
            raise map_exception(exc) from exc
        if err in (0, errno.ECONNREFUSED):
            return rtt
        # a probe lost on the way (timed out, or an ICMP unreachable for it) is a lost probe; the OS
        # refusing the connect at once (no route at all, say) is a failure of the method
        if err == errno.ETIMEDOUT or (rtt is not None and err in (errno.EHOSTUNREACH, errno.ENETUNREACH)):
            return None
        raise map_exception(OSError(err, os.strerror(err)))


METHODS: dict[str, type[RttMethod]] = {m.name: m for m in (IcmpRaw, IcmpDgram, UdpEcho, TcpConnect)}


def open_method(names: list[str], host: str, *, udp_port: Optional[int], tcp_port: Optional[int]) -> tuple[RttMethod, list[str]]:
    """Open the first method of ``names`` that works for ``host``; also return why others did not."""
    why: list[str] = []
    for name in names:
        cls = METHODS[name]
        port = udp_port if name == "udp-echo" else tcp_port
        if name == "udp-echo" and not udp_port:
            why.append(Text("reason.udp_echo_no_server").about("udp-echo"))
            continue
        try:
            return cls(host, port), why
        except ProbeError as exc:
            why.append(f"{name}: {exc}")
            if isinstance(exc, UnreachableFailure):
                raise
    raise PermissionFailure("; ".join(why) or "no RTT method available")
