"""The lab's DNS server on loopback (no root needed, not marked ``lab``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.lab.dnsserver import DnsServer
from tests.lab.stats import binomial_bounds

REPO = Path(__file__).resolve().parents[2]
RECORDS = {"www.lab.example": "198.18.3.2", "v6.lab.example": "2001:db8::5"}


def ask(port: int, name: str, rdtype: str = "A", timeout: float = 2.0, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, "127.0.0.1", port=port, timeout=timeout)


def timed(port: int, name: str) -> float:
    start = time.perf_counter()
    ask(port, name)
    return (time.perf_counter() - start) * 1000.0


def addresses(response: dns.message.Message) -> list[str]:
    return [rr.to_text() for rrset in response.answer for rr in rrset]


def test_answers_name_and_names_under_it() -> None:
    with DnsServer(records=RECORDS) as server:
        assert addresses(ask(server.port, "www.lab.example")) == ["198.18.3.2"]
        # A random cache-miss label under a known name gets the same answer.
        assert addresses(ask(server.port, "q8x2k.www.lab.example.")) == ["198.18.3.2"]
        assert addresses(ask(server.port, "WWW.Lab.Example")) == ["198.18.3.2"]
        assert addresses(ask(server.port, "v6.lab.example", "AAAA")) == ["2001:db8::5"]
        assert server.queries == 4


def test_unknown_name_is_nxdomain_and_wrong_type_is_nodata() -> None:
    with DnsServer(records=RECORDS) as server:
        assert ask(server.port, "nowhere.example").rcode() == dns.rcode.NXDOMAIN
        # "lab.example" itself is a parent of a record, not a record.
        assert ask(server.port, "lab.example").rcode() == dns.rcode.NXDOMAIN
        nodata = ask(server.port, "www.lab.example", "AAAA")
        assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []


def test_tcp_answers_too() -> None:
    with DnsServer(records=RECORDS) as server:
        assert server.tcp
        assert addresses(ask(server.port, "www.lab.example", tcp=True)) == ["198.18.3.2"]


def test_delay_applies_to_every_answer() -> None:
    with DnsServer(records=RECORDS, delay_ms=40) as server:
        samples = sorted(timed(server.port, f"n{i}.www.lab.example") for i in range(5))
    median = samples[2]
    # Lower bound is exact (the server never answers early); the upper one allows for a busy
    # machine's scheduling.
    assert 40.0 <= median < 55.0, samples


def test_miss_delay_only_on_first_ask() -> None:
    with DnsServer(records=RECORDS, miss_delay_ms=60) as server:
        cold = timed(server.port, "www.lab.example")
        warm = min(timed(server.port, "www.lab.example") for _ in range(3))
        other_cold = timed(server.port, "abc.www.lab.example")
    assert cold >= 60.0 and other_cold >= 60.0
    assert warm < 30.0


def test_timeout_and_servfail_all_or_nothing() -> None:
    with DnsServer(records=RECORDS, timeout_rate=1.0) as server:
        with pytest.raises(dns.exception.Timeout):
            ask(server.port, "www.lab.example", timeout=0.3)
        assert server.queries == 1 and server.dropped == 1
    with DnsServer(records=RECORDS, servfail_rate=1.0) as server:
        assert ask(server.port, "www.lab.example").rcode() == dns.rcode.SERVFAIL


def test_failure_rates_are_binomial() -> None:
    n, timeout_rate, servfail_rate = 200, 0.2, 0.3
    timeouts = servfails = 0
    with DnsServer(records=RECORDS, timeout_rate=timeout_rate, servfail_rate=servfail_rate, seed=7) as server:
        for i in range(n):
            try:
                if ask(server.port, f"r{i}.www.lab.example", timeout=0.05).rcode() == dns.rcode.SERVFAIL:
                    servfails += 1
            except dns.exception.Timeout:
                timeouts += 1
        assert server.queries == n
    lo, hi = binomial_bounds(n, timeout_rate)
    assert lo <= timeouts <= hi
    # SERVFAIL is drawn only for queries that were not dropped.
    lo, hi = binomial_bounds(n, (1 - timeout_rate) * servfail_rate)
    assert lo <= servfails <= hi


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        DnsServer(timeout_rate=1.5)
    with pytest.raises(ValueError):
        DnsServer(delay_ms=-1)
    with pytest.raises(ValueError):
        DnsServer(records={"x.example": "not-an-address"})


def test_runs_as_a_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.lab.dnsserver", "--port", "0", "--record", "www.lab.example=198.18.3.2", "--delay-ms", "5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        port = int(line.rsplit(":", 1)[1])
        assert addresses(ask(port, "www.lab.example")) == ["198.18.3.2"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
