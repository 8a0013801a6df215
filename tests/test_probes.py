"""Probes against real servers on loopback (no traffic leaves the machine)."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from giga_netcheck.config.site import ProbeSettings, Site
from giga_netcheck.core.errors import NotMeasurementServer, PermissionFailure, ProbeError
from giga_netcheck.core.models import Classroom, School, Target
from giga_netcheck.measure.engines import ThroughputPlan
from giga_netcheck.measure.engines.http import HttpEngine
from giga_netcheck.measure.probes import dns as dnsprobe, rtt
from giga_netcheck.measure.probes.base import ProbeContext
from giga_netcheck.measure.probes.latency import measure_series
from giga_netcheck.measure.runner import identify
from tests.fakes import FakeServer
from tests.lab.dnsserver import DnsServer

root = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP sockets need root (CI runs as root)")


def _ctx(targets, servers=None, resolvers=None, **settings) -> ProbeContext:
    site = Site(School(), "default", (Classroom("c", 1, "default"),), None, None, (), (), ("www.lab.example",))
    return ProbeContext(
        site=site, settings=ProbeSettings(**settings), targets=targets, servers=servers or {}, host={}, resolvers=resolvers or {}
    )


def test_engine_download_and_upload_move_bytes(server):
    t = Target("internet", "internet", "127.0.0.1", server.url)
    for direction in ("download", "upload"):
        m = HttpEngine().measure(t, ThroughputPlan(direction, 2, 1.2, 0.4), threading.Event())
        assert m.error is None
        assert m.goodput_mbps and m.goodput_mbps > 50  # loopback moves far more than 50 Mbit/s
        assert m.bytes_total > 0
        assert len(m.samples_mbps) >= 8  # 100 ms samples kept raw
        assert len(m.per_stream_mbps) == 2


def test_engine_records_a_reset_mid_transfer():
    with FakeServer("reset") as fake:
        t = Target("internet", "internet", "127.0.0.1", fake.url)
        m = HttpEngine().measure(t, ThroughputPlan("download", 1, 1.0, 0.2), threading.Event())
    assert m.error is not None
    assert m.error_kind in ("reset", "protocol")


def test_engine_stops_when_asked(server):
    stop = threading.Event()
    t = Target("internet", "internet", "127.0.0.1", server.url)
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    m = HttpEngine().measure(t, ThroughputPlan("download", 2, 30.0, 0.2), stop)
    assert m.duration_s < 3.0
    assert m.bytes_total > 0


def test_identify_accepts_our_server_and_refuses_others(server):
    assert identify(Target("x", "internet", "127.0.0.1", server.url))["service"] == "giga-netcheck"
    for mode in ("not-ours", "garbage"):
        with FakeServer(mode) as fake:
            with pytest.raises(ProbeError) as info:
                identify(Target("x", "internet", "127.0.0.1", fake.url))
            assert info.value.kind in ("not-measurement-server", "protocol", "reset")
    with FakeServer("not-ours") as fake:
        with pytest.raises(NotMeasurementServer):
            identify(Target("x", "internet", "127.0.0.1", fake.url))


def test_identify_unreachable_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProbeError) as info:
        identify(Target("x", "internet", "127.0.0.1", f"http://127.0.0.1:{port}"))
    assert info.value.kind == "refused"


def test_tcp_connect_to_closed_port_is_still_a_round_trip():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with rtt.TcpConnect("127.0.0.1", port) as m:
        assert m.once(1.0) is not None


def test_udp_echo_rtt_and_loss(server):
    with rtt.UdpEcho("127.0.0.1", server.server.udp_port) as m:
        assert all(m.once(0.5) is not None for _ in range(5))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # a port where nothing echoes
        with rtt.UdpEcho("127.0.0.1", s.getsockname()[1]) as m:
            assert m.once(0.2) is None


@root
def test_icmp_uses_kernel_timestamps_on_loopback():
    with rtt.IcmpRaw("127.0.0.1") as m:
        samples = [m.once(1.0) for _ in range(5)]
    assert all(s is not None and 0 <= s < 5 for s in samples)


def test_no_raw_socket_permission_falls_back_and_says_so(server, monkeypatch):
    def deny(*a, **k):
        raise PermissionFailure("icmp socket not permitted: [Errno 1] Operation not permitted")

    monkeypatch.setattr(rtt.IcmpRaw, "__init__", deny)
    monkeypatch.setattr(rtt.IcmpDgram, "__init__", deny)
    t = Target("internet", "internet", "127.0.0.1", server.url)
    ctx = _ctx([t], servers={"internet": {"udp_echo_port": server.server.udp_port}}, latency_count=3, latency_interval_s=0.01)
    s = measure_series(t, ctx, phase="idle", count=3, interval_s=0.01)
    assert s.method == "udp-echo"
    assert s.stats.received == 3
    gw = Target("gateway", "gateway", "127.0.0.1")
    s2 = measure_series(gw, ctx, phase="idle", count=2, interval_s=0.01)
    assert s2.method == "tcp-connect"


def test_forced_method_without_permission_is_a_recorded_failure(monkeypatch):
    monkeypatch.setattr(rtt.IcmpRaw, "__init__", lambda *a, **k: (_ for _ in ()).throw(PermissionFailure("denied")))
    gw = Target("gateway", "gateway", "127.0.0.1")
    s = measure_series(gw, _ctx([gw], latency_method="icmp"), phase="idle", count=2, interval_s=0.01)
    assert s.error_kind == "permission"
    assert s.stats.sent == 0


def test_dns_probe_measures_delay_and_counts_timeouts_and_servfail():
    with DnsServer(host="127.0.0.1", port=0, records={"www.lab.example": "198.18.3.2"}, delay_ms=40) as slow:
        series = dnsprobe.measure("slow", f"127.0.0.1:{slow.port}", "www.lab.example", "warm", 3, 1.0, threading.Event())
    assert series.timeouts == 0
    assert 38 <= series.p50_ms <= 80
    assert series.answers == ("198.18.3.2",)
    with DnsServer(host="127.0.0.1", port=0, records={"www.lab.example": "198.18.3.2"}, timeout_rate=1.0) as dead:
        series = dnsprobe.measure("dead", f"127.0.0.1:{dead.port}", "www.lab.example", "cold", 2, 0.2, threading.Event())
    assert series.timeouts == 2 and series.p50_ms is None
    with DnsServer(host="127.0.0.1", port=0, records={"www.lab.example": "198.18.3.2"}, servfail_rate=1.0) as bad:
        series = dnsprobe.measure("bad", f"127.0.0.1:{bad.port}", "www.lab.example", "cold", 2, 0.5, threading.Event())
    assert series.rcodes == ("SERVFAIL", "SERVFAIL")


def test_dns_cold_queries_use_fresh_labels(dns_server):
    before = dns_server.queries
    s = dnsprobe.measure("lab", f"127.0.0.1:{dns_server.port}", "www.lab.example", "cold", 3, 1.0, threading.Event())
    assert dns_server.queries - before == 3
    assert s.answers == ("198.18.3.2",)  # wildcard under the name answers the random labels


@pytest.mark.parametrize(
    "spec,expected",
    [("1.2.3.4", ("1.2.3.4", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("[::1]:54", ("::1", 54)), ("::1", ("::1", 53))],
)
def test_split_server(spec, expected):
    assert dnsprobe.split_server(spec) == expected


def test_dns_agreement_flags_different_answers():
    from giga_netcheck.core.models import DnsSeries

    a = DnsSeries("r1", "1.1.1.1", "n", "warm", (1.0,), ("NOERROR",), ("198.18.0.1",), 0, 1.0, 1.0)
    b = DnsSeries("r2", "2.2.2.2", "n", "warm", (1.0,), ("NOERROR",), ("198.18.0.9",), 0, 1.0, 1.0)
    (agree,) = dnsprobe.agreement([a, b])
    assert agree.agree is False
