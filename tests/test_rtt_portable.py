"""The RTT methods' socket calls where the OS differs from Linux: Windows has no ``recvmsg``
(no kernel receive time), says WSAEWOULDBLOCK (10035) for a connect in progress and WSAECONNREFUSED
(10061) for a refused one, and signals a failed connect as exceptional rather than writable.
Loopback only: the OS's answers are replayed through a thin socket wrapper."""

from __future__ import annotations

import errno
import socket
import time

import pytest

from giga_netcheck.measure.probes import rtt

WSAEWOULDBLOCK = 10035
WSAECONNREFUSED = 10061
REAL_SOCKET = socket.socket


class NoRecvmsg:
    """A socket as Windows' Python has it: recvfrom, no recvmsg."""

    def __init__(self, sock: socket.socket) -> None:
        self._s = sock

    def recvfrom(self, n: int):
        return self._s.recvfrom(n)

    def fileno(self) -> int:
        return self._s.fileno()


def test_receive_without_recvmsg_takes_the_datagram_and_no_ancillary_data():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        tx.sendto(b"ping", rx.getsockname())
        data, anc, src = rtt.receive(NoRecvmsg(rx), 64)
        assert data == b"ping" and anc == [] and src[1] == tx.getsockname()[1]


def test_await_reply_without_recvmsg_times_in_user_space():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        sent = time.time()
        tx.sendto(b"reply", rx.getsockname())
        ms = rtt._await_reply(NoRecvmsg(rx), sent, 2.0, lambda data, src: data == b"reply")
    assert ms is not None and 0.0 <= ms < 2000.0


class WindowsLikeSocket:
    """A real non-blocking TCP socket whose connect_ex answers with Windows' error numbers."""

    def __init__(self, *args) -> None:
        self._s = REAL_SOCKET(*args)

    def connect_ex(self, addr) -> int:
        rc = self._s.connect_ex(addr)
        return {errno.EINPROGRESS: WSAEWOULDBLOCK, errno.ECONNREFUSED: WSAECONNREFUSED}.get(rc, rc)

    def getsockopt(self, *args):
        rc = self._s.getsockopt(*args)
        return WSAECONNREFUSED if rc == errno.ECONNREFUSED else rc

    def __getattr__(self, name):
        return getattr(self._s, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._s.close()


@pytest.fixture
def windows_errnos(monkeypatch):
    monkeypatch.setattr(rtt, "_IN_PROGRESS", rtt._IN_PROGRESS | {WSAEWOULDBLOCK})
    monkeypatch.setattr(rtt, "_REFUSED", rtt._REFUSED | {WSAECONNREFUSED})
    monkeypatch.setattr(rtt.socket, "socket", WindowsLikeSocket)


def test_tcp_handshake_with_windows_errnos_answers_for_open_and_closed_ports(windows_errnos):
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        ms, err = rtt.tcp_handshake("127.0.0.1", port, 2.0)
    assert err == 0 and ms is not None and ms < 2000.0
    ms, err = rtt.tcp_handshake("127.0.0.1", port, 2.0)  # closed now: an answering RST is a round trip
    assert err == errno.ECONNREFUSED and ms is not None


def test_tcp_connect_method_counts_a_refusal_as_a_round_trip_with_windows_errnos(windows_errnos):
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
    assert rtt.TcpConnect("127.0.0.1", port).once(2.0) is not None
