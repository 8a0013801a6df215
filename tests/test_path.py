"""Path discovery (probes/path.py): the trace against scapy-level fakes, the probe in a run, the
result record, and how discovered hops feed triage's localisation."""

from __future__ import annotations

import socket
import time
from collections import deque
from typing import Optional

import pytest

from giga_netcheck.config.site import load_site
from giga_netcheck.core.errors import PermissionFailure
from giga_netcheck.core.models import DiscoveredPath, PathHop, Target, claims
from giga_netcheck.core.triage import triage
from giga_netcheck.measure.probes.base import ProbeContext
from giga_netcheck.measure.probes.latency import LoadedLatencySampler
from giga_netcheck.measure.probes.path import (
    KINDS,
    PathLimits,
    PathProbe,
    RawTransport,
    Reply,
    Transport,
    attach_hop_stats,
    discover,
    name_hops,
    raw_sockets_allowed,
    trace,
)
from giga_netcheck.measure.runner import run
from tests.conftest import loopback_site
from tests.factories import bandwidth, latency, measurements, replace_dc, rtts, triage_input

ME = "198.18.1.10"
GW, ISP, DST = "198.18.1.1", "198.18.2.2", "198.18.3.2"


class FakeNet(Transport):
    """A path of routers made of scapy packets: every probe is built by the real ProbeKind, every
    answer is the packet a router or the target would send, parsed back by ProbeKind.match.

    ``routers``: addresses at TTL 1..n-1 (None: a router that never answers); the target is at
    TTL n. ``blocked``: probe kinds the path drops from ``blocked_from`` on (a firewall)."""

    def __init__(
        self,
        method: str,
        dst: str,
        port: Optional[int] = None,
        *,
        routers=(GW, ISP),
        blocked: frozenset = frozenset(),
        blocked_from: int = 2,
        rtt_ms: float = 5.0,
        drop_every: int = 0,
    ) -> None:
        from scapy.layers import inet

        self.inet = inet
        self.method = method
        self.dst = dst
        self.port = port or 80
        self.routers = list(routers)
        self.blocked = blocked
        self.blocked_from = blocked_from
        self.rtt_ms = rtt_ms
        self.drop_every = drop_every
        self.kind = KINDS[method](dst, 4242, self.port, ME)
        self.queue: deque = deque()
        self.sent = 0
        self.closed = False

    def send(self, ttl: int, key: int) -> float:
        inet = self.inet
        self.sent += 1
        at = time.time()
        payload = self.kind.payload(key)
        proto = {"icmp": 1, "udp": 17, "tcp": 6}[self.method]
        orig = inet.IP(src=ME, dst=self.dst, ttl=ttl, proto=proto) / payload
        hop_count = len(self.routers) + 1
        if self.method in self.blocked and ttl >= self.blocked_from:
            return at
        if self.drop_every and self.sent % self.drop_every == 0:
            return at
        if ttl < hop_count:
            src = self.routers[ttl - 1]
            if src is None:
                return at
            reply = inet.IP(src=src, dst=ME) / inet.ICMP(type=11, code=0) / bytes(orig)[: 28 + 8]
        elif self.method == "icmp":
            echo = inet.ICMP(payload)
            reply = inet.IP(src=self.dst, dst=ME) / inet.ICMP(type=0, id=echo.id, seq=echo.seq)
        elif self.method == "udp":
            reply = inet.IP(src=self.dst, dst=ME) / inet.ICMP(type=3, code=3) / bytes(orig)[: 28 + 8]
        else:
            syn = inet.TCP(payload)
            reply = inet.IP(src=self.dst, dst=ME) / inet.TCP(sport=self.port, dport=syn.sport, flags="SA", seq=1, ack=syn.seq + 1)
        # a foreign packet first: the matcher must ignore it
        self.queue.append(bytes(inet.IP(src="198.18.9.9", dst=ME) / inet.ICMP(type=0, id=1, seq=key)))
        self.queue.append((bytes(reply), at + self.rtt_ms * min(ttl, hop_count) / 1000.0))
        return at

    def receive(self, timeout_s: float) -> Optional[Reply]:
        while self.queue:
            item = self.queue.popleft()
            if isinstance(item, bytes):
                assert self.kind.match(item) is None
                continue
            data, at = item
            got = self.kind.match(data)
            if got is not None:
                key, src, kind, reached = got
                return Reply(key, src, kind, reached, at)
        time.sleep(min(timeout_s, 0.01))
        return None

    def close(self) -> None:
        self.closed = True


def opener(**kw):
    made: list[FakeNet] = []

    def open_(method: str, dst: str, port: Optional[int]) -> FakeNet:
        tx = FakeNet(method, dst, port, **kw)
        made.append(tx)
        return tx

    open_.made = made  # type: ignore[attr-defined]
    return open_


# timeout_s generous: building and parsing scapy packets under CI load once outlasted 50 ms,
# so a round ended before the target's answer was read (the fake answers at once anyway).
LIMITS = PathLimits(max_hops=8, probes_per_hop=3, timeout_s=1.0, total_s=5.0)


# ------------------------------------------------------------------------ the trace itself


@pytest.mark.parametrize("method", ["icmp", "udp", "tcp"])
def test_each_probe_kind_finds_every_hop_and_the_target(method):
    t = trace(FakeNet(method, DST, 8080), LIMITS, deadline=time.monotonic() + 5)
    assert t.reached and t.method == method
    assert [h.address for h in t.hops] == [GW, ISP, DST]
    assert [h.reply for h in t.hops] == [
        "time-exceeded",
        "time-exceeded",
        {"icmp": "echo-reply", "udp": "port-unreachable", "tcp": "syn-ack"}[method],
    ]
    assert all(len(h.trace_rtts_ms) == 3 and None not in h.trace_rtts_ms for h in t.hops)
    assert t.hops[1].trace_rtts_ms[0] == pytest.approx(10.0, abs=0.01)


def test_later_rounds_stop_at_the_target():
    tx = FakeNet("icmp", DST)
    trace(tx, LIMITS, deadline=time.monotonic() + 5)
    assert tx.sent == 8 + 3 + 3  # first round to max_hops, then up to the target's TTL only


def test_a_silent_router_is_a_gap_not_the_end():
    t = trace(FakeNet("icmp", DST, routers=(GW, None, "198.18.5.5")), LIMITS, deadline=time.monotonic() + 5)
    assert t.reached and [h.address for h in t.hops] == [GW, None, "198.18.5.5", DST]
    assert t.hops[1].trace_rtts_ms == (None, None, None)


def test_lost_answers_are_recorded_as_none():
    t = trace(FakeNet("icmp", DST, drop_every=4), LIMITS, deadline=time.monotonic() + 5)
    assert t.reached and any(None in h.trace_rtts_ms for h in t.hops)


def test_falls_back_from_icmp_to_udp_to_tcp_until_the_target_answers():
    op = opener(blocked=frozenset({"icmp", "udp"}), blocked_from=3)
    got, attempts = discover(DST, 8080, LIMITS, deadline=time.monotonic() + 5, open_transport=op)
    assert got is not None and got.method == "tcp" and got.reached
    assert [a.split(":")[0] for a in attempts] == ["icmp", "udp", "tcp"]
    assert attempts[0] == "icmp: not reached within 8 hops (2 answered)"
    assert attempts[2] == "tcp: reached in 3 hops"
    assert all(tx.closed for tx in op.made)


def test_stops_at_the_first_kind_that_reaches():
    op = opener()
    got, attempts = discover(DST, None, LIMITS, deadline=time.monotonic() + 5, open_transport=op)
    assert got.method == "icmp" and attempts == ["icmp: reached in 3 hops"] and len(op.made) == 1


def test_unreached_keeps_the_best_partial_path():
    op = opener(blocked=frozenset({"icmp", "udp", "tcp"}), blocked_from=2)
    got, attempts = discover(DST, None, LIMITS, deadline=time.monotonic() + 5, open_transport=op)
    assert not got.reached and [h.address for h in got.hops] == [GW] and got.method == "icmp"


def test_bounded_by_the_total_time():
    slow = PathLimits(max_hops=8, probes_per_hop=50, timeout_s=0.05, total_s=0.3)
    op = opener(blocked=frozenset({"icmp", "udp", "tcp"}), blocked_from=1)
    t0 = time.monotonic()
    got, attempts = discover(DST, None, slow, deadline=time.monotonic() + slow.total_s, open_transport=op)
    assert time.monotonic() - t0 < 0.3 + 0.2
    assert any("time limit" in a for a in attempts)


def test_permission_failure_stops_the_fallback():
    def deny(method, dst, port):
        raise PermissionFailure("raw sockets not permitted")

    got, attempts = discover(DST, None, LIMITS, deadline=time.monotonic() + 1, open_transport=deny)
    assert got is None and attempts == ["icmp: raw sockets not permitted"]


# ------------------------------------------------------------------------ names and records


def test_hops_are_named_after_the_targets_they_are():
    t = trace(FakeNet("icmp", DST), LIMITS, deadline=time.monotonic() + 5)
    internet = Target("internet", "internet", DST, f"http://{DST}:8080")
    known: dict = {}
    hops = name_hops(t, internet, [internet], known)  # no gateway known: TTL 1 is the gateway
    assert [(h.name, h.role) for h in hops] == [("hop-1", "gateway"), ("hop-2", "hop"), ("internet", "internet")]
    gw = Target("gateway", "gateway", GW)
    hops = name_hops(t, internet, [gw, internet], {})
    assert [(h.name, h.role) for h in hops] == [("gateway", "gateway"), ("hop-2", "hop"), ("internet", "internet")]


def test_hop_stats_are_copied_into_the_path():
    path = DiscoveredPath(
        "internet",
        DST,
        "icmp",
        True,
        (PathHop(1, GW, "time-exceeded", (1.0,), name="hop-1", role="gateway"), PathHop(2, None, None, (None,))),
    )
    series = [
        latency("hop-1", 1.0, role="gateway"),
        latency("hop-1", rtts(3.0), phase="download:internet", role="gateway"),
        latency("hop-1", rtts(9.0), phase="upload:internet", role="gateway"),
    ]
    (out,) = attach_hop_stats([path], series)
    assert out.hops[0].idle.p50_ms == 1.0 and out.hops[0].loaded.p50_ms == 9.0 and out.hops[0].loaded_phase == "upload:internet"
    assert out.hops[1].idle is None


def test_the_sampler_under_load_also_samples_discovered_hops(write_site):
    site = load_site(write_site(loopback_site("http://127.0.0.1:9")))
    ctx = ProbeContext(site=site, settings=site.probes, targets=site.targets(None), servers={}, host={}, resolvers={})
    ctx.hops.append(Target("hop-2", "hop", "127.0.0.2"))
    sampler = LoadedLatencySampler(ctx, phase="download:internet")
    assert [t.name for t in sampler._points] == ["gateway", "internet", "hop-2"]


# ------------------------------------------------------------------------ the probe in a run


def _probe(**kw):
    return lambda: PathProbe(limits=LIMITS, open_transport=opener(**kw), permitted=lambda: None)


def test_a_run_without_center_records_the_path_and_measures_each_hop(write_site, server):
    site = load_site(write_site(loopback_site(server.url, targets={"internet": [server.url]})))
    # the fake network puts two routers on 127.0.0.1's path; their echo series go to loopback
    r = run(
        site, probes=(lambda: PathProbe(limits=LIMITS, open_transport=opener(routers=("127.0.0.2", "127.0.0.3")), permitted=lambda: None),)
    )
    (p,) = r.measurements.paths
    assert p.reached and p.method == "icmp" and [h.address for h in p.hops] == ["127.0.0.2", "127.0.0.3", "127.0.0.1"]
    assert [h.name for h in p.hops] == ["hop-1", "hop-2", "internet"]
    assert p.hops[0].idle is not None and p.hops[0].idle.received > 0  # measured like a target
    assert {s.target for s in r.measurements.latency} == {"hop-1", "hop-2"}
    assert next(x for x in r.probes if x.probe == "path").status == "ok"


def test_a_site_that_names_gateway_and_center_needs_no_trace(write_site, server):
    site = load_site(
        write_site(loopback_site(server.url, targets={"gateway": "127.0.0.1", "center": server.url, "internet": [server.url]}))
    )
    op = opener()
    r = run(site, probes=(lambda: PathProbe(limits=LIMITS, open_transport=op, permitted=lambda: None),))
    rec = next(x for x in r.probes if x.probe == "path")
    assert rec.status == "skipped" and rec.reason_key == "reason.path_not_needed" and not op.made
    assert r.measurements.paths == () and not any(x.startswith("path:") for x in r.not_measured)


def test_without_raw_sockets_the_path_is_not_measured_with_the_reason(write_site, server):
    site = load_site(write_site(loopback_site(server.url)))
    r = run(site, probes=(lambda: PathProbe(permitted=lambda: "Operation not permitted"),))
    rec = next(x for x in r.probes if x.probe == "path")
    assert rec.status == "skipped" and rec.reason_key == "reason.path_no_raw_sockets"
    line = next(x for x in r.not_measured if x.startswith("path:"))
    assert "CAP_NET_RAW" in line and "Operation not permitted" in line
    assert r.measurements.paths == ()


@pytest.mark.skipif(raw_sockets_allowed() is not None, reason="needs raw sockets (root or CAP_NET_RAW)")
@pytest.mark.parametrize("method", ["icmp", "udp", "tcp"])
def test_raw_sockets_trace_loopback(method):
    # a listener of its own: no earlier connection's TIME_WAIT on the same port pair
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        tx = RawTransport(method, "127.0.0.1", listener.getsockname()[1])
        try:
            t = trace(tx, PathLimits(max_hops=3, probes_per_hop=2, timeout_s=1.0), deadline=time.monotonic() + 5)
        finally:
            tx.close()
    assert t.reached and [h.address for h in t.hops] == ["127.0.0.1"]
    assert t.hops[0].reply == {"icmp": "echo-reply", "udp": "port-unreachable", "tcp": "syn-ack"}[method]
    got = [r for r in t.hops[0].trace_rtts_ms if r is not None]
    # tcp: every probe reuses one 4-tuple, so a SYN that meets the previous one's half-open
    # state may get no SYN-ACK; one answer is enough to know the hop
    assert got and all(0 <= r < 50 for r in got)


# ------------------------------------------------------------------------ triage on discovered hops

NO_HOPS = (Target("internet", "internet", DST, f"http://{DST}:8080"),)


def _path(*hops: tuple[str, str, str]) -> DiscoveredPath:
    """(address, name, role) from TTL 1; the last one is the internet target."""
    return DiscoveredPath(
        "internet", DST, "icmp", True, tuple(PathHop(i, a, "time-exceeded", (1.0,), name=n, role=r) for i, (a, n, r) in enumerate(hops, 1))
    )


PATH3 = _path((GW, "hop-1", "gateway"), (ISP, "hop-2", "hop"), (DST, "internet", "internet"))


def _input(series, bw=(), path=PATH3, targets=NO_HOPS):
    m = replace_dc(measurements(series, list(bw)), paths=(path,))
    return triage_input(m, targets=targets)


def _top(inp):
    got = claims(tuple(triage(inp)))
    return got[0] if got else None


def test_route_puts_discovered_hops_in_ttl_order():
    f = _input([]).facts
    assert [t.name for t in f.route] == ["hop-1", "hop-2", "internet"]
    assert [t.name for t in f.by_role("gateway")] == ["hop-1"] and f.path_hop("hop-2").ttl == 2


def _loaded(name, role, idle_ms, loaded_ms, lost=0):
    return [
        latency(name, rtts(idle_ms, n=30, lost=lost), role=role),
        latency(name, rtts(loaded_ms, n=30), phase="download:internet", role=role),
    ]


def test_queue_sits_just_before_the_first_inflated_discovered_hop():
    series = _loaded("hop-1", "gateway", 1.0, 2.0) + _loaded("hop-2", "hop", 15.0, 215.0) + _loaded("internet", "internet", 20.0, 220.0)
    top = _top(_input(series, [bandwidth("internet", 19.0)]))
    assert top.id == "bufferbloat" and top.segment == "uplink"
    ev = {e.metric: e for e in top.evidence}
    assert ev["rtt_increase_ms"].target == "hop-2"
    assert ev["hop_ttl"].value == 2 and ev["hop_ttl"].note_key == "evidence.queue_before_hop" and ISP in ev["hop_ttl"].note


def test_a_router_slow_to_answer_under_load_alone_is_not_the_queue():
    series = _loaded("hop-1", "gateway", 1.0, 2.0) + _loaded("hop-2", "hop", 15.0, 215.0) + _loaded("internet", "internet", 20.0, 22.0)
    causes = {c.id: c for c in triage(_input(series, [bandwidth("internet", 600.0)]))}
    assert "bufferbloat" not in causes


def test_a_queue_in_the_lan_shows_at_the_discovered_gateway():
    series = _loaded("hop-1", "gateway", 1.0, 201.0) + _loaded("hop-2", "hop", 15.0, 215.0) + _loaded("internet", "internet", 20.0, 220.0)
    top = _top(_input(series, [bandwidth("internet", 19.0)]))
    assert top.id == "bufferbloat" and top.segment == "lan"


def test_loss_that_starts_at_a_discovered_hop_and_persists_is_uplink_loss():
    series = [
        latency("hop-1", rtts(1.0, n=200), role="gateway"),
        latency("hop-2", rtts(15.0, n=100, lost=4), role="hop"),
        latency("internet", rtts(20.0, n=100, lost=4)),
    ]
    top = _top(_input(series))
    assert top.id == "uplink-loss" and top.segment == "uplink"
    ev = top.evidence[0]
    assert ev.target == "hop-2" and ev.note_key == "evidence.loss_starts_at_hop" and ev.note_args["farthest"] == "internet"


def test_loss_at_one_router_only_is_its_rate_limit_not_the_path():
    series = [
        latency("hop-1", rtts(1.0, n=200), role="gateway"),
        latency("hop-2", rtts(15.0, n=100, lost=30), role="hop"),
        latency("internet", rtts(20.0, n=100)),
    ]
    assert "uplink-loss" not in {c.id for c in triage(_input(series))}


def test_loss_at_the_discovered_gateway_is_lan_loss():
    series = [
        latency("hop-1", rtts(1.0, n=100, lost=6), role="gateway"),
        latency("hop-2", rtts(15.0, n=100, lost=6), role="hop"),
        latency("internet", rtts(20.0, n=100, lost=6)),
    ]
    top = _top(_input(series))
    assert top.id == "lan-loss" and top.segment == "lan"


def test_without_a_path_the_same_series_name_no_hop():
    series = _loaded("hop-2", "hop", 15.0, 215.0) + _loaded("internet", "internet", 20.0, 22.0)
    m = measurements(series, [bandwidth("internet", 600.0)])
    f = triage_input(m, targets=NO_HOPS).facts
    assert f.hops == () and [t.name for t in f.route] == ["internet"]
