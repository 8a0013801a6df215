"""IPv4 vs IPv6 to the same server: the family probe on loopback (127.0.0.1 and ::1 as the two
addresses of one name), a family this machine cannot use, and the check it feeds."""

from __future__ import annotations

import socket

import pytest

from giga_netcheck.config.site import load_site
from giga_netcheck.core.models import Classroom, School, Target
from giga_netcheck.core.thresholds import evaluate
from giga_netcheck.measure.probes import family as fam
from giga_netcheck.measure.probes.base import ProbeContext
from giga_netcheck.server.app import ServerConfig, ServerThread
from tests.conftest import loopback_site
from tests.factories import facts, family_path, healthy_measurements, profile, replace_dc


@pytest.fixture
def dual_server():
    """One measurement server on 127.0.0.1:P and [::1]:P (two sockets, one port)."""
    with ServerThread(ServerConfig(host="127.0.0.1", port=0)) as v4:
        with ServerThread(ServerConfig(host="::1", port=v4.server.port)) as v6:
            yield v4.server.port, v6


def _ctx(write_site, port: int) -> ProbeContext:
    site = load_site(write_site(loopback_site(f"http://dual.lab.example:{port}")))
    t = Target("internet", "internet", "dual.lab.example", f"http://dual.lab.example:{port}")
    return ProbeContext(site=site, settings=site.probes, targets=[t], servers={"internet": {}}, host={}, resolvers={})


def test_both_families_are_measured_and_labelled(dual_server, write_site, monkeypatch):
    port, _ = dual_server
    monkeypatch.setattr(fam, "family_addresses", lambda host, p: {"ipv4": "127.0.0.1", "ipv6": "::1"})
    probe = fam.FamilyProbe()
    ctx = _ctx(write_site, port)
    assert probe.check(ctx) is None
    out = probe.run(ctx)
    got = {f.family: f for f in out.families}
    assert set(got) == {"ipv4", "ipv6"}
    for name, addr in (("ipv4", "127.0.0.1"), ("ipv6", "::1")):
        f = got[name]
        assert f.status == "ok" and f.address == addr and f.target == "internet"
        assert f.rtt is not None and f.rtt.method == "tcp-connect" and f.rtt.stats.received > 0
        assert f.download is not None and f.download.family == name and f.download.goodput_mbps > 0
        assert addr in f.download.url  # pinned to this family's address


def test_single_stack_target_is_skipped_with_a_reason(write_site, monkeypatch):
    monkeypatch.setattr(fam, "family_addresses", lambda host, p: {"ipv4": "127.0.0.1"})
    reason = fam.FamilyProbe().check(_ctx(write_site, 9))
    assert reason is not None and "IPv4 and IPv6" in str(reason)


def test_a_family_without_a_route_is_not_measured_not_a_fault(dual_server, write_site, monkeypatch):
    port, _ = dual_server
    monkeypatch.setattr(fam, "family_addresses", lambda host, p: {"ipv4": "127.0.0.1", "ipv6": "2001:2:0:9::1"})
    real = fam.tcp_connect_ms

    def no_v6_route(address, p, timeout_s):
        if ":" in address:
            raise fam.FamilyUnusable("Network is unreachable")
        return real(address, p, timeout_s)

    monkeypatch.setattr(fam, "tcp_connect_ms", no_v6_route)
    out = fam.FamilyProbe().run(_ctx(write_site, port))
    got = {f.family: f for f in out.families}
    assert got["ipv4"].status == "ok"
    assert got["ipv6"].status == "not-measured" and "unreachable" in str(got["ipv6"].reason)
    assert got["ipv6"].download is None


@pytest.mark.parametrize("v4, v6, status", [(30.0, 290.0, "fail"), (150.0, 290.0, "pass"), (145.0, 290.0, "pass")])
def test_ipv4_vs_ipv6_check(v4, v6, status):
    m = replace_dc(healthy_measurements(), families=(family_path("internet", "ipv4", v4), family_path("internet", "ipv6", v6)))
    checks = evaluate(facts(m), School("s", "S", None), (Classroom("a", 30, "p"),), {"p": profile("p")})
    c = next(c for c in checks if c.id == "school.ipv4_vs_ipv6")
    assert c.status == status and c.measured == v4 and c.threshold == v6 / 2


def test_no_family_data_no_check():
    checks = evaluate(facts(healthy_measurements()), School("s", "S", None), (Classroom("a", 30, "p"),), {"p": profile("p")})
    assert not [c for c in checks if c.id in ("school.ipv4_vs_ipv6", "school.proxy_overhead")]


def test_cloudflare_target_is_compared_by_family_keeping_its_host_name(write_site, monkeypatch):
    """The zero-configuration target (Cloudflare's endpoints, here `serve` on both loopbacks):
    each family measured to the same host name (TLS checks it), not to a pinned address."""
    with ServerThread(ServerConfig(host="127.0.0.1", port=0)) as v4:
        with ServerThread(ServerConfig(host="::1", port=v4.server.port)) as v6:
            _cloudflare_by_family(v4, v6, write_site, monkeypatch)


def _cloudflare_by_family(v4, v6, write_site, monkeypatch):
    port = v4.server.port
    monkeypatch.setattr(fam, "family_addresses", lambda host, p: {"ipv4": "127.0.0.1", "ipv6": "::1"})
    real = socket.getaddrinfo

    def dual(host, *args, **kw):  # one name, both loopbacks, as a dual-stack host's resolver answers
        if host != "dual.lab.example":
            return real(host, *args, **kw)
        return real("::1", *args, **kw) + real("127.0.0.1", *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", dual)
    site = load_site(write_site(loopback_site(f"http://dual.lab.example:{port}")))
    t = Target("internet", "internet", "dual.lab.example", f"http://dual.lab.example:{port}", engine="cloudflare")
    ctx = ProbeContext(site=site, settings=site.probes, targets=[t], servers={}, host={}, resolvers={})
    probe = fam.FamilyProbe()
    assert probe.check(ctx) is None
    got = {f.family: f for f in probe.run(ctx).families}
    assert set(got) == {"ipv4", "ipv6"}
    # the name resolves to ::1 first: without the family forced, both halves would go to ::1
    assert v4.server.transfers > 0 and v6.server.transfers > 0
    for name in ("ipv4", "ipv6"):
        f = got[name]
        assert f.status == "ok" and f.download is not None and f.download.family == name and f.download.goodput_mbps > 0, f
        assert "dual.lab.example" in (f.download.url or "")
