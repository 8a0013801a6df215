"""A small DNS server for tests and the lab, on dnspython.

It plays a school's or a board's resolver with settable faults:

- ``records`` maps a name to an address; the name *and every name under it* get that answer,
  so the random cache-miss labels a DNS probe sends (``x7f3q.www.example``) resolve too.
  Unknown names get NXDOMAIN. An IPv4 record asked for AAAA (or the reverse) gets an empty
  NOERROR answer, as a real resolver would.
- ``delay_ms`` delays every answer; ``miss_delay_ms`` is added the first time a name is asked,
  which is how a cold cache looks from the client.
- ``timeout_rate`` drops that share of queries (the client times out); ``servfail_rate`` answers
  that share with SERVFAIL. Draws come from one seeded ``random.Random`` so a test can repeat.

Use it in-process as a context manager (a daemon thread serves UDP and TCP on the same port)::

    with DnsServer(records={"www.lab.example": "198.18.3.2"}, delay_ms=20) as dns:
        ...  # query 127.0.0.1:dns.port

or as a process (the lab runs it this way inside its namespaces)::

    python -m tests.lab.dnsserver --host 0.0.0.0 --port 53 --record lab.example=198.18.3.2

The process prints ``listening on HOST:PORT`` once both sockets are bound and stops cleanly on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from types import TracebackType
from typing import Optional

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer", "main"]

# A cap on remembered names for miss_delay_ms: probes send a fresh random label per query, and
# a long-running lab must not grow without bound. Forgetting everything at the cap only means a
# few names look cold twice.
_MAX_SEEN_NAMES = 100_000
# Bounds on TCP clients: each gets a thread, and a test must not be able to make hundreds.
_MAX_TCP_CLIENTS = 32
_TCP_IDLE_S = 5.0


class DnsServer:
    """A DNS server with settable delay, cold-cache delay, timeouts and SERVFAILs.

    Args:
        host: address to bind (UDP and, when the port is free for it, TCP).
        port: port to bind; 0 picks a free one (read it from :attr:`port` after :meth:`start`).
        records: name -> IPv4 or IPv6 address; also answers every name under ``name``.
        delay_ms: added to every answer (NXDOMAIN and SERVFAIL included).
        miss_delay_ms: added the first time a name is asked.
        timeout_rate: share of queries dropped without an answer, 0..1.
        servfail_rate: share of (not dropped) queries answered SERVFAIL, 0..1.
        seed: seed for the random draws; None draws a fresh seed.
        ttl: TTL of the answers, in seconds.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        records: Optional[dict[str, str]] = None,
        delay_ms: float = 0.0,
        miss_delay_ms: float = 0.0,
        timeout_rate: float = 0.0,
        servfail_rate: float = 0.0,
        seed: Optional[int] = None,
        ttl: int = 300,
    ) -> None:
        for label, rate in (("timeout_rate", timeout_rate), ("servfail_rate", servfail_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{label} must be within 0..1, got {rate}")
        for label, ms in (("delay_ms", delay_ms), ("miss_delay_ms", miss_delay_ms)):
            if ms < 0:
                raise ValueError(f"{label} must be >= 0, got {ms}")
        self.host = host
        self.port = port
        self.delay_ms = float(delay_ms)
        self.miss_delay_ms = float(miss_delay_ms)
        self.timeout_rate = float(timeout_rate)
        self.servfail_rate = float(servfail_rate)
        self.ttl = ttl
        self._records: dict[str, str] = {}
        self._aaaa: dict[str, str] = {}
        """IPv6 addresses of names that also have an A record (dual stack)."""
        for name, addr in (records or {}).items():
            self.add_record(name, addr)
        self._rng = random.Random(seed)
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.queries = 0
        """Queries received, dropped ones included."""
        self.dropped = 0
        """Queries dropped on purpose (``timeout_rate``)."""
        self.servfails = 0
        """Queries answered SERVFAIL on purpose (``servfail_rate``)."""
        self.tcp = False
        """True when TCP is served too (the port was free for TCP)."""
        self._udp: Optional[socket.socket] = None
        self._tcp: Optional[socket.socket] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._tcp_clients = threading.BoundedSemaphore(_MAX_TCP_CLIENTS)

    # -- records -------------------------------------------------------------------------

    def add_record(self, name: str, addr: str) -> None:
        """Answer ``name`` and every name under it with ``addr`` (IPv4 -> A, IPv6 -> AAAA).

        A name may have one address of each family (a dual-stack host): the first record of a
        name is what :meth:`lookup` returns; an IPv6 address also answers AAAA beside an A."""
        ip = ipaddress.ip_address(addr)  # refuse a typo now, not as a confusing answer later
        key = _norm(name)
        if ip.version == 6:
            self._aaaa[key] = addr
            if key in self._records and ":" not in self._records[key]:
                return  # dual stack: A from _records, AAAA from _aaaa
        self._records[key] = addr

    def lookup(self, qname: str) -> Optional[str]:
        """The address for ``qname`` (exact or under a known name), or None."""
        return self._walk(self._records, qname)

    def lookup6(self, qname: str) -> Optional[str]:
        """The IPv6 address for ``qname`` (exact or under a known name), or None."""
        return self._walk(self._aaaa, qname)

    @staticmethod
    def _walk(records: dict[str, str], qname: str) -> Optional[str]:
        name = _norm(qname)
        while True:
            if name in records:
                return records[name]
            if "." not in name:
                return None
            name = name.split(".", 1)[1]

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> DnsServer:
        """Bind the sockets and serve in a daemon thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("DnsServer already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._udp = socket.socket(family, socket.SOCK_DGRAM)
        self._udp.bind((self.host, self.port))
        self.port = self._udp.getsockname()[1]
        self._udp.setblocking(False)
        # TCP on the same number when it is free; UDP is what probes use, so a taken TCP port
        # is not an error.
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((self.host, self.port))
            tcp.listen(64)
            tcp.setblocking(False)
            self._tcp, self.tcp = tcp, True
        except OSError:
            tcp.close()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=f"dns:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets; safe to call twice."""
        if self._thread is None:
            return
        self._stopping.set()
        assert self._wake_w is not None
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._thread = None
        for sock in (self._udp, self._tcp, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = self._wake_r = self._wake_w = None

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------

    def _serve(self) -> None:
        # select() rather than epoll: epoll rounds its timeout up to whole milliseconds, and the
        # delays here must be accurate to well under a millisecond.
        sel = selectors.SelectSelector()
        assert self._udp is not None and self._wake_r is not None
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self._tcp is not None:
            sel.register(self._tcp, selectors.EVENT_READ, "tcp")
        # Delayed UDP answers: (due, seq, wire, addr). seq keeps equal due times in order.
        pending: list[tuple[float, int, bytes, object]] = []
        seq = 0
        while not self._stopping.is_set():
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, _, wire, addr = heapq.heappop(pending)
                try:
                    self._udp.sendto(wire, addr)
                except OSError:
                    pass  # the client is gone; nothing to do
            timeout = _wait_s(pending[0][0] - time.monotonic()) if pending else None
            if timeout is not None and timeout < 0:
                continue  # slept the last stretch; answer now
            for key, _ in sel.select(timeout):
                if key.data == "udp":
                    for _ in range(64):  # drain a burst, bounded so answers are not starved
                        try:
                            data, addr = self._udp.recvfrom(65535)
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError:
                            break
                        # The delay counts from arrival, not from after our own parsing.
                        arrived = time.monotonic()
                        answer = self._answer(data, tcp=False)
                        if answer is not None:
                            wire, delay_s = answer
                            seq += 1
                            heapq.heappush(pending, (arrived + delay_s, seq, wire, addr))
                elif key.data == "tcp":
                    self._accept()
                else:
                    try:
                        self._wake_r.recv(64)
                    except OSError:
                        pass
        sel.close()

    def _accept(self) -> None:
        assert self._tcp is not None
        try:
            conn, _ = self._tcp.accept()
        except OSError:
            return
        if not self._tcp_clients.acquire(blocking=False):
            conn.close()
            return
        threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()

    def _serve_tcp(self, conn: socket.socket) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(_TCP_IDLE_S)
            while not self._stopping.is_set():
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                data = _recv_exact(conn, struct.unpack("!H", head)[0])
                if data is None:
                    return
                answer = self._answer(data, tcp=True)
                if answer is None:
                    return  # a dropped query on TCP looks like a silent server: close
                wire, delay_s = answer
                if delay_s > 0:
                    time.sleep(delay_s)
                conn.sendall(struct.pack("!H", len(wire)) + wire)
        except OSError:
            pass
        finally:
            conn.close()
            self._tcp_clients.release()

    def _answer(self, data: bytes, tcp: bool) -> Optional[tuple[bytes, float]]:
        """Wire answer and its delay in seconds, or None to drop the query."""
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None  # not DNS: a real server ignores it too
        # A UDP client takes what its EDNS payload size says, else the classic 512 bytes.
        max_size = 65535 if tcp else (max(512, query.payload) if query.edns >= 0 else 512)
        with self._lock:
            self.queries += 1
            if self._rng.random() < self.timeout_rate:
                self.dropped += 1
                return None
            servfail = self._rng.random() < self.servfail_rate
            if servfail:
                self.servfails += 1
            delay_ms = self.delay_ms
            if query.question:
                qname = _norm(query.question[0].name.to_text())
                if qname not in self._seen:
                    if len(self._seen) >= _MAX_SEEN_NAMES:
                        self._seen.clear()
                    self._seen.add(qname)
                    delay_ms += self.miss_delay_ms
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA  # it plays a recursive resolver
        if servfail or not query.question:
            response.set_rcode(dns.rcode.SERVFAIL if servfail else dns.rcode.FORMERR)
        else:
            self._fill(response, query)
        try:
            wire = response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        return wire, delay_ms / 1000.0

    def _fill(self, response: dns.message.Message, query: dns.message.Message) -> None:
        question = query.question[0]
        addr = self.lookup(question.name.to_text())
        if addr is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return
        response.flags |= dns.flags.AA
        rdtype = dns.rdatatype.AAAA if ":" in addr else dns.rdatatype.A
        if question.rdtype in (rdtype, dns.rdatatype.ANY):
            response.answer.append(dns.rrset.from_text(question.name, self.ttl, dns.rdataclass.IN, rdtype, addr))
        addr6 = self.lookup6(question.name.to_text())
        if rdtype == dns.rdatatype.A and addr6 and question.rdtype in (dns.rdatatype.AAAA, dns.rdatatype.ANY):
            response.answer.append(dns.rrset.from_text(question.name, self.ttl, dns.rdataclass.IN, dns.rdatatype.AAAA, addr6))
        # Any other type: NOERROR with no answer (NODATA), like a real resolver.


# select() wakes ~0.2 ms late on this VM, time.sleep() ~0.05 ms: wait with select() until
# shortly before the answer is due, then sleep the last stretch (queries arriving meanwhile
# wait in the socket buffer for well under a millisecond).
_SLEEP_BELOW_S = 0.001
_SELECT_EARLY_S = 0.0004


def _wait_s(remaining: float) -> float:
    """How long to select() for; negative after sleeping out a short remainder itself."""
    if remaining >= _SLEEP_BELOW_S:
        return remaining - _SELECT_EARLY_S
    if remaining > 0:
        time.sleep(remaining)
    return -1.0


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _recv_exact(conn: socket.socket, n: int) -> Optional[bytes]:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _parse_record(text: str) -> tuple[str, str]:
    name, sep, addr = text.partition("=")
    if not sep or not name or not addr:
        raise argparse.ArgumentTypeError(f"expected NAME=ADDR, got {text!r}")
    try:
        ipaddress.ip_address(addr)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return name, addr


def main(argv: Optional[list[str]] = None) -> int:
    """Run the server as a process until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab.dnsserver", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5353)
    parser.add_argument("--record", action="append", type=_parse_record, default=[], metavar="NAME=ADDR")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--miss-delay-ms", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--servfail-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        server = DnsServer(
            host=args.host,
            port=args.port,
            records={name: addr for name, addr in args.record if ":" not in addr},
            delay_ms=args.delay_ms,
            miss_delay_ms=args.miss_delay_ms,
            timeout_rate=args.timeout_rate,
            servfail_rate=args.servfail_rate,
            seed=args.seed,
        )
        for name, addr in args.record:  # AAAA beside the A of a dual-stack name
            if ":" in addr:
                server.add_record(name, addr)
        server.start()
    except (OSError, ValueError) as exc:
        print(f"dnsserver: {exc}", file=sys.stderr)
        return 2
    print(f"listening on {args.host}:{server.port}", flush=True)
    try:
        stop.wait()  # the signal handler sets it; a blocking wait is interrupted by signals
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
