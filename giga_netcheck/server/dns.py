"""A loopback DNS responder for ``run --demo``: the demo's resolver, so the demo measures DNS too.

It answers UDP queries on one address (127.0.0.1 and an ephemeral port by default) for any name:
``A`` with 127.0.0.1, ``AAAA`` with ::1, other data types NOERROR with no answer, meta types
(ANY, AXFR, IXFR, ...), classes other than IN and opcodes other than QUERY NOTIMP. It is not a
resolver of the network and never asks anyone else.

Every datagram is hostile input: only a well-formed query is answered, i.e. at most
``MAX_QUERY_BYTES``, not a response, exactly one question, no answer or authority records and at
most one additional record, the EDNS OPT (so no TSIG); anything else, including what dnspython
cannot parse, is dropped and counted. A reply carries the question and at most one record, so it
is never much larger than the query (no amplification) and never a query (two responders cannot
bounce a datagram for ever). One daemon thread, ``start``/``stop`` or ``with``, like the demo's
measurement server (app.ServerThread).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Optional

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

log = logging.getLogger("giga_netcheck.server.dns")

MAX_QUERY_BYTES = 512
"""Largest datagram answered: one question (a name is at most 255 bytes) and an OPT record fit."""

_HEADER = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
_QR = 0x8000
_META_TYPES = frozenset(
    {
        dns.rdatatype.ANY,
        dns.rdatatype.AXFR,
        dns.rdatatype.IXFR,
        dns.rdatatype.MAILA,
        dns.rdatatype.MAILB,
        dns.rdatatype.OPT,
        dns.rdatatype.TSIG,
        dns.rdatatype.TKEY,
    }
)


def _well_formed_header(wire: bytes) -> bool:
    """Cheap checks before any parsing: size, a query, one question, nothing but an OPT after it."""
    if not _HEADER.size <= len(wire) <= MAX_QUERY_BYTES:
        return False
    _id, flags, qd, an, ns, ar = _HEADER.unpack_from(wire)
    return not flags & _QR and qd == 1 and an == 0 and ns == 0 and ar <= 1


def answer(wire: bytes, ttl: int = 60, v4: str = "127.0.0.1", v6: str = "::1") -> Optional[bytes]:
    """The reply to one datagram, or None to drop it (not a well-formed query). Pure."""
    if not _well_formed_header(wire):
        return None
    try:
        query = dns.message.from_wire(wire)  # ignore_trailing=False: trailing bytes are malformed
    except (dns.exception.DNSException, ValueError, UnicodeError):
        return None
    arcount = _HEADER.unpack_from(wire)[5]
    if arcount and query.edns < 0:  # the one additional record is not an OPT (e.g. TSIG)
        return None
    reply = dns.message.make_response(query, our_payload=MAX_QUERY_BYTES)
    reply.flags |= dns.flags.AA
    q = query.question[0]
    if query.opcode() != dns.opcode.QUERY or q.rdclass != dns.rdataclass.IN or q.rdtype in _META_TYPES:
        reply.set_rcode(dns.rcode.NOTIMP)
    elif q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        address = v4 if q.rdtype == dns.rdatatype.A else v6
        reply.answer.append(dns.rrset.from_text(q.name, ttl, dns.rdataclass.IN, q.rdtype, address))
    try:
        return reply.to_wire(max_size=MAX_QUERY_BYTES + 64)
    except dns.exception.DNSException:  # cannot happen for one question and one record; drop anyway
        return None


class DnsResponder:
    """The demo's resolver in a daemon thread: ``with DnsResponder() as r:`` then ``r.address``
    (``127.0.0.1:<port>``, what a site file's ``dns.resolvers`` takes)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, ttl: int = 60) -> None:
        self.host = host
        self.ttl = ttl
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._requested_port = port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="gnc-dns", daemon=True)
        self.answered = 0
        self.dropped = 0

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _serve(self) -> None:
        sock = self._sock
        try:
            while not self._stop.is_set():
                try:
                    wire, peer = sock.recvfrom(MAX_QUERY_BYTES + 1)  # one byte more: oversized is seen as such
                except TimeoutError:
                    continue
                except OSError as exc:  # e.g. Windows' WSAECONNRESET after an ICMP unreachable
                    if self._stop.is_set():
                        break
                    log.debug("dns responder: receive: %s", exc)
                    continue
                if self._stop.is_set():
                    break
                try:
                    reply = answer(wire, self.ttl)
                except Exception as exc:  # hostile input never ends the responder
                    log.debug("dns responder: dropped a datagram: %s", exc)
                    reply = None
                if reply is None:
                    self.dropped += 1
                    continue
                self.answered += 1  # counted before it leaves: whoever got the reply sees the count
                try:
                    sock.sendto(reply, peer)
                except OSError as exc:
                    self.answered -= 1
                    log.debug("dns responder: send to %s: %s", peer, exc)
        finally:
            sock.close()

    def start(self) -> DnsResponder:
        try:
            self._sock.bind((self.host, self._requested_port))
        except OSError:
            self._sock.close()
            raise
        self._sock.settimeout(0.5)  # the stop flag is also seen without the wake-up datagram
        self._thread.start()
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._sock.close()  # never started, or already stopped (closing twice is harmless)
            return
        where = (self.host, self.port)
        self._stop.set()
        try:  # wake the receive now rather than at its timeout
            with socket.socket(self._sock.family, socket.SOCK_DGRAM) as s:
                s.sendto(b"", where)
        except OSError:
            pass
        self._thread.join(5)

    def __enter__(self) -> DnsResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
