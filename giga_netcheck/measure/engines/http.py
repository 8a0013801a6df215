"""The own HTTP throughput engine, on httpx, against giga-netcheck measurement servers.

Each stream is a thread with its own ``httpx.Client`` (its own TCP connection), looping over
large requests through ``plan.proxy`` when the probe chose one. Bytes are counted as they
arrive, whatever the rate, so a 100 ms sample at 1 Mbit/s is as true as one at 1 Gbit/s:

- download: each piece the socket read returns (``iter_raw()`` without a chunk size: at most
  httpcore's 64 KiB read, a few packets at low rates), not per re-chunked block;
- upload: the bytes the server has received, from its acknowledgements, read from the
  connection's ``TCP_INFO`` (Linux: bytes acknowledged plus segments acknowledged selectively
  beyond a loss) when the counters are polled. Counting what the socket accepted would count
  the send buffer, which the kernel refills in bursts of a third of its size: at a few Mbit/s
  a stream's count then stands still for seconds. Where ``TCP_INFO`` is not available the
  count falls back to the blocks the socket accepted. (Through TLS the count includes the
  records' few bytes of framing.) When the test ends, uploads are reset rather than drained.

The upload still hands the socket 256 KiB blocks and the download reads what the socket has,
so the 1 Gbit/s path costs no more than before. The calling thread samples all counters every
``interval_s``: those per-interval aggregates are the raw samples. The first ``warmup_s``
seconds are discarded (TCP slow start) and the headline figure is the bytes moved after the
warm-up divided by the time after it, which is what iperf3 reports with ``-O``; p50/p90 of the
post-warm-up samples sit next to it (the reduction every engine shares:
``_summary.summarize``, ``core.goodput``).
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from typing import Any, Iterator, Optional

import httpx

from giga_netcheck.core.models import BandwidthMeasurement, Target
from giga_netcheck.measure.engines._summary import summarize
from giga_netcheck.measure.engines.base import ThroughputEngine, ThroughputPlan, run_streams, stream_errors
from giga_netcheck.measure.proxy_discovery import without_credentials

UPLOAD_BLOCK = 256 * 1024
"""Bytes handed to the socket per write of an upload (the counts do not depend on it)."""
_UPLOAD_BLOCK = memoryview(bytes(range(256)) * (UPLOAD_BLOCK // 256))

_TCP_INFO: Optional[int] = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
# Linux's ``struct tcp_info``, native order: tcpi_snd_mss and tcpi_sacked (u32, segments the
# peer acknowledged selectively, beyond a hole), tcpi_bytes_acked (u64, since Linux 4.1).
_SND_MSS, _SACKED, _BYTES_ACKED = struct.Struct("=I"), struct.Struct("=I"), struct.Struct("=Q")
_OFF_SND_MSS, _OFF_SACKED, _OFF_BYTES_ACKED = 16, 28, 120


def bytes_delivered(sock: Optional[socket.socket]) -> Optional[int]:
    """Payload bytes the peer has received on ``sock``, from its acknowledgements (Linux), or
    None where unknown: the bytes acknowledged in order, plus the segments acknowledged
    selectively beyond a lost one (else a loss holds the count still until the retransmission
    fills the hole, then it jumps: a 0 and a double in the samples at low rates)."""
    if sock is None or _TCP_INFO is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 256)
    except (OSError, ValueError):  # closed meanwhile, or not a TCP socket
        return None
    if len(raw) < _OFF_BYTES_ACKED + _BYTES_ACKED.size:
        return None
    acked = _BYTES_ACKED.unpack_from(raw, _OFF_BYTES_ACKED)[0]
    sacked = _SACKED.unpack_from(raw, _OFF_SACKED)[0] * _SND_MSS.unpack_from(raw, _OFF_SND_MSS)[0]
    # bytes_acked counts the SYN's one sequence number once the handshake is done.
    return max(0, acked - 1) + sacked


class _Stream(threading.Thread):
    """One TCP connection moving bytes until told to stop."""

    def __init__(self, base_url: str, plan: ThroughputPlan, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="gnc-stream")
        self.base_url = base_url
        self.plan = plan
        self.stop = stop
        self.error: Optional[BaseException] = None
        self._received = 0
        # Upload: bytes of finished connections, and the current connection's socket with
        # what it had delivered when last read (or, without TCP_INFO, what it accepted).
        self._lock = threading.Lock()
        self._done = 0
        self._sock: Optional[socket.socket] = None
        self._delivered: Optional[int] = None
        self._accepted = 0

    @property
    def bytes(self) -> int:
        """Bytes moved so far: received (download) or received by the server (upload)."""
        if self.plan.direction == "download":
            return self._received
        with self._lock:
            return self._done + self._current()

    def _current(self) -> int:
        """The current upload connection's count (caller holds the lock)."""
        now = bytes_delivered(self._sock)
        if now is not None:  # never backwards (a selectively acknowledged segment may be short)
            self._delivered = now if self._delivered is None else max(self._delivered, now)
        # A socket that stopped answering keeps its last reading; none ever: what it accepted.
        return self._accepted if self._delivered is None else self._delivered

    def _attach(self, sock: Optional[socket.socket]) -> None:
        """A new upload connection: what the previous one moved is final."""
        with self._lock:
            self._done += self._current()
            self._sock, self._delivered, self._accepted = sock, None, 0

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        # httpcore's documented ``trace`` extension: the socket of each new connection (and
        # the TLS socket that replaces it on the same connection for an https server).
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = getattr(stream, "get_extra_info", lambda _: None)("socket")
        if not isinstance(sock, socket.socket):
            sock = None
        if event == "connection.connect_tcp.complete":
            self._attach(sock)
        elif sock is not None:
            with self._lock:
                self._sock = sock

    def abort(self) -> None:
        """End an upload now, its last reading taken: the connection is reset, so what the
        kernel still holds for it is dropped rather than sent at the link's rate (at 1 Mbit/s
        a full send buffer takes seconds, which the next test would share the link with)."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return
            self._current()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked write; the close then resets
        except OSError:
            pass

    def run(self) -> None:
        timeout = httpx.Timeout(10.0, connect=5.0)
        # Certificates are loaded only when a connection uses TLS: loading them takes a
        # tenth of a second or more per stream, inside the warm-up of every test.
        tls = any(u.lower().startswith("https:") for u in (self.base_url, self.plan.proxy or ""))
        try:
            with httpx.Client(timeout=timeout, trust_env=False, proxy=self.plan.proxy, verify=tls) as client:
                try:
                    while not self.stop.is_set():
                        if self.plan.direction == "download":
                            self._download(client)
                        else:
                            self._upload(client)
                finally:
                    self._attach(None)  # the last reading, before the connection closes
        except BaseException as exc:  # recorded, the measurement goes on with other streams
            if not self.stop.is_set():
                self.error = exc

    def _download(self, client: httpx.Client) -> None:
        url = f"{self.base_url}/download?bytes={self.plan.request_bytes}"
        with client.stream("GET", url) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_raw():  # each socket read as it comes, not re-chunked
                self._received += len(chunk)
                if self.stop.is_set():
                    break

    def _upload(self, client: httpx.Client) -> None:
        def body() -> Iterator[bytes]:
            sent = 0
            while sent < self.plan.request_bytes and not self.stop.is_set():
                yield _UPLOAD_BLOCK
                sent += len(_UPLOAD_BLOCK)
                self._accepted += len(_UPLOAD_BLOCK)  # the socket took the block

        resp = client.post(f"{self.base_url}/upload", content=body(), extensions={"trace": self._trace})
        resp.raise_for_status()


def _abort_when_set(stop: threading.Event, streams: list[_Stream]) -> None:
    stop.wait()
    for s in streams:
        s.abort()


class HttpEngine(ThroughputEngine):
    """Parallel HTTP streams against ``/download`` and ``/upload`` of a measurement server."""

    name = "http"
    supports_proxy = True

    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        assert target.url, "the http engine needs a measurement server URL"
        local_stop = threading.Event()
        streams = [_Stream(target.url.rstrip("/"), plan, local_stop) for _ in range(plan.streams)]
        if plan.direction != "download":
            threading.Thread(target=_abort_when_set, args=(local_stop, streams), daemon=True, name="gnc-abort").start()
        _, points = run_streams(streams, plan.duration_s, plan.interval_s, stop, local_stop)
        err_text, err_kind = stream_errors([s.error for s in streams if s.error is not None], len(streams))
        return summarize(
            target,
            plan,
            self.name,
            points,
            per_stream_bytes=[s.bytes for s in streams],
            error=err_text,
            error_kind=err_kind,
            proxy=without_credentials(plan.proxy),  # the password connects, it is never recorded
        )
