"""Each scenario, brought up alone, shows its fault with plain tools (ping, iperf3, dig).

One test per scenario (test_scenarios.py checks none is missing). Expectations are computed
from the scenario's own parameters, never restated here, so editing scenarios.yaml keeps
these tests honest:

- a capped path reads, in iperf3, the rate times payload/packet bytes, within 5%;
- ping's median reads the forwarders' delays within 1 ms;
- loss counts fall inside the central binomial range holding 1 - ALPHA of the mass;
- dig reads the resolver's delay, or its failures within binomial ranges.
"""

from __future__ import annotations

import socket
import statistics
import time
import uuid
from typing import Any

import pytest

from tests.lab import tools
from tests.lab.netlab import Lab
from tests.lab.services import DNS_RECORDS
from tests.lab.stats import binomial_bounds, combined_loss

pytestmark = pytest.mark.lab

CAP_TOLERANCE = 0.05
"""iperf3 through a capped link reads the cap within 5% (issue 3)."""
DELAY_TOLERANCE_MS = 1.0
"""ping shows the configured delay within 1 ms (issue 3)."""
ALPHA = 1e-3
"""Chance that a correct lab fails one binomial check."""
CLOCK_REALTIME_COARSE = 5  # linux/time.h; the time module does not name it


def scenario(name: str) -> pytest.MarkDecorator:
    """Run the test against its own lab of scenario ``name``."""
    return pytest.mark.parametrize("lab", [name], indirect=True)


def within_cap(measured: float, expected: float) -> bool:
    return abs(measured - expected) <= CAP_TOLERANCE * expected


def measure_cap(lab: Lab, server: str, expected: float, what: str, **kwargs: Any) -> tools.IperfResult:
    """iperf3 from the client to ``server``; it must read ``expected`` within the tolerance.

    A second run is allowed when the first misses: this is a 2-core machine shared with other
    jobs, and a descheduled forwarder or iperf3 reads low for a second. A wrong cap misses twice.
    """
    first = tools.iperf3(lab, "client", server, **kwargs)
    if within_cap(first.mbit, expected):
        return first
    second = tools.iperf3(lab, "client", server, **kwargs)
    assert within_cap(second.mbit, expected), (
        f"{what}: iperf3 read {first.mbit:.1f} then {second.mbit:.1f} Mbit/s "
        f"(intervals {first.intervals_mbit}, {second.intervals_mbit}); "
        f"the cap gives {expected:.1f} (+-{CAP_TOLERANCE:.0%})"
    )
    return second


def assert_delay(result: tools.PingResult, expected_ms: float, what: str) -> None:
    # The median, not the mean: on a shared 2-core machine one descheduled forwarder adds
    # milliseconds to a single ping, and the mean of 20 carries it.
    assert result.received > 0, f"{what}: no replies"
    assert abs(result.median_ms - expected_ms) <= DELAY_TOLERANCE_MS, (
        f"{what}: ping median {result.median_ms:.3f} ms (avg {result.avg_ms:.3f}), "
        f"configured {expected_ms:.1f} ms (+-{DELAY_TOLERANCE_MS} ms)"
    )


def assert_binomial(count: int, n: int, p: float, what: str) -> None:
    lo, hi = binomial_bounds(n, p, ALPHA)
    assert lo <= count <= hi, f"{what}: {count} of {n}, expected {lo}..{hi} for p={p:.4f}"


def expected_cap(lab: Lab, host: str, direction: str = "down") -> float:
    cap = tools.path_goodput_mbit(lab.scenario, host, direction)
    assert cap is not None, f"scenario {lab.scenario.name} has no cap towards {host}"
    return cap


@scenario("healthy")
def test_healthy(lab: Lab) -> None:
    s = lab.scenario
    for host in ("gateway", "center", "internet"):
        assert_delay(tools.ping(lab, "client", lab.addr(host), count=20, interval_s=0.02), s.base_rtt_ms(host), host)
    down = measure_cap(lab, lab.addr("internet"), expected_cap(lab, "internet", "down"), "download", streams=4)
    up = measure_cap(lab, lab.addr("internet"), expected_cap(lab, "internet", "up"), "upload", streams=4, reverse=False)
    answer = tools.dig(lab, "client", lab.addr("center"), "www.lab.example")
    assert answer.status == "NOERROR" and answer.answers == [DNS_RECORDS["lab.example"]]
    print(f"\nhealthy: down {down.mbit:.1f} Mbit/s, up {up.mbit:.1f} Mbit/s (4 streams)")


@scenario("lan-capacity")
def test_lan_capacity(lab: Lab) -> None:
    # The gateway's own iperf3: only the LAN is on the path.
    result = measure_cap(lab, lab.addr("gateway"), expected_cap(lab, "gateway"), "client <- gateway")
    print(f"\nlan-capacity: {result.mbit:.2f} Mbit/s through a 100 Mbit/s tbf on a veth")


@scenario("lan-loss")
def test_lan_loss(lab: Lab) -> None:
    lan = lab.scenario.link("lan")
    n = 400
    result = tools.ping(lab, "client", lab.addr("gateway"), count=n, interval_s=0.005)
    assert_binomial(result.lost, n, combined_loss(lan.up.loss_pct / 100, lan.down.loss_pct / 100), "pings lost")
    # Jitter: the median sits on the base delay, and the spread is that of the sum of two
    # uniform +-j draws (pings 5 ms apart never hold each other back). Judged by the
    # interquartile range, which a few late wake-ups on a busy machine cannot move.
    assert abs(result.median_ms - lab.scenario.base_rtt_ms("gateway")) <= DELAY_TOLERANCE_MS
    assert lan.up.jitter_ms == lan.down.jitter_ms, "the IQR formula below is for equal jitter"
    want_iqr, se_iqr = triangular_iqr(2 * lan.up.jitter_ms, len(result.rtts_ms))
    rtts = sorted(result.rtts_ms)
    iqr = rtts[(3 * len(rtts)) // 4] - rtts[len(rtts) // 4]
    # 4 standard errors, plus ping's printed resolution (0.01 ms at these RTTs).
    assert abs(iqr - want_iqr) <= 4 * se_iqr + 0.01, f"RTT IQR {iqr:.2f} ms, expected {want_iqr:.2f} +- {4 * se_iqr:.2f}"
    print(f"\nlan-loss: {result.lost}/{n} lost, RTT median {result.median_ms} ms, IQR {iqr:.2f} ms")


def triangular_iqr(half_width: float, n: int) -> tuple[float, float]:
    """IQR of the sum of two uniform(-w/2, w/2) draws (triangular on [-w, w]) and its standard
    error from n samples (a sample quartile's is sqrt(p(1-p)/n) / density; the two quartiles
    are positively correlated, so adding their errors in quadrature over-states the IQR's)."""
    a = half_width
    q1 = -a * (1 - 0.5**0.5)  # F(x) = (x + a)^2 / (2 a^2) = 1/4
    density = (q1 + a) / a**2
    se_quartile = (0.25 * 0.75 / n) ** 0.5 / density
    return -2 * q1, se_quartile * 2**0.5


@scenario("uplink-capacity")
def test_uplink_capacity(lab: Lab) -> None:
    measure_cap(lab, lab.addr("center"), expected_cap(lab, "center"), "client <- center", streams=4)
    # The gateway is before the bottleneck: it answers at LAN speed, with no added delay.
    gateway = tools.ping(lab, "client", lab.addr("gateway"), count=10)
    assert_delay(gateway, lab.scenario.base_rtt_ms("gateway"), "gateway")


@scenario("uplink-loss")
def test_uplink_loss(lab: Lab) -> None:
    up = lab.scenario.link("uplink")
    n = 400
    beyond = tools.ping(lab, "client", lab.addr("center"), count=n, interval_s=0.005)
    assert_binomial(beyond.lost, n, combined_loss(up.up.loss_pct / 100, up.down.loss_pct / 100), "pings to center lost")
    before = tools.ping(lab, "client", lab.addr("gateway"), count=200, interval_s=0.005)
    assert before.lost == 0, "the LAN is clean in this scenario"


@scenario("bufferbloat")
def test_bufferbloat(lab: Lab) -> None:
    down = lab.scenario.direction("uplink", "down")
    # Idle first: after a load the deep queue takes up to queue_ms to drain.
    idle = tools.ping(lab, "client", lab.addr("center"), count=10)
    assert_delay(idle, lab.scenario.base_rtt_ms("center"), "idle")
    # A 300 ms FIFO takes Reno's slow-start overshoot seconds to settle: a longer test, a longer
    # omit (3 s with 1 s omitted once read 24.8, 14.7, 23.9 Mbit/s per second through 20).
    measure_cap(lab, lab.addr("center"), expected_cap(lab, "center"), "client <- center", seconds=6, omit_s=2)
    loaded = tools.loaded_ping(lab, "client", lab.addr("center"), lab.addr("center"), load_s=4.0, count=20)
    rise = loaded.median_ms - idle.median_ms
    # Grade C or worse (> 100 ms rise), and never more than the queue (plus one bucket) holds.
    assert down.rate_mbit is not None and down.queue_ms is not None
    burst_ms = max(32 * 1024, down.rate_mbit * 1e6 / 8 / 1000) / (down.rate_mbit * 1e6 / 8) * 1000
    assert 100 < rise <= down.queue_ms + burst_ms + 5, f"loaded RTT rose {rise:.0f} ms"
    print(f"\nbufferbloat: idle {idle.median_ms:.1f} ms, loaded median {loaded.median_ms:.1f} ms")


@scenario("center-capacity")
def test_center_capacity(lab: Lab) -> None:
    measure_cap(lab, lab.addr("center"), expected_cap(lab, "center"), "client <- center (fast)", streams=4)
    measure_cap(lab, lab.addr("internet"), expected_cap(lab, "internet"), "client <- internet (capped beyond center)", streams=4)


@scenario("session-limit")
def test_session_limit(lab: Lab) -> None:
    limit = lab.scenario.hosts["gateway"].session_limit
    assert limit is not None
    with lab.in_ns("internet"):
        listener = socket.create_server(("0.0.0.0", 0), backlog=limit + 50)
    port = listener.getsockname()[1]
    opened, failures = tools.connect_many(lab, "client", lab.addr("internet"), port, limit + 5)
    try:
        assert len(opened) == limit
        assert failures == ["reset"] * 5, failures
    finally:
        for sock in opened:
            sock.close()
        listener.close()


@scenario("per-flow-limit")
def test_per_flow_limit(lab: Lab) -> None:
    spec = lab.scenario.link("uplink")
    flow_rate = spec.down.flow_rate_mbit
    assert flow_rate is not None
    per_flow = tools.expected_goodput_mbit(flow_rate, tun=spec.uses_tun)
    one = measure_cap(lab, lab.addr("center"), per_flow, "one stream")
    four = tools.iperf3(lab, "client", lab.addr("center"), streams=4)
    # Four flows land in at least two hash buckets unless all collide (1 in 64^3); usually in four.
    assert four.mbit >= 1.8 * one.mbit, f"4 streams {four.mbit:.1f} vs 1 stream {one.mbit:.1f}"
    assert four.mbit <= 4 * per_flow * (1 + CAP_TOLERANCE)
    print(f"\nper-flow-limit: 1 stream {one.mbit:.1f}, 4 streams {four.mbit:.1f} Mbit/s")


@scenario("high-latency")
def test_high_latency(lab: Lab) -> None:
    for host in ("center", "internet"):
        assert_delay(tools.ping(lab, "client", lab.addr(host), count=20), lab.scenario.base_rtt_ms(host), host)


@scenario("dns-slow")
def test_dns_slow(lab: Lab) -> None:
    resolver = lab.scenario.dns["center"]
    n = 8
    names = [f"{uuid.uuid4().hex[:10]}.www.lab.example" for _ in range(n)]

    def median_ms(server: str, queries: list[str]) -> float:
        # One by one, so the queries fall at unrelated phases of dig's clock tick (see below).
        results = [tools.dig(lab, "client", server, name) for name in queries]
        assert all(r.status == "NOERROR" and r.query_ms is not None for r in results), results
        return statistics.median(r.query_ms for r in results)  # type: ignore[misc]

    # The internet's resolver has no delay and sits on the same 30 ms path: what dig reads for
    # the path alone, its own overhead included.
    baseline = median_ms(lab.addr("internet"), names)
    cold = median_ms(lab.addr("center"), names)  # each name asked for the first time
    warm = median_ms(lab.addr("center"), names)
    # dig times queries with a coarse clock (CLOCK_REALTIME_COARSE: one kernel tick), so a
    # reading is off by up to one tick; the resolver's delay is held to the lab's delay bound.
    # Medians, so one query delayed by a busy machine does not count.
    tolerance = coarse_clock_ms() + DELAY_TOLERANCE_MS
    assert abs(warm - baseline - resolver.delay_ms) <= tolerance, (warm, baseline, tolerance)
    assert abs(cold - baseline - resolver.delay_ms - resolver.miss_delay_ms) <= tolerance, (cold, baseline, tolerance)
    print(f"\ndns-slow: dig medians: path {baseline:.1f}, warm {warm:.1f}, cold {cold:.1f} ms (+-{tolerance:g})")


def coarse_clock_ms() -> float:
    """Resolution of CLOCK_REALTIME_COARSE, which dig reads its query times from."""
    return time.clock_getres(CLOCK_REALTIME_COARSE) * 1000


@scenario("dns-failure")
def test_dns_failure(lab: Lab) -> None:
    resolver = lab.scenario.dns["center"]
    n = 60
    names = [f"q{i}-{uuid.uuid4().hex[:6]}.www.lab.example" for i in range(n)]
    results = tools.dig_many(lab, "client", lab.addr("center"), names, timeout_s=1)
    timeouts = sum(r.timed_out for r in results)
    servfails = sum(r.status == "SERVFAIL" for r in results)
    others = {r.status for r in results} - {None, "SERVFAIL", "NOERROR"}
    assert not others, others
    assert_binomial(timeouts, n, resolver.timeout_rate, "timeouts")
    # SERVFAIL is drawn only for queries that were not dropped.
    assert_binomial(servfails, n, (1 - resolver.timeout_rate) * resolver.servfail_rate, "SERVFAILs")
    print(f"\ndns-failure: {timeouts} timeouts, {servfails} SERVFAIL of {n}")


@scenario("no-connectivity")
def test_no_connectivity(lab: Lab) -> None:
    assert tools.ping(lab, "client", lab.addr("gateway"), count=5, interval_s=0.05).lost == 0
    for host in ("center", "internet"):
        result = tools.ping(lab, "client", lab.addr(host), count=3, interval_s=0.2, wait_s=1)
        assert result.received == 0, f"{host} answered through a cut line"
    assert tools.dig(lab, "client", lab.addr("center"), "www.lab.example", timeout_s=1).timed_out


@scenario("ipv4-congestion")
def test_ipv4_congestion(lab: Lab) -> None:
    from tests.lab.topology import ADDRESSES6

    spec = lab.scenario.link("uplink")
    v4_rate = spec.down.ipv4_rate_mbit
    assert v4_rate is not None
    v4 = measure_cap(lab, lab.addr("center"), tools.expected_goodput_mbit(v4_rate, tun=spec.uses_tun), "IPv4 client <- center", streams=4)
    # IPv6 keeps the line: its 40-byte header leaves 1428 of 1500 bytes for TCP payload (IPv4: 1448)
    v6_expected = expected_cap(lab, "center") * 1428 / 1448
    v6 = measure_cap(lab, ADDRESSES6["center"], v6_expected, "IPv6 client <- center", streams=4)
    print(f"\nipv4-congestion: IPv4 {v4.mbit:.1f}, IPv6 {v6.mbit:.1f} Mbit/s to the center")


@scenario("proxy-overhead")
def test_proxy_overhead(lab: Lab) -> None:
    proxy = lab.proxy_url()
    delay = lab.scenario.hosts["center"].proxy_delay_ms
    assert proxy and delay
    rtt = lab.scenario.base_rtt_ms("center")
    # curl opens a connection to the proxy (one round trip), sends the request (another), and
    # the proxy waits before it forwards; the server sits on the proxy's side of the uplink
    times = []
    for _ in range(5):
        r = lab.run(
            "client",
            ["curl", "-s", "-o", "/dev/null", "-x", proxy, "-w", "%{time_starttransfer}", f"{lab.url('internet')}/rtt"],
            timeout=10,
        )
        assert r.returncode == 0, r.stderr
        times.append(float(r.stdout) * 1000.0)
    median = statistics.median(times)
    assert 2 * rtt + delay - DELAY_TOLERANCE_MS <= median <= 2 * rtt + delay + 20.0, times
    direct = tools.ping(lab, "client", lab.addr("internet"), count=10)
    assert_delay(direct, lab.scenario.base_rtt_ms("internet"), "internet, direct")
    print(f"\nproxy-overhead: first byte through the proxy {median:.1f} ms, direct RTT {direct.median_ms:.1f} ms")
