"""The demo's loopback DNS responder (server/dns.py): answers, hostile input, stop; and the board
dashboard's colours for the run statuses ``incomplete`` and ``no-connectivity``.

Loopback only, a bounded number of datagrams; every wait is a socket timeout that a healthy
responder never reaches (no timing asserts)."""

from __future__ import annotations

import random
import socket
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import pytest

from giga_netcheck.config.schema import resolver_problem
from giga_netcheck.core.board_summary import Inputs, Summary, Table
from giga_netcheck.core.i18n import Messages
from giga_netcheck.render import dashboard
from giga_netcheck.server.dns import MAX_QUERY_BYTES, DnsResponder, answer

TIMEOUT_S = 5.0  # only reached if the responder is broken


@pytest.fixture
def responder():
    with DnsResponder() as r:
        yield r


def ask(r: DnsResponder, name: str, rdtype: str = "A", **kw) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype, **kw), "127.0.0.1", port=r.port, timeout=TIMEOUT_S)


def addresses(reply: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in reply.answer for rd in rrset]


def test_answers_a_and_aaaa_for_any_name_and_is_a_valid_resolver_value(responder):
    assert responder.address == f"127.0.0.1:{responder.port}"
    assert resolver_problem(responder.address) is None  # what a site file's dns.resolvers accepts
    for name in ("www.mext.go.jp", "gnc-3f9a1c.www.mext.go.jp", "x"):
        a = ask(responder, name)
        assert a.rcode() == dns.rcode.NOERROR and addresses(a) == ["127.0.0.1"]
        assert a.flags & dns.flags.AA and str(a.question[0].name) == f"{name}."
        assert addresses(ask(responder, name, "AAAA")) == ["::1"]
    mx = ask(responder, "www.mext.go.jp", "MX")
    assert mx.rcode() == dns.rcode.NOERROR and not mx.answer
    assert ask(responder, "www.mext.go.jp", "ANY").rcode() == dns.rcode.NOTIMP
    edns = ask(responder, "www.mext.go.jp", use_edns=0)
    assert edns.edns == 0 and addresses(edns) == ["127.0.0.1"]
    notify = dns.message.make_query("www.mext.go.jp", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = dns.query.udp(notify, "127.0.0.1", port=responder.port, timeout=TIMEOUT_S)
    assert reply.rcode() == dns.rcode.NOTIMP and not reply.answer
    assert responder.answered >= 10


def _questions(n: int) -> bytes:
    """A query header claiming ``n`` questions, followed by ``n`` questions for ``a.``."""
    return struct.pack("!HHHHHH", 0x1234, 0x0100, n, 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01" * n


def _hostile(rng: random.Random) -> list[bytes]:
    good = dns.message.make_query("www.mext.go.jp", "A").to_wire()
    signed = dns.message.make_query("www.mext.go.jp", "A")
    signed.use_tsig(dns.tsigkeyring.from_text({"k.": "c2VjcmV0"}), keyname="k.")
    response = bytearray(good)
    response[2] |= 0x80  # QR: a response must never be answered (two responders would bounce it)
    out = [
        b"",
        b"\x00",
        good[:5],  # truncated header
        good[:12],  # a header, the question missing
        good[:-1],  # question cut short
        good + b"\x00\x00",  # trailing junk
        bytes(response),
        _questions(1000),  # 1000 questions: 7 kB, over the size limit
        _questions(2),  # small, but more than one question
        struct.pack("!HHHHHH", 1, 0x0100, 1000, 0, 0, 0) + good[12:],  # claims 1000, holds one
        good[:6] + b"\x00\x01" + good[8:],  # claims an answer record
        signed.to_wire(),  # an additional record that is not OPT (TSIG)
        good + b"\x00" * MAX_QUERY_BYTES,  # oversized
    ]
    out += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))) for _ in range(120)]
    return out


def test_survives_garbage_and_keeps_answering(responder):
    rng = random.Random(20240915)
    hostile = _hostile(rng)
    good = dns.message.make_query("www.mext.go.jp", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT_S)
        for i in range(0, len(hostile), 10):  # paced: a valid query after every 10, so no buffer overflows
            for wire in hostile[i : i + 10]:
                s.sendto(wire, ("127.0.0.1", responder.port))
            good.id = (good.id + 1) & 0xFFFF
            s.sendto(good.to_wire(), ("127.0.0.1", responder.port))
            # served in order on one thread: a reply to any garbage would arrive first
            reply = dns.message.from_wire(s.recvfrom(65535)[0])
            assert reply.id == good.id and addresses(reply) == ["127.0.0.1"], hostile[i : i + 10]
    assert responder.dropped == len(hostile)
    assert addresses(ask(responder, "after.garbage")) == ["127.0.0.1"]


def test_never_raises_and_replies_stay_small_on_mutated_queries():
    """The pure answer() on 5 000 mutated queries: None or a reply at most one A/AAAA record
    (28 bytes) larger than the datagram, never an exception the thread would have to catch."""
    rng = random.Random(7)
    bases = [
        dns.message.make_query(n, t, use_edns=e).to_wire()
        for n in ("a.b", "www.mext.go.jp")
        for t in ("A", "AAAA", "TXT")
        for e in (None, 0)
    ]
    answered = 0
    for _ in range(5000):
        w = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.6 and w:
                w[rng.randrange(len(w))] = rng.randrange(256)
            elif op < 0.8:
                del w[rng.randrange(len(w) + 1) :]
            else:
                w += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        reply = answer(bytes(w))
        if reply is not None:
            answered += 1
            assert len(reply) <= len(w) + 28 and reply[2] & 0x80  # a response (QR set), never a query
    assert answered  # some mutations stay well-formed queries and are answered


def test_stops_cleanly_and_frees_the_port():
    r = DnsResponder().start()
    port = r.port
    assert addresses(ask(r, "a.b")) == ["127.0.0.1"]
    r.stop()
    assert not r._thread.is_alive()
    r.stop()  # twice is harmless
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # the responder's socket is closed
    DnsResponder().stop()  # never started: nothing to stop, no error


def test_dashboard_colours_incomplete_as_warn_and_no_connectivity_as_error():
    tables = {
        "board_summary": Table(
            ["board", "schools", "runs", "schools_compliant", "schools_assessed", "share_compliant", "national_share_2024", "failed_share"],
            [("b", 2, 2, 0, 2, 0.0, 0.5, 0.0)],
        ),
        "board_ranking": Table(
            ["board", "worst_rank", "school_name", "school_id", "mext_compliant", "latest_status", "top_cause"],
            [("b", 1, "One", "s1", 0, "incomplete", None), ("b", 2, "Two", "s2", 0, "no-connectivity", None)],
        ),
        "board_causes": Table(["board", "cause_id", "share_of_runs", "schools"], []),
        "board_weekly": Table(["board", "week", "runs", "schools", "lesson_down_mbps_p50", "down_mbps_p50"], []),
        "context_breakdown": Table(["board", "field", "value", "schools", "schools_compliant", "schools_assessed"], []),
    }
    page = dashboard.render(Summary(tables, Inputs(), generated_at="2026-01-01"), Messages("en"))
    assert 'class="badge status-warn">' + Messages("en")("status_word.incomplete") in page
    assert 'class="badge status-error">' + Messages("en")("status_word.no-connectivity") in page
    assert ".badge.status-warn{" in page and ".badge.status-error{" in page  # the classes have colours
