"""The own engine's 100 ms samples count bytes as they arrive, at low rates too (issue #16).

A server on loopback paces its side of each connection at a few Mbit/s: it sends ``/download``
in small slices on a 5 ms clock, and reads ``/upload`` at the same pace through a small
receive buffer and a 1448-byte MSS (an Ethernet path), so the client's upload is held to that
rate by TCP's flow control. On such a steady link the samples after the warm-up must read the
rate: before, the engine counted 256 KiB at a time (the download re-chunked to 256 KiB, the
upload counted blocks as the socket took them), so at 4 Mbit/s most 100 ms samples read 0 and
the others several times the rate.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time

import httpx
import pytest

from giga_netcheck.core.models import Target
from giga_netcheck.measure.engines import ThroughputPlan
from giga_netcheck.measure.engines.http import HttpEngine, bytes_delivered

RATE_MBIT = 4.0  # the whole link; each of the streams gets its share
STREAMS = 2
TICK_S = 0.005  # the pacer's clock: a 100 ms sample spans 20 ticks
PLAN = dict(streams=STREAMS, duration_s=1.8, warmup_s=0.5, interval_s=0.1)
# A sample spans 20 ticks of the pacer; a busy test machine may move a few ticks from one
# sample to the next, which the median absorbs. 25% is five ticks: far wider than the pacing
# error, far narrower than the old counting (0 or a multiple of 256 KiB = 21 Mbit/s a sample).
MARGIN = 0.25


@pytest.fixture(autouse=True, scope="module")
def _httpx_loaded():
    """httpx's first client in a process takes a while to set up: not inside a short warm-up."""
    httpx.Client(verify=False).close()


class PacedServer:
    """HTTP/1.1 on 127.0.0.1 that moves each connection's bytes at ``mbit_per_conn`` Mbit/s."""

    def __init__(self, mbit_per_conn: float) -> None:
        self.bytes_per_s = mbit_per_conn * 1e6 / 8
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: an Ethernet-sized MSS and the smallest receive
        # buffer, so the window reopens (what the uploading client sees acknowledged) a few
        # KB at a time as we read, not half a large buffer at a time.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stall_s = 0.0
        """The longest the pacer overslept its tick (a loaded machine may hold it back)."""

    def __enter__(self) -> PacedServer:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.sock.close()
        for t in self._threads:
            t.join(2)

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _due(self, start: float) -> int:
        """Bytes the pacer owes by now (an absolute schedule: a late tick catches up)."""
        return int((time.perf_counter() - start) * self.bytes_per_s)

    def _tick(self) -> None:
        t = time.perf_counter()
        time.sleep(TICK_S)
        self.stall_s = max(self.stall_s, time.perf_counter() - t - TICK_S)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(3)
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(1024)
                    if not data:
                        return
                    head += data
                head, rest = head.split(b"\r\n\r\n", 1)
                if head.startswith(b"GET /download"):
                    self._send(conn)
                elif head.startswith(b"POST /upload"):
                    self._receive(conn, rest)
            except OSError:
                pass

    def _send(self, conn: socket.socket) -> None:
        size = 1 << 30
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        payload = bytes(range(256)) * 256
        start, sent = time.perf_counter(), 0
        while not self._stop.is_set() and sent < size:
            n = min(self._due(start) - sent, len(payload))
            if n > 0:
                conn.sendall(payload[:n])
                sent += n
            self._tick()

    def _receive(self, conn: socket.socket, got: bytes) -> None:
        # The client sends a chunked body; its last chunk is "0\r\n\r\n" (the payload never
        # holds "\r\n\r\n"). Read at the pace, then answer.
        start, read, tail = time.perf_counter(), len(got), got[-5:]
        while not self._stop.is_set() and not tail.endswith(b"0\r\n\r\n"):
            n = self._due(start) - read
            if n > 0:
                data = conn.recv(min(n, 65536))
                if not data:
                    return
                read += len(data)
                tail = (tail + data)[-5:]
            else:
                self._tick()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_samples_at_a_few_mbits_read_the_rate_and_none_is_zero(direction):
    with PacedServer(RATE_MBIT / STREAMS) as srv:
        target = Target("internet", "internet", "127.0.0.1", srv.url)
        m = HttpEngine().measure(target, ThroughputPlan(direction, **PLAN), threading.Event())
    assert m.error is None and m.goodput_mbps is not None
    steady = m.samples_mbps[int(round(PLAN["warmup_s"] / PLAN["interval_s"])) :]
    assert len(steady) >= 8
    # the link moves RATE_MBIT; the window after the warm-up holds 260 of the pacer's ticks
    assert m.goodput_mbps == pytest.approx(RATE_MBIT, rel=MARGIN)
    assert statistics.median(steady) == pytest.approx(m.goodput_mbps, rel=MARGIN)
    assert m.p50_mbps == pytest.approx(m.goodput_mbps, rel=MARGIN)
    # Every 100 ms of a steady link moves bytes (the old counting: most samples 0). A loaded
    # test machine that held the pacer back for half a sample made the link unsteady: then
    # one empty sample is the truth, not the counting.
    zeros = sum(1 for s in steady if s <= 0)
    assert zeros == 0 or (zeros == 1 and srv.stall_s >= PLAN["interval_s"] / 2), (srv.stall_s, steady)


def test_bytes_delivered_counts_what_the_peer_received():
    """The upload's count: what the server acknowledged (Linux TCP_INFO), None when unknown."""
    with socket.socket() as probe:
        if bytes_delivered(probe) is None:
            pytest.skip("no TCP_INFO on this system")
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        client = socket.create_connection(lsock.getsockname())
        peer, _ = lsock.accept()
        with client, peer:
            assert bytes_delivered(client) == 0
            client.sendall(b"x" * 100_000)
            got = 0
            while got < 100_000:
                got += len(peer.recv(65536))
            deadline = time.monotonic() + 2
            while bytes_delivered(client) != 100_000 and time.monotonic() < deadline:
                time.sleep(0.01)  # the last ACK is on its way
            assert bytes_delivered(client) == 100_000
    assert bytes_delivered(client) is None  # closed
    assert bytes_delivered(None) is None
