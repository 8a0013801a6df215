"""Each scenario, brought up alone, shows its fault with plain tools (ping, iperf3, dig).

One test per scenario (test_scenarios.py checks none is missing). Expectations are computed
from the scenario's own parameters (physics.py), never restated here, so editing scenarios.yaml
keeps these tests honest:

- a capped path reads, in iperf3, the shaper's rate times payload/packet bytes, times the
  share of it TCP keeps busy with the queue the scenario gives it, within 5%;
- ping's median reads the forwarders' delays within 1 ms;
- a deep queue's loaded RTT rises between the standing queue after a loss and the queue's
  drain time;
- loss counts fall inside the central binomial range holding 1 - ALPHA of the mass;
- dig reads the resolver's delay, or its failures within binomial ranges.

Figures a busy 2-core host stretches (iperf3 intervals, ping and dig medians, curl) are taken
again when one misses, up to ``tools.ATTEMPTS`` times, each attempt printed
(``tools.measured``); a test is never re-run. Counts of random draws are judged once.
"""

from __future__ import annotations

import socket
import statistics
import time
import uuid
from typing import Any, Optional

import pytest

from tests.lab import impair, physics, tools
from tests.lab.netlab import Lab
from tests.lab.services import DNS_RECORDS
from tests.lab.stats import binomial_bounds, combined_loss
from tests.lab.topology import ADDRESSES6

pytestmark = pytest.mark.lab

CAP_TOLERANCE = 0.05
"""iperf3 reads the predicted goodput within 5% (issue 3). The prediction itself is good to about
2%: a tbf lets at most one bucket (32 KiB, or 1 ms at the rate) through above its rate in any
interval, 1.3% of a second at 20 Mbit/s and less above; retransmissions of tail-dropped
segments cross the shaper without being goodput, well under 1% in congestion avoidance. The
rest is for a busy host moving bytes between iperf3's one-second intervals (a descheduled
reader counts them in the next), which the median of the intervals and a retry absorb."""
DELAY_TOLERANCE_MS = 1.0
"""ping shows the configured delay within 1 ms (issue 3): the forwarder holds a packet at least
its delay and wakes ~0.2 ms late on this host; one late wake-up moves one ping, not the median."""
PING_RESOLUTION_MS = 1.0
"""ping prints three significant digits: whole milliseconds from 100 ms on."""
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

    A reading that misses is taken again (tools.measured): a descheduled forwarder or iperf3
    reads low for a second on a shared host, and moves bytes into the next interval. A wrong
    cap misses every time.
    """

    def judge(r: tools.IperfResult) -> Optional[str]:
        if within_cap(r.mbit, expected):
            return None
        intervals = ", ".join(f"{x:.1f}" for x in r.intervals_mbit)
        return f"iperf3 read {r.mbit:.1f} Mbit/s (intervals {intervals}); predicted {expected:.1f} (+-{CAP_TOLERANCE:.0%})"

    return tools.measured(what, lambda: tools.iperf3(lab, "client", server, **kwargs), judge)


def delay_problem(result: tools.PingResult, expected_ms: float) -> Optional[str]:
    """None when ping's median sits on ``expected_ms`` (the median, not the mean: one
    descheduled forwarder adds milliseconds to a single ping, and the mean of 20 carries it)."""
    if result.received == 0:
        return "no replies"
    if abs(result.median_ms - expected_ms) <= DELAY_TOLERANCE_MS:
        return None
    return f"ping median {result.median_ms:.3f} ms (avg {result.avg_ms:.3f}), configured {expected_ms:.1f} ms (+-{DELAY_TOLERANCE_MS} ms)"


def measure_delay(lab: Lab, host: str, what: str, **kwargs: Any) -> tools.PingResult:
    """Pings from the client to ``host``, whose median must be the scenario's base RTT."""
    expected = lab.scenario.base_rtt_ms(host)
    return tools.measured(what, lambda: tools.ping(lab, "client", lab.addr(host), **kwargs), lambda r: delay_problem(r, expected))


def assert_binomial(count: int, n: int, p: float, what: str) -> None:
    lo, hi = binomial_bounds(n, p, ALPHA)
    assert lo <= count <= hi, f"{what}: {count} of {n}, expected {lo}..{hi} for p={p:.4f}"


def keep(lab: Lab) -> float:
    """The share of its window a flow keeps after a loss, for the lab's congestion control."""
    return physics.keep_factor(lab.congestion_control)


def expected_cap(lab: Lab, host: str, direction: str = "down", *, streams: int = 1) -> float:
    """What iperf3 with ``streams`` flows reads between the client and ``host`` (physics.py)."""
    cap = physics.predicted_goodput_mbit(lab.scenario, host, direction, streams=streams, keep=keep(lab))
    assert cap is not None, f"scenario {lab.scenario.name} has no cap towards {host}"
    return cap


@scenario("healthy")
def test_healthy(lab: Lab) -> None:
    for host in ("gateway", "center", "internet"):
        measure_delay(lab, host, host, count=20, interval_s=0.02)
    # Four streams: the uplink's 20 ms queue is under one BDP (30 ms at 300 Mbit/s), so one Reno
    # flow's halving would leave the line idle now and then; with four, a loss cuts an eighth of
    # the window sum, which stays above the BDP, and the line stays busy (physics.tcp_utilization).
    down = measure_cap(lab, lab.addr("internet"), expected_cap(lab, "internet", "down", streams=4), "download", streams=4)
    up = measure_cap(lab, lab.addr("internet"), expected_cap(lab, "internet", "up", streams=4), "upload", streams=4, reverse=False)
    answer = tools.dig(lab, "client", lab.addr("center"), "www.lab.example")
    assert answer.status == "NOERROR" and answer.answers == [DNS_RECORDS["lab.example"]]
    print(f"\nhealthy: down {down.mbit:.1f} Mbit/s, up {up.mbit:.1f} Mbit/s (4 streams)")


@scenario("lan-capacity")
def test_lan_capacity(lab: Lab) -> None:
    # The gateway's own iperf3: only the LAN is on the path (no delay: a BDP of a few kB, far
    # under the 20 ms queue, so one stream keeps it busy).
    result = measure_cap(lab, lab.addr("gateway"), expected_cap(lab, "gateway"), "client <- gateway")
    print(f"\nlan-capacity: {result.mbit:.2f} Mbit/s through a 100 Mbit/s tbf on a veth")


@scenario("lan-loss")
def test_lan_loss(lab: Lab) -> None:
    lan = lab.scenario.link("lan")
    n = 400
    base = lab.scenario.base_rtt_ms("gateway")
    assert lan.up.jitter_ms == lan.down.jitter_ms, "the IQR formula below is for equal jitter"

    # Jitter: the median sits on the base delay, and the spread is that of the sum of two
    # uniform +-j draws (pings 5 ms apart never hold each other back). Judged by the
    # interquartile range, which a few late wake-ups on a busy machine cannot move; a run in
    # which many did is taken again.
    def judge(r: tools.PingResult) -> Optional[str]:
        if r.received == 0 or abs(r.median_ms - base) > DELAY_TOLERANCE_MS:
            return f"RTT median {r.median_ms} ms, configured {base} ms (+-{DELAY_TOLERANCE_MS})"
        want, se = triangular_iqr(2 * lan.up.jitter_ms, len(r.rtts_ms))
        # 4 standard errors, plus ping's printed resolution (0.01 ms at these RTTs).
        if abs(rtt_iqr(r) - want) > 4 * se + 0.01:
            return f"RTT IQR {rtt_iqr(r):.2f} ms, expected {want:.2f} +- {4 * se:.2f}"
        return None

    result = tools.measured(
        "pings to the gateway", lambda: tools.ping(lab, "client", lab.addr("gateway"), count=n, interval_s=0.005), judge
    )
    # Loss is a count of random draws, judged once, on the run whose timing was accepted (the
    # timing says nothing about how many were dropped).
    assert_binomial(result.lost, n, combined_loss(lan.up.loss_pct / 100, lan.down.loss_pct / 100), "pings lost")
    print(f"\nlan-loss: {result.lost}/{n} lost, RTT median {result.median_ms} ms, IQR {rtt_iqr(result):.2f} ms")


def rtt_iqr(result: tools.PingResult) -> float:
    rtts = sorted(result.rtts_ms)
    return rtts[(3 * len(rtts)) // 4] - rtts[len(rtts) // 4]


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
    measure_cap(lab, lab.addr("center"), expected_cap(lab, "center", streams=4), "client <- center", streams=4)
    # The gateway is before the bottleneck: it answers at LAN speed, with no added delay.
    measure_delay(lab, "gateway", "gateway", count=10)


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
    assert down.rate_mbit is not None
    # Idle first: after a load the deep queue takes up to its drain time to empty.
    idle = measure_delay(lab, "center", "idle RTT", count=10)
    # A 300 ms FIFO takes Reno's slow-start overshoot seconds to settle: a longer test, a longer
    # omit (3 s with 1 s omitted once read 24.8, 14.7, 23.9 Mbit/s per second through 20).
    load_mbit = expected_cap(lab, "center")
    measure_cap(lab, lab.addr("center"), load_mbit, "client <- center", seconds=6, omit_s=2)
    # Under a greedy download the queue's delay sits between two bounds from the scenario:
    # - at most what the shaper holds, queue plus one bucket, at its rate (drain_ms: 313 ms);
    # - at least the window's low point minus the BDP once a loss has cut it (queue_floor_ms:
    #   142 ms after Reno's halving, 210 after CUBIC's cut to 0.7).
    # The pings run from 3 s to 5 s into the load, past slow start: the queue is full while the
    # overshoot's losses are recovered, then sits at the floor once the window is cut, regrowing
    # by one segment a round trip (3 ms a second; the next cut is a minute away). Measured
    # through 16 loads, quiet and beside five busy loops: pings 339-342 ms, then 171 rising to
    # 181 (idle 30.4); medians of the rise 143.1-310.6 ms.
    ceiling = physics.drain_ms(down)
    floor = physics.queue_floor_ms(down, lab.scenario.base_rtt_ms("center"), keep=keep(lab))
    assert floor > 100, f"by its own numbers the scenario must grade C or worse (a rise over 100 ms): floor {floor:.0f} ms"
    slack = DELAY_TOLERANCE_MS + PING_RESOLUTION_MS

    def judge(lp: tools.LoadedPing) -> Optional[str]:
        if not within_cap(lp.load.mbit, load_mbit):
            return f"the load read {lp.load.mbit:.1f} Mbit/s, not the link's {load_mbit:.1f}: the queue need not have filled"
        rise = lp.ping.median_ms - idle.median_ms
        if floor - slack <= rise <= ceiling + slack:
            return None
        return f"loaded RTT rose {rise:.1f} ms (pings {lp.ping.rtts_ms}), expected {floor:.0f}..{ceiling:.0f} ms"

    loaded = tools.measured(
        "RTT under load",
        lambda: tools.loaded_ping(lab, "client", lab.addr("center"), lab.addr("center"), load_s=6.0, settle_s=3.0, count=20),
        judge,
    )
    print(
        f"\nbufferbloat: idle {idle.median_ms:.1f} ms, loaded median {loaded.ping.median_ms:.1f} ms ({floor:.0f}..{ceiling:.0f} expected)"
    )


@scenario("center-capacity")
def test_center_capacity(lab: Lab) -> None:
    center, internet = expected_cap(lab, "center", streams=4), expected_cap(lab, "internet", streams=4)
    measure_cap(lab, lab.addr("center"), center, "client <- center (fast)", streams=4)
    measure_cap(lab, lab.addr("internet"), internet, "client <- internet (capped beyond center)", streams=4)


@scenario("session-limit")
def test_session_limit(lab: Lab) -> None:
    # connlimit counts connections, not time: exact counts, nothing to retry
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
    d = spec.down
    assert d.flow_rate_mbit is not None
    # One flow has its class to itself; the class's FIFO (64 KiB) is most of a BDP (75 kB at
    # 20 Mbit/s and 30 ms), so Reno's sawtooth leaves it idle a fraction of a percent.
    busy = physics.tcp_utilization(
        d.flow_rate_mbit, impair.flow_queue_bytes(d), lab.scenario.base_rtt_ms("center"), flows=1, keep=keep(lab)
    )
    per_flow = tools.expected_goodput_mbit(d.flow_rate_mbit, tun=spec.uses_tun) * busy
    one = measure_cap(lab, lab.addr("center"), per_flow, "one stream")
    # Four flows hash into k classes and read k flow caps: k >= 2 unless all four collide (1 in
    # 64^3), k <= 4. Two caps as one stream read them, less a tolerance on each reading.
    lo, hi = 2 * one.mbit * (1 - 2 * CAP_TOLERANCE), 4 * per_flow * (1 + CAP_TOLERANCE)

    def judge(r: tools.IperfResult) -> Optional[str]:
        return None if lo <= r.mbit <= hi else f"4 streams read {r.mbit:.1f} Mbit/s, expected {lo:.1f}..{hi:.1f} (2 to 4 flow caps)"

    four = tools.measured("four streams", lambda: tools.iperf3(lab, "client", lab.addr("center"), streams=4), judge)
    print(f"\nper-flow-limit: 1 stream {one.mbit:.1f}, 4 streams {four.mbit:.1f} Mbit/s")


@scenario("high-latency")
def test_high_latency(lab: Lab) -> None:
    for host in ("center", "internet"):
        measure_delay(lab, host, host, count=20)


@scenario("dns-slow")
def test_dns_slow(lab: Lab) -> None:
    resolver = lab.scenario.dns["center"]
    n = 8

    def median_ms(server: str, queries: list[str]) -> float:
        # One by one, so the queries fall at unrelated phases of dig's clock tick (see below).
        results = [tools.dig(lab, "client", server, name) for name in queries]
        assert all(r.status == "NOERROR" and r.query_ms is not None for r in results), results
        return statistics.median(r.query_ms for r in results)  # type: ignore[misc]

    def take() -> tuple[float, float, float]:
        names = [f"{uuid.uuid4().hex[:10]}.www.lab.example" for _ in range(n)]  # new names: cold means a miss
        # The internet's resolver has no delay and sits on the same 30 ms path: what dig reads
        # for the path alone, its own overhead included.
        baseline = median_ms(lab.addr("internet"), names)
        cold = median_ms(lab.addr("center"), names)  # each name asked for the first time
        warm = median_ms(lab.addr("center"), names)
        return baseline, cold, warm

    # dig times queries with a coarse clock (CLOCK_REALTIME_COARSE: one kernel tick), so a
    # reading is off by up to one tick; the resolver's delay is held to the lab's delay bound.
    # Medians, so one query delayed by a busy machine does not count.
    tolerance = coarse_clock_ms() + DELAY_TOLERANCE_MS

    def judge(v: tuple[float, float, float]) -> Optional[str]:
        baseline, cold, warm = v
        problems = []
        if abs(warm - baseline - resolver.delay_ms) > tolerance:
            problems.append(f"warm {warm} - path {baseline} is not {resolver.delay_ms} ms")
        if abs(cold - baseline - resolver.delay_ms - resolver.miss_delay_ms) > tolerance:
            problems.append(f"cold {cold} - path {baseline} is not {resolver.delay_ms + resolver.miss_delay_ms} ms")
        return "; ".join(f"{p} (+-{tolerance:g})" for p in problems) or None

    baseline, cold, warm = tools.measured("dig medians", take, judge)
    print(f"\ndns-slow: dig medians: path {baseline:.1f}, warm {warm:.1f}, cold {cold:.1f} ms (+-{tolerance:g})")


def coarse_clock_ms() -> float:
    """Resolution of CLOCK_REALTIME_COARSE, which dig reads its query times from."""
    return time.clock_getres(CLOCK_REALTIME_COARSE) * 1000


@scenario("dns-failure")
def test_dns_failure(lab: Lab) -> None:
    resolver = lab.scenario.dns["center"]
    n = 60
    names = [f"q{i}-{uuid.uuid4().hex[:6]}.www.lab.example" for i in range(n)]
    # A timeout must mean a dropped query, not a slow answer: an answer takes one 30 ms round
    # trip, and 3 s is room for sixty digs started at once on a busy host. All run at once, so
    # the wait costs one timeout, not sixty.
    results = tools.dig_many(lab, "client", lab.addr("center"), names, timeout_s=3)
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
    spec = lab.scenario.link("uplink")
    d = spec.down
    assert d.ipv4_rate_mbit is not None and d.rate_mbit is not None
    rtt = lab.scenario.base_rtt_ms("center")

    def goodput(rate_mbit: float, payload_bytes: int) -> float:
        # Each family has its own class and FIFO (the direction's queue at the class's rate).
        busy = physics.tcp_utilization(rate_mbit, impair.limit_bytes(d, rate_mbit), rtt, flows=4, keep=keep(lab))
        return physics.expected_goodput_mbit(rate_mbit, tun=spec.uses_tun, payload_bytes=payload_bytes) * busy

    v4 = measure_cap(lab, lab.addr("center"), goodput(d.ipv4_rate_mbit, physics.TCP_PAYLOAD_BYTES), "IPv4 client <- center", streams=4)
    # IPv6 keeps the line: its 40-byte header leaves 1428 of 1500 bytes for TCP payload (IPv4: 1448)
    v6 = measure_cap(lab, ADDRESSES6["center"], goodput(d.rate_mbit, physics.TCP_PAYLOAD_BYTES_V6), "IPv6 client <- center", streams=4)
    print(f"\nipv4-congestion: IPv4 {v4.mbit:.1f}, IPv6 {v6.mbit:.1f} Mbit/s to the center")


PROXY_WORK_MS = 20.0
"""The lab proxy's own work per request (Python: read the request, connect upstream, relay the
answer), above the wait it is told to add."""


@scenario("proxy-overhead")
def test_proxy_overhead(lab: Lab) -> None:
    proxy = lab.proxy_url()
    delay = lab.scenario.hosts["center"].proxy_delay_ms
    assert proxy and delay
    rtt = lab.scenario.base_rtt_ms("center")
    # curl opens a connection to the proxy (one round trip), sends the request (another), and
    # the proxy waits before it forwards; the server sits on the proxy's side of the uplink.
    # Nothing makes it faster than that; the proxy's own work and a busy host make it slower.
    lo, hi = 2 * rtt + delay - DELAY_TOLERANCE_MS, 2 * rtt + delay + PROXY_WORK_MS

    def take() -> list[float]:
        times = []
        for _ in range(5):
            r = lab.run(
                "client",
                ["curl", "-s", "-o", "/dev/null", "-x", proxy, "-w", "%{time_starttransfer}", f"{lab.url('internet')}/rtt"],
                timeout=10,
            )
            assert r.returncode == 0, r.stderr
            times.append(float(r.stdout) * 1000.0)
        return times

    def judge(times: list[float]) -> Optional[str]:
        median = statistics.median(times)
        return (
            None if lo <= median <= hi else f"first byte through the proxy: median {median:.1f} ms of {times}, expected {lo:.0f}..{hi:.0f}"
        )

    times = tools.measured("first byte through the proxy", take, judge)
    direct = measure_delay(lab, "internet", "internet, direct", count=10)
    print(f"\nproxy-overhead: first byte through the proxy {statistics.median(times):.1f} ms, direct RTT {direct.median_ms:.1f} ms")
