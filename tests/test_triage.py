"""triage: every rule fires on its evidence and stays quiet without it; merging, ranking, grades.

A firing case states what it expects in behaviour, not a formula's figure: the segment, the
confidence *band* (a claim, a strong claim, or named but not claimed) and why, and where the
cause ranks once the whole triage has run (merging and the contradictions between causes).
tests/test_triage_properties.py checks the same rules over families of inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import pytest

from giga_netcheck.core.models import Cause, Classroom, Evidence, School, Target, claims
from giga_netcheck.core.triage import CAUSE_SEGMENTS, RULES, Finding, Rule, TriageInput, bufferbloat_grade, session_limit, triage
from tests.factories import (
    ALL_TARGETS,
    NO_CENTER,
    bandwidth,
    dns,
    family_path,
    healthy_bandwidth,
    healthy_dns,
    healthy_latency,
    latency,
    load_result,
    load_step,
    measurements,
    proxy_report,
    replace_dc,
    rtts,
    silent,
    triage_input,
)

# domain.md section 5: the whole vocabulary and the segment each cause is fixed to (None: it depends)
DOMAIN_CAUSES = {
    "lan-capacity": "lan",
    "lan-loss": "lan",
    "uplink-capacity": "uplink",
    "uplink-loss": "uplink",
    "bufferbloat": None,
    "center-capacity": "center",
    "proxy-overhead": "center",
    "session-limit": None,
    "per-flow-limit": None,
    "high-latency": None,
    "dns-slow": "dns",
    "dns-failure": "dns",
    "ipv4-congestion": "uplink",
    "peak-congestion": "uplink",
    "no-connectivity": None,
    "measuring-device": "device",
}
SEGMENTS = {"device", "lan", "gateway", "uplink", "center", "internet", "dns"}
RULE_BY_ID = {r.id: r for r in RULES}


# ------------------------------------------------------------------------ confidence bands


@dataclass(frozen=True)
class Band:
    """A range of confidence and what it tells a reader of the report."""

    name: str
    low: float
    high: float
    """Exclusive, except for the top band (confidences stop at 0.95)."""

    def holds(self, confidence: float) -> bool:
        return self.low <= confidence < self.high


CLAIM_AT = 0.5
"""models.claims: a cause at this confidence or above is stated as likely."""
POSSIBLE = Band("named, not claimed", 0.0, CLAIM_AT)
CLAIM = Band("a claim, not a strong one", CLAIM_AT, 0.75)
STRONG = Band("a strong claim", 0.75, 1.0)

TOP, CLAIMED, NOT_CLAIMED = "top", "claimed", "not claimed"
"""Where the rule's cause ends up in the whole triage: the first claim, a claim, below the claims."""


# --------------------------------------------------------------------------- scenarios


def replace_idle(series: list, *new) -> list:
    """Healthy latency with the idle series of the named targets swapped for ``new``."""
    names = {(s.target, s.phase) for s in new}
    return [s for s in series if (s.target, s.phase) not in names] + list(new)


@dataclass
class Scenario:
    """Measurements and context for one triage input."""

    latency: list = field(default_factory=healthy_latency)
    bandwidth: list = field(default_factory=healthy_bandwidth)
    dns: list = field(default_factory=healthy_dns)
    targets: Sequence[Target] = ALL_TARGETS
    host: Optional[dict] = None
    school: School = School("s1", "Test school", None)
    classrooms: Sequence[Classroom] = (Classroom("3-2", 35, "default"),)
    families: list = field(default_factory=list)
    proxy: Any = None
    load: Any = None

    def input(self) -> TriageInput:
        m = replace_dc(
            measurements(self.latency, self.bandwidth, self.dns, load=self.load), families=tuple(self.families), proxy=self.proxy
        )
        return triage_input(m, targets=self.targets, host=self.host, school=self.school, classrooms=self.classrooms)


def healthy() -> Scenario:
    return Scenario()


def with_(**kw: Any) -> Callable[[], Scenario]:
    return lambda: Scenario(**kw)


def lat(*new) -> list:
    return replace_idle(healthy_latency(), *new)


def bw(*new, drop: Sequence[tuple[str, str, int]] = ()) -> list:
    """Healthy bandwidth with (target, direction, single?) entries replaced by ``new``."""
    keys = {(b.target, b.direction, b.streams == 1) for b in new} | {(t, d, s == 1) for t, d, s in drop}
    return [b for b in healthy_bandwidth() if (b.target, b.direction, b.streams == 1) not in keys] + list(new)


def loaded(*series) -> list:
    """Healthy latency plus series measured under load."""
    return healthy_latency() + list(series)


@dataclass(frozen=True)
class Case:
    """One rule firing (or, in QUIET, not firing) on one scenario."""

    rule: str
    scenario: Callable[[], Scenario]
    segment: Optional[str] = None
    """Expected segment when it fires; None: it must not fire."""
    band: Optional[Band] = None
    """The band the rule's own finding falls in."""
    id: str = ""
    why: str = ""
    """Why this band, in terms of the network."""
    ranks: str = TOP
    """Where the cause ends up in the whole triage (TOP, CLAIMED, NOT_CLAIMED)."""


def ramp(refused: Sequence[int], goodput: float = 20.0, target: str = "center"):
    """A load ramp: step i opens 20 x i connections, at most 40 stay open, ``refused[i - 1]`` are refused."""
    steps = [
        load_step(
            10 * i,
            connections=20 * i,
            connections_opened=20 * i,
            peak_open_connections=min(20 * i, 40),
            goodput_mbps=goodput,
            errors={"refused": r, "reset": 0, "timeout": 0},
        )
        for i, r in enumerate(refused, 1)
    ]
    return load_result(steps, target=target)


# the healthy path: gateway 1 ms, center 5, internet 15; center 850 Mbit/s, internet 600, one flow 420
SHORT = School("s", "S", 420)
"""420 students: MEXT recommends 466.5 Mbit/s (the healthy internet figure is 600)."""
SILENT_INTERNET_BW = [("internet", "download", 4), ("internet", "upload", 4), ("internet", "download", 1)]

FIRES = [
    # dns-slow: a resolver's p50 above the DNS limit (100 ms)
    Case(
        "dns-slow.p50",
        with_(dns=healthy_dns() + [dns(250.0, server="10.0.0.53")]),
        "dns",
        STRONG,
        "warm-250ms",
        "a cached answer at 2.5 times the limit: every page waits a quarter second before a byte moves",
    ),
    Case(
        "dns-slow.p50",
        with_(dns=[dns(3.0), dns(100.1, kind="cold")]),
        "dns",
        CLAIM,
        "cold-just-above",
        "a hair over the limit: slow, but only just",
    ),
    Case("dns-slow.p50", with_(dns=[dns(900.0)]), "dns", STRONG, "nine-times-the-limit", "nearly a second per lookup"),
    # dns-failure: timeouts + SERVFAIL/REFUSED >= 5% of queries
    Case(
        "dns-failure.timeouts-servfail",
        with_(dns=healthy_dns() + [dns(None, n=5, timeouts=5, server="10.0.0.53")]),
        "dns",
        STRONG,
        "timeouts",
        "a quarter of all queries never answered",
    ),
    Case(
        "dns-failure.timeouts-servfail",
        with_(dns=[dns(20.0, n=10, rcodes=["SERVFAIL"] * 10)]),
        "dns",
        STRONG,
        "servfail",
        "the resolver fails every query",
    ),
    Case(
        "dns-failure.timeouts-servfail",
        with_(dns=[dns(3.0, n=20, timeouts=1)]),
        "dns",
        CLAIM,
        "exactly-5pct",
        "one query in twenty lost: at the limit",
    ),
    # lan-loss: loss (> 1%) or jitter (> 30 ms) to the gateway
    Case(
        "lan-loss.gateway",
        with_(latency=lat(latency("gateway", rtts(1.0, lost=2)))),
        "lan",
        CLAIM,
        "idle-10pct-pooled-with-clean-loaded-probes",
        "2 of 60 gateway probes lost (20 idle, 40 under load with the gateway flat): over the limit, on two losses",
    ),
    Case(
        "lan-loss.gateway",
        with_(latency=lat(latency("gateway", rtts(40.0, spread=20.0)))),
        "lan",
        CLAIM,
        "jitter-40ms",
        "jitter over the limit without a lost probe: a busy radio, not proof of loss",
    ),
    # uplink-loss: loss beyond a clean gateway
    Case(
        "uplink-loss.beyond-gateway",
        with_(latency=lat(latency("internet", rtts(15.0, lost=2))), targets=NO_CENTER),
        "uplink",
        STRONG,
        "internet-no-center",
        "a tenth lost beyond a gateway that lost none of 60: the LAN is ruled out",
    ),
    Case(
        "uplink-loss.beyond-gateway",
        with_(latency=lat(latency("center", rtts(5.0, lost=4)))),
        "uplink",
        STRONG,
        "center",
        "a fifth lost on the way to the center, none to the gateway",
    ),
    Case(
        "uplink-loss.beyond-gateway",
        with_(latency=lat(latency("internet", rtts(15.0, lost=2)))),
        "uplink",
        STRONG,
        "beyond-a-clean-center",
        "a tenth lost beyond a clean center; still the uplink segment, with a note",
    ),
    Case(
        "uplink-loss.beyond-gateway",
        with_(latency=[s for s in lat(latency("internet", rtts(15.0, lost=2))) if s.target != "gateway"], targets=NO_CENTER),
        "uplink",
        CLAIM,
        "gateway-unmeasured",
        "loss beyond the gateway, but with no gateway figure a LAN losing as much is not ruled out",
    ),
    Case(
        "uplink-loss.beyond-gateway",
        with_(
            latency=[
                latency("gateway", rtts(1.0, n=10)),
                latency("center", rtts(5.0, n=30, lost=2)),
                latency("internet", rtts(15.0, n=30, lost=2)),
            ]
        ),
        "uplink",
        POSSIBLE,
        "gateway-sample-too-small",
        "2 of 30 lost beyond the gateway, but a LAN losing that much would pass 10 gateway probes clean half the time",
        ranks=NOT_CLAIMED,
    ),
    # lan-capacity: a 85-97 Mbit/s plateau, or the gateway queue
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(bandwidth=bw(bandwidth("center", 94.0), bandwidth("internet", 93.5), bandwidth("internet", 60.0, streams=1))),
        "lan",
        CLAIM,
        "plateau",
        "every server reads ~94 Mbit/s, a 100 Mbit/s link's payload rate: one sign, and no shortfall",
    ),
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(latency=loaded(latency("gateway", rtts(80.0), phase="download"))),
        "lan",
        CLAIM,
        "gateway-queue",
        "the gateway's RTT rises 79 ms under load: the queue is in the LAN; one sign",
        ranks=CLAIMED,  # the rise itself is bufferbloat in the LAN, which ranks above the capacity that fills the queue
    ),
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(
            bandwidth=bw(bandwidth("center", 94.0), bandwidth("internet", 93.5), bandwidth("internet", 60.0, streams=1)),
            latency=loaded(latency("gateway", rtts(80.0), phase="download")),
            school=SHORT,
        ),
        "lan",
        STRONG,
        "both-and-short",
        "the plateau, the gateway queue and a shortfall against the need all agree",
    ),
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(latency=loaded(latency("gateway", rtts(19.0), phase="download"), latency("center", rtts(24.0), phase="download"))),
        "lan",
        CLAIM,
        "gateway-rises-like-the-hops-beyond",
        "the gateway rises 18 ms and the center 17: the queue that delays the hops beyond already delays the gateway",
    ),
    # uplink-capacity: the first off-site server is below the need, the gateway is flat
    Case(
        "uplink-capacity.first-offsite-short",
        with_(bandwidth=bw(bandwidth("internet", 300.0)), targets=NO_CENTER, school=SHORT),
        "uplink",
        STRONG,
        "mext-short",
        "300 Mbit/s to the first server beyond the school against 466.5 needed, and the gateway stays flat under load",
    ),
    Case(
        "uplink-capacity.first-offsite-short",
        with_(bandwidth=bw(bandwidth("center", 20.0), bandwidth("internet", 20.0), bandwidth("internet", 15.0, streams=1))),
        "uplink",
        STRONG,
        "classroom-short",
        "20 Mbit/s at the center for a classroom that needs 24.5, the gateway flat",
    ),
    # center-capacity: the center is more than twice as fast as the internet
    Case(
        "center-capacity.fast-center-slow-internet",
        with_(
            bandwidth=bw(bandwidth("center", 800.0), bandwidth("internet", 100.0), bandwidth("internet", 80.0, streams=1)),
            latency=lat(latency("internet", rtts(8.0, spread=1.0))),
            school=SHORT,
        ),
        "center",
        STRONG,
        "center-fast-and-short",
        "the center carries 800 Mbit/s, the internet beyond it 100, short of the 466.5 needed, on a path barely longer",
    ),
    Case(
        "center-capacity.fast-center-slow-internet",
        with_(bandwidth=bw(bandwidth("center", 800.0), bandwidth("internet", 100.0), bandwidth("internet", 80.0, streams=1))),
        "center",
        CLAIM,
        "center-fast",
        "the internet leg an eighth of the center's, but no need goes unmet",
        ranks=NOT_CLAIMED,  # the internet is three times as far as the center: TCP over that RTT explains a slower leg
    ),
    Case(
        "center-capacity.fast-center-slow-internet",
        with_(bandwidth=bw(bandwidth("center", 800.0), bandwidth("internet", 100.0), bandwidth("internet", 80.0, streams=1)), school=SHORT),
        "center",
        STRONG,
        "center-fast-and-short-far-internet",
        "fast center, slow internet and a shortfall",
        ranks=NOT_CLAIMED,  # as above: the internet's longer RTT explains the slower leg by itself
    ),
    Case(
        "center-capacity.fast-center-slow-internet",
        with_(bandwidth=bw(bandwidth("center", 800.0), bandwidth("internet", 400.0))),
        "center",
        CLAIM,
        "exactly-half",
        "the internet leg exactly half the center's: at the limit",
        ranks=NOT_CLAIMED,
    ),
    # bufferbloat: loaded RTT rises >= 60 ms at some hop; nearest inflated hop names the segment
    Case(
        "bufferbloat.loaded-increase",
        with_(latency=loaded(latency("internet", rtts(165.0), phase="download"))),
        "center",
        STRONG,
        "beyond-center",
        "the internet rises 150 ms under load (grade C), the center stays flat: the queue is in the center's upstream",
    ),
    Case(
        "bufferbloat.loaded-increase",
        with_(latency=loaded(latency("internet", rtts(165.0), phase="download")), targets=NO_CENTER),
        "uplink",
        STRONG,
        "uplink",
        "150 ms of queue beyond a flat gateway, no center: the uplink",
    ),
    Case(
        "bufferbloat.loaded-increase",
        with_(latency=loaded(latency("gateway", rtts(101.0), phase="upload"), latency("internet", rtts(300.0), phase="upload"))),
        "lan",
        CLAIM,
        "at-gateway",
        "the gateway rises 100 ms during the upload: the nearest point that rises places the queue, in the LAN",
    ),
    Case(
        "bufferbloat.loaded-increase",
        with_(latency=loaded(latency("internet", rtts(75.0), phase="download"))),
        "center",
        CLAIM,
        "exactly-60ms",
        "a 60 ms rise: grade C, where action starts",
    ),
    Case(
        "bufferbloat.loaded-increase",
        with_(latency=loaded(latency("internet", rtts(2015.0), phase="download"))),
        "center",
        STRONG,
        "two-seconds",
        "two seconds of queue: every call and page stalls",
    ),
    # high-latency: idle RTT to the farthest target > 100 ms
    Case(
        "high-latency.idle-rtt",
        with_(latency=lat(latency("internet", 180.0))),
        "internet",
        STRONG,
        "internet",
        "180 ms idle to the internet, 5 to the center, the gateway quick: the route beyond the center is long",
    ),
    Case(
        "high-latency.idle-rtt",
        with_(latency=lat(latency("center", 170.0), latency("internet", 180.0))),
        "center",
        STRONG,
        "via-center",
        "170 of the 180 ms are already there at the center",
    ),
    Case(
        "high-latency.idle-rtt",
        with_(latency=[s for s in lat(latency("internet", 300.0)) if s.target != "gateway"]),
        "internet",
        CLAIM,
        "gateway-unmeasured",
        "300 ms idle, but with no gateway figure a slow LAN is not ruled out",
    ),
    # per-flow-limit: one stream gets at most 35% of many
    Case(
        "per-flow-limit.single-vs-multi",
        with_(bandwidth=bw(bandwidth("internet", 50.0, streams=1))),
        "center",
        STRONG,
        "internet",
        "one flow gets 50 of the 600 Mbit/s four flows get, to the internet only: beyond the center",
    ),
    Case(
        "per-flow-limit.single-vs-multi",
        with_(bandwidth=bw(bandwidth("center", 100.0, streams=1))),
        "uplink",
        STRONG,
        "center",
        "one flow gets 100 of 850 Mbit/s to the center",
    ),
    # no-connectivity: a target answers nothing
    Case(
        "no-connectivity.silent-hop",
        with_(latency=lat(silent("internet", error="timeout")), bandwidth=bw(drop=SILENT_INTERNET_BW)),
        "center",
        STRONG,
        "internet-silent",
        "the internet answers no probe and moves no byte; the center answers",
    ),
    Case(
        "no-connectivity.silent-hop",
        with_(
            latency=lat(silent("center"), silent("internet")),
            bandwidth=bw(drop=[("center", "download", 4), ("center", "upload", 4), *SILENT_INTERNET_BW]),
        ),
        "uplink",
        STRONG,
        "center-and-beyond-silent",
        "nothing answers from the center on: the break is on the uplink",
    ),
    # session-limit: streams refused or reset while others moved data
    Case(
        "session-limit.connection-errors",
        with_(bandwidth=bw(bandwidth("internet", 300.0, error="3 of 8 streams reset", error_kind="reset"))),
        "gateway",
        CLAIM,
        "reset",
        "some streams reset while the others moved data: a sign of a full table, without a ramp to show where",
    ),
    Case(
        "session-limit.connection-errors",
        with_(bandwidth=bw(bandwidth("center", 300.0, error="refused", error_kind="refused"))),
        "gateway",
        CLAIM,
        "refused",
        "a stream refused while the others moved data",
    ),
    Case(
        "session-limit.connection-errors",
        with_(load=ramp((0, 0, 5, 10, 20))),
        "gateway",
        STRONG,
        "load-ramp",
        "40 connections held without error, then refusals from 60 on, growing with every step, with bandwidth to spare",
    ),
    # measuring-device: the line reaches the device's own link speed, or weak Wi-Fi
    Case(
        "measuring-device.nic-or-wifi",
        with_(host={"link_speed_mbps": 100}, bandwidth=bw(bandwidth("internet", 94.0))),
        "device",
        CLAIM,
        "nic-100",
        "the line reads 94 Mbit/s through the device's own 100 Mbit/s port: the device may be what was measured",
    ),
    Case(
        "measuring-device.nic-or-wifi",
        with_(host={"link_speed_mbps": 1000, "wifi": {"signal_dbm": -78}}),
        "device",
        CLAIM,
        "weak-wifi",
        "a -78 dBm signal can hold the device back, but the figures do not show that it did",
    ),
    # ipv4-congestion: IPv6 downloads >= 2x IPv4 from the same server (or IPv4 connect RTT 2x and +20 ms)
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(families=[family_path("internet", "ipv4", 30.0), family_path("internet", "ipv6", 290.0)]),
        "uplink",
        STRONG,
        "ipv6-ten-times-faster",
        "the same server moves ten times as much over IPv6: IPv4's path (PPPoE) is congested, not the line",
    ),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(families=[family_path("center", "ipv4", 100.0), family_path("center", "ipv6", 200.0)]),
        "uplink",
        CLAIM,
        "exactly-2x",
        "IPv6 exactly twice IPv4: at the limit",
    ),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(families=[family_path("internet", "ipv4", 50.0, 80.0), family_path("internet", "ipv6", 200.0, 20.0)]),
        "uplink",
        STRONG,
        "4x-and-rtt",
        "four times the throughput over IPv6, and IPv4 connects take four times as long",
    ),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(families=[family_path("internet", "ipv4", None, 90.0), family_path("internet", "ipv6", None, 20.0)]),
        "uplink",
        CLAIM,
        "rtt-only",
        "IPv4 connects take 4.5 times IPv6's, but no download compares the families",
    ),
    # proxy-overhead: TTFB through the proxy >= 3x connect RTT and >= 100 ms above two path RTTs
    Case(
        "proxy-overhead.ttfb-vs-connect",
        with_(proxy=proxy_report("internet", 330.0, 30.0)),
        "center",
        STRONG,
        "300ms-in-the-proxy",
        "270 of the first byte's 330 ms are the proxy's own, with the direct RTT measured",
    ),
    Case(
        "proxy-overhead.ttfb-vs-connect",
        with_(proxy=proxy_report("internet", 2000.0, 30.0)),
        "center",
        STRONG,
        "two-seconds",
        "two seconds to the first byte through the proxy",
    ),
    Case(
        "proxy-overhead.ttfb-vs-connect",
        with_(proxy=proxy_report("internet", 330.0, 30.0), latency=[s for s in healthy_latency() if s.target != "internet"]),
        "center",
        CLAIM,
        "no-direct-rtt",
        "without a direct RTT to the server, a distant server could explain part of the wait",
    ),
]

QUIET = [
    Case("ipv4-congestion.ipv6-faster", healthy, id="healthy"),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(families=[family_path("internet", "ipv4", 101.0), family_path("internet", "ipv6", 200.0)]),
        id="below-2x",
    ),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(
            families=[
                family_path("internet", "ipv4", 30.0),
                family_path("internet", "ipv6", None, None, status="not-measured", reason="no route"),
            ]
        ),
        id="no-ipv6-route-is-not-a-fault",
    ),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(families=[family_path("internet", "ipv4", 30.0), family_path("center", "ipv6", 290.0)]),
        id="different-services",
    ),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(
            families=[
                replace_dc(
                    family_path("internet", "ipv4", 30.0, n_rtt=3),
                    download=replace_dc(family_path("internet", "ipv4", 30.0).download, samples_mbps=(30.0,) * 6),
                ),
                family_path("internet", "ipv6", 290.0, n_rtt=3),
            ]
        ),
        id="too-few-samples",
    ),
    Case(
        "ipv4-congestion.ipv6-faster",
        with_(families=[family_path("internet", "ipv4", None, 45.0), family_path("internet", "ipv6", None, 30.0)]),
        id="rtt-only-below-2x",
    ),
    Case("proxy-overhead.ttfb-vs-connect", healthy, id="healthy"),
    Case("proxy-overhead.ttfb-vs-connect", with_(proxy=proxy_report("internet", 330.0, 30.0, proxy=None)), id="direct-no-proxy"),
    Case("proxy-overhead.ttfb-vs-connect", with_(proxy=proxy_report("internet", 65.0, 30.0)), id="proxy-adds-little"),
    Case("proxy-overhead.ttfb-vs-connect", with_(proxy=proxy_report("internet", 80.0, 1.0)), id="far-server-explains-it"),
    Case("proxy-overhead.ttfb-vs-connect", with_(proxy=proxy_report("internet", 330.0, 30.0, n=4)), id="too-few-samples"),
    Case("proxy-overhead.ttfb-vs-connect", with_(proxy=proxy_report("internet", 330.0, 120.0)), id="below-3x-connect"),
    Case("dns-slow.p50", healthy, id="healthy"),
    Case("dns-slow.p50", with_(dns=[dns(99.9), dns(99.9, kind="cold")]), id="just-below-limit"),
    Case("dns-slow.p50", with_(dns=[]), id="not-measured"),
    Case("dns-failure.timeouts-servfail", healthy, id="healthy"),
    Case("dns-failure.timeouts-servfail", with_(dns=[dns(3.0, n=21, timeouts=1)]), id="just-under-5pct"),
    Case("dns-failure.timeouts-servfail", with_(dns=[dns(3.0, n=5, rcodes=["NXDOMAIN"] * 5)]), id="nxdomain-is-an-answer"),
    Case("dns-failure.timeouts-servfail", with_(dns=[]), id="not-measured"),
    Case("lan-loss.gateway", healthy, id="healthy"),
    Case("lan-loss.gateway", with_(latency=lat(latency("gateway", rtts(1.0, n=200, lost=1)))), id="half-pct-below-the-limit"),
    Case("lan-loss.gateway", with_(latency=lat(silent("gateway"))), id="silent-gateway"),
    Case("lan-loss.gateway", with_(latency=[s for s in healthy_latency() if s.target != "gateway"]), id="not-measured"),
    Case("uplink-loss.beyond-gateway", healthy, id="healthy"),
    Case(
        "uplink-loss.beyond-gateway",
        with_(latency=lat(latency("gateway", rtts(1.0, lost=4)), latency("internet", rtts(15.0, lost=4)))),
        id="lan-explains-it",
    ),
    Case("uplink-loss.beyond-gateway", with_(latency=lat(silent("internet"))), id="silent-is-not-lossy"),
    Case("lan-capacity.plateau-or-gateway-queue", healthy, id="healthy"),
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(bandwidth=bw(bandwidth("internet", 94.0)), host={"link_speed_mbps": 100}),
        id="device-nic",
    ),
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(bandwidth=bw(bandwidth("internet", 84.0), bandwidth("center", 98.0))),
        id="outside-plateau",
    ),
    Case("lan-capacity.plateau-or-gateway-queue", with_(bandwidth=bw(bandwidth("internet", 94.0, streams=1))), id="single-stream-plateau"),
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(
            latency=healthy_latency() + [latency("gateway", rtts(29.0), phase="download"), latency("center", rtts(80.0), phase="download")]
        ),
        id="gateway-below-warn-and-queue-mostly-beyond",
    ),
    Case(
        "lan-capacity.plateau-or-gateway-queue",
        with_(
            latency=healthy_latency() + [latency("gateway", rtts(4.0), phase="download"), latency("center", rtts(9.0), phase="download")]
        ),
        id="gateway-rise-below-noise",
    ),
    Case("uplink-capacity.first-offsite-short", healthy, id="healthy"),
    Case(
        "uplink-capacity.first-offsite-short",
        with_(bandwidth=bw(bandwidth("center", 800.0), bandwidth("internet", 300.0)), school=School("s", "S", 420)),
        id="center-fast-enough",
    ),
    Case("uplink-capacity.first-offsite-short", with_(bandwidth=[], school=School("s", "S", 420)), id="not-measured"),
    Case("center-capacity.fast-center-slow-internet", healthy, id="healthy"),
    Case(
        "center-capacity.fast-center-slow-internet",
        with_(bandwidth=bw(bandwidth("center", 800.0), bandwidth("internet", 401.0))),
        id="more-than-half",
    ),
    Case("center-capacity.fast-center-slow-internet", with_(bandwidth=bw(bandwidth("internet", 100.0)), targets=NO_CENTER), id="no-center"),
    Case("bufferbloat.loaded-increase", healthy, id="healthy"),
    Case(
        "bufferbloat.loaded-increase", with_(latency=healthy_latency() + [latency("internet", rtts(74.9), phase="download")]), id="59.9ms"
    ),
    Case(
        "bufferbloat.loaded-increase",
        with_(latency=healthy_latency() + [latency("internet", (400.0, 400.0, None, None), phase="download")]),
        id="too-few-loaded-answers",
    ),
    Case("high-latency.idle-rtt", healthy, id="healthy"),
    Case("high-latency.idle-rtt", with_(latency=lat(latency("internet", 99.9))), id="just-below-limit"),
    Case("high-latency.idle-rtt", with_(latency=[latency("gateway", 200.0)]), id="gateway-only"),
    Case("per-flow-limit.single-vs-multi", healthy, id="healthy"),
    Case("per-flow-limit.single-vs-multi", with_(bandwidth=bw(bandwidth("internet", 301.0, streams=1))), id="just-over-half"),
    Case(
        "per-flow-limit.single-vs-multi", with_(bandwidth=bw(bandwidth("internet", 50.0, streams=1, direction="upload"))), id="upload-only"
    ),
    Case("per-flow-limit.single-vs-multi", with_(bandwidth=[bandwidth("internet", 50.0, streams=1)]), id="no-multi"),
    Case("no-connectivity.silent-hop", healthy, id="healthy"),
    Case("no-connectivity.silent-hop", with_(latency=lat(silent("internet"))), id="echo-silent-but-bytes-moved"),
    Case("no-connectivity.silent-hop", with_(latency=[]), id="no-latency-measured"),
    Case("session-limit.connection-errors", healthy, id="healthy"),
    Case(
        "session-limit.connection-errors",
        with_(bandwidth=bw(bandwidth("internet", None, error="refused", error_kind="refused", bytes_total=0))),
        id="nothing-moved",
    ),
    Case(
        "session-limit.connection-errors",
        with_(bandwidth=bw(bandwidth("internet", 300.0, error="slow", error_kind="timeout"))),
        id="timeout-kind",
    ),
    Case("measuring-device.nic-or-wifi", healthy, id="healthy"),
    Case("measuring-device.nic-or-wifi", with_(host={}), id="no-host-info"),
    Case("measuring-device.nic-or-wifi", with_(host={"link_speed_mbps": 1000, "wifi": {"signal_dbm": -70}}), id="signal-at-limit"),
    Case(
        "measuring-device.nic-or-wifi", with_(host={"link_speed_mbps": 1000}, bandwidth=bw(bandwidth("internet", 849.0))), id="below-85pct"
    ),
]


def _params(cases):
    return [pytest.param(c, id=f"{c.rule}:{c.id}") for c in cases]


def test_every_rule_has_a_firing_and_a_quiet_case():
    assert {c.rule for c in FIRES} == set(RULE_BY_ID)
    assert {c.rule for c in QUIET} == set(RULE_BY_ID)


def test_every_firing_case_says_what_it_expects_and_why():
    for c in FIRES:
        assert c.segment and c.band and c.why, c.id
        assert c.ranks in (TOP, CLAIMED, NOT_CLAIMED), c.id
    assert len({(c.rule, c.id) for c in FIRES}) == len(FIRES)


@pytest.mark.parametrize("case", _params(FIRES))
def test_rule_fires_on_its_evidence(case: Case):
    rule = RULE_BY_ID[case.rule]
    inp = case.scenario().input()
    found = rule.condition(inp)
    assert found is not None, f"{rule.id} did not fire"
    assert found.segment == case.segment
    assert case.band.holds(found.confidence), f"{found.confidence} is not {case.band.name}: {case.why}"
    assert found.evidence, "a finding without evidence"
    check_ids = {c.id for c in inp.checks}
    for e in found.evidence:  # evidence points at checks that exist in the same result
        assert e.check_id is None or e.check_id in check_ids, e.check_id


@pytest.mark.parametrize("case", _params(FIRES))
def test_the_whole_triage_ranks_the_cause(case: Case):
    """After merging and the contradictions, the cause is named with this rule among its
    reasons, in the rule's segment, and ranks where the case says."""
    rule = RULE_BY_ID[case.rule]
    causes = triage(case.scenario().input())
    cause = next((c for c in causes if c.id == rule.cause), None)
    assert cause is not None and rule.id in cause.rules
    assert cause.advice == f"advice.{rule.cause}" and cause.segment == case.segment
    claimed = claims(tuple(causes))
    summary = [(c.id, c.confidence) for c in causes]
    if case.ranks == TOP:
        assert claimed and claimed[0].id == rule.cause, summary
    elif case.ranks == CLAIMED:
        assert cause in claimed and claimed[0].id != rule.cause, summary
    else:
        assert cause not in claimed, summary


@pytest.mark.parametrize("case", _params(QUIET))
def test_rule_is_quiet_without_its_evidence(case: Case):
    assert RULE_BY_ID[case.rule].condition(case.scenario().input()) is None


@pytest.mark.parametrize("case", _params(FIRES))
def test_fixed_segments_are_respected(case: Case):
    rule = RULE_BY_ID[case.rule]
    fixed = CAUSE_SEGMENTS[rule.cause]
    found = rule.condition(case.scenario().input())
    assert found is not None and found.segment in SEGMENTS
    if fixed is not None:
        assert found.segment == fixed


# ------------------------------------------------------------------------ vocabulary


def test_cause_vocabulary_is_the_domain_table():
    assert CAUSE_SEGMENTS == DOMAIN_CAUSES


def test_rules_name_known_causes_with_unique_ids():
    assert len({r.id for r in RULES}) == len(RULES)
    for r in RULES:
        assert r.cause in CAUSE_SEGMENTS
        assert r.id.split(".", 1)[0] == r.cause  # ids read "<cause>.<how>"
        assert r.doc


# --------------------------------------------------------------------------- healthy


def test_healthy_result_claims_nothing():
    inp = healthy().input()
    assert claims(tuple(triage(inp))) == ()
    assert all(c.status in ("pass", "not-measured") for c in inp.checks), [
        (c.id, c.status) for c in inp.checks if c.status not in ("pass", "not-measured")
    ]


def test_healthy_school_with_mext_check_claims_nothing():
    inp = Scenario(school=School("s", "S", 280), host={"link_speed_mbps": 1000, "wifi": {"signal_dbm": -55}}).input()
    assert claims(tuple(triage(inp))) == ()


def test_nothing_measured_names_no_cause():
    """What is not measured never becomes a cause: no data, no finding at all."""
    inp = Scenario(latency=[], bandwidth=[], dns=[], host={}).input()
    assert triage(inp) == []


def test_unanswered_resolver_without_queries_is_not_a_dns_cause():
    # a resolver we could not even ask (no queries sent) is missing data, not a DNS failure
    broken = dns(None, n=0)
    assert [c.id for c in triage(Scenario(dns=[broken]).input()) if c.id.startswith("dns-")] == []


# --------------------------------------------------------------------- bufferbloat grade


@pytest.mark.parametrize(
    "ms, grade",
    [
        (-3.0, "A+"),
        (0.0, "A+"),
        (4.99, "A+"),
        (5.0, "A"),
        (29.9, "A"),
        (30.0, "B"),
        (59.9, "B"),
        (60.0, "C"),
        (199.9, "C"),
        (200.0, "D"),
        (399.9, "D"),
        (400.0, "F"),
        (5000.0, "F"),
    ],
)
def test_bufferbloat_grade(ms, grade):
    assert bufferbloat_grade(ms) == grade


def test_bufferbloat_evidence_names_grade_and_phase():
    inp = Scenario(latency=loaded(latency("internet", rtts(165.0), phase="download"))).input()
    found = RULE_BY_ID["bufferbloat.loaded-increase"].condition(inp)
    assert found is not None
    inc = found.evidence[0]
    assert (inc.metric, inc.value, inc.target) == ("rtt_increase_ms", 150.0, "internet")
    assert inc.note == "grade C during download"


# -------------------------------------------------------------------- merging, ranking


def _rule(rid: str, cause: str, conf: float, segment: str = "lan", metric: Optional[str] = None) -> Rule:
    ev = (Evidence(metric or rid, conf, "x"),)
    return Rule(rid, cause, lambda inp, f=Finding(conf, segment, ev): f, "test rule")


EMPTY = TriageInput(None, (), None, {})  # type: ignore[arg-type]  # the stub rules read nothing


def _conf(causes: list[Cause]) -> dict[str, float]:
    return {c.id: c.confidence for c in causes}


def test_two_rules_for_one_cause_merge():
    rules = (_rule("dns-slow.a", "dns-slow", 0.6, "dns"), _rule("dns-slow.b", "dns-slow", 0.8, "dns"))
    (cause,) = triage(EMPTY, rules)
    assert cause == Cause(
        "dns-slow",
        "dns",
        0.8,
        (Evidence("dns-slow.a", 0.6, "x"), Evidence("dns-slow.b", 0.8, "x")),
        "advice.dns-slow",
        ("dns-slow.a", "dns-slow.b"),
    )


def test_merge_keeps_the_stronger_finding_segment():
    rules = (_rule("bufferbloat.a", "bufferbloat", 0.9, "lan"), _rule("bufferbloat.b", "bufferbloat", 0.7, "uplink"))
    (cause,) = triage(EMPTY, rules)
    assert (cause.segment, cause.confidence, cause.rules) == ("lan", 0.9, ("bufferbloat.a", "bufferbloat.b"))


def test_rule_that_finds_nothing_adds_nothing():
    rules = (_rule("dns-slow.a", "dns-slow", 0.6, "dns"), Rule("dns-slow.none", "dns-slow", lambda inp: None, "never"))
    (cause,) = triage(EMPTY, rules)
    assert cause.rules == ("dns-slow.a",)


@pytest.mark.parametrize("lan, up", [(0.7, 0.6), (0.5, 0.8), (0.6, 0.6), (0.95, 0.9)])
def test_lan_and_uplink_capacity_contradict(lan, up):
    """One shortfall cannot be both before and after the gateway: the weaker yields (on a tie,
    the uplink), the stronger keeps its confidence and ranks first."""
    rules = (_rule("lan-capacity.t", "lan-capacity", lan, "lan"), _rule("uplink-capacity.t", "uplink-capacity", up, "uplink"))
    causes = triage(EMPTY, rules)
    got = _conf(causes)
    stronger, weaker = ("lan-capacity", "uplink-capacity") if lan >= up else ("uplink-capacity", "lan-capacity")
    assert causes[0].id == stronger and got[stronger] == max(lan, up)
    assert got[weaker] < min(lan, up)
    if min(lan, up) < 0.7:  # a weaker finding near the claim line drops below it
        assert got[weaker] < CLAIM_AT


def test_no_connectivity_weakens_what_lies_beyond():
    """Nothing past a silent hop can be judged: what needs the path beyond it is no longer claimed."""
    rules = (
        _rule("no-connectivity.t", "no-connectivity", 0.9, "uplink"),
        _rule("uplink-capacity.t", "uplink-capacity", 0.75, "uplink"),
        _rule("center-capacity.t", "center-capacity", 0.6, "center"),
        _rule("high-latency.t", "high-latency", 0.7, "internet"),
        _rule("dns-slow.t", "dns-slow", 0.7, "dns"),
    )
    causes = triage(EMPTY, rules)
    got = _conf(causes)
    assert [c.id for c in claims(tuple(causes))] == ["no-connectivity", "dns-slow"]
    assert (got["no-connectivity"], got["dns-slow"]) == (0.9, 0.7)  # neither is lowered
    assert {"uplink-capacity", "center-capacity", "high-latency"} <= set(got)  # still listed as possible


def test_ranking_by_confidence_then_id():
    rules = (
        _rule("lan-loss.t", "lan-loss", 0.3),
        _rule("dns-slow.t", "dns-slow", 0.9, "dns"),
        _rule("per-flow-limit.t", "per-flow-limit", 0.6, "internet"),
        _rule("bufferbloat.t", "bufferbloat", 0.6),
    )
    assert [(c.id, c.confidence) for c in triage(EMPTY, rules)] == [
        ("dns-slow", 0.9),
        ("bufferbloat", 0.6),
        ("per-flow-limit", 0.6),
        ("lan-loss", 0.3),
    ]


def test_real_lan_plateau_outranks_the_uplink_shortfall():
    """94 Mbit/s everywhere, 420 students: the LAN explains the shortfall; the uplink is no longer claimed."""
    sc = Scenario(
        bandwidth=bw(bandwidth("center", 94.0), bandwidth("internet", 93.0), bandwidth("internet", 60.0, streams=1)),
        targets=ALL_TARGETS,
        school=SHORT,
    )
    causes = triage(sc.input())
    assert causes[0].id == "lan-capacity" and STRONG.holds(causes[0].confidence)
    up = next(c for c in causes if c.id == "uplink-capacity")
    assert up not in claims(tuple(causes))


def test_silent_internet_weakens_high_latency_claim():
    sc = Scenario(latency=lat(latency("center", 150.0), silent("internet")), bandwidth=bw(drop=SILENT_INTERNET_BW))
    causes = {c.id: c for c in triage(sc.input())}
    assert STRONG.holds(causes["no-connectivity"].confidence)
    assert causes["high-latency"].confidence < CLAIM_AT  # a claim on its own (150 ms to the center), not past a silent hop


def test_confidence_is_clamped_and_rounded():
    for case in FIRES:
        for c in triage(case.scenario().input()):
            assert 0.05 <= c.confidence <= 0.95 and round(c.confidence, 2) == c.confidence


def test_silent_gateway_with_working_internet_is_not_no_connectivity():
    inp = Scenario(latency=lat(silent("gateway"))).input()
    assert "no-connectivity" not in {c.id for c in claims(tuple(triage(inp)))}


def test_lan_plateau_is_not_claimed_when_a_server_beyond_the_lan_is_faster():
    inp = Scenario(bandwidth=bw(bandwidth("center", 500.0), bandwidth("internet", 94.0), bandwidth("internet", 60.0, streams=1))).input()
    assert "lan-capacity" not in {c.id for c in claims(tuple(triage(inp)))}


# ----------------------------------------------------------------------------- docs


def test_every_rule_and_cause_is_documented():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "triage.md").read_text(encoding="utf-8")
    for r in RULES:
        assert f"### `{r.id}` -> `{r.cause}`" in text, r.id
    for cause in CAUSE_SEGMENTS:
        assert f"| `{cause}` |" in text, cause


def test_loss_explains_slow_tcp_and_lost_dns_queries():
    """Loss makes TCP slow (one flow slower than many) and makes queries time out: with LAN loss
    claimed, the per-flow and capacity causes it explains are no longer claimed; a slow resolver,
    which loss does not explain, keeps its confidence."""
    rules = (
        _rule("lan-loss.t", "lan-loss", 0.9, "lan"),
        _rule("per-flow-limit.t", "per-flow-limit", 0.8, "uplink"),
        _rule("uplink-capacity.t", "uplink-capacity", 0.75, "uplink"),
        _rule("dns-slow.t", "dns-slow", 0.7, "dns"),
    )
    causes = triage(EMPTY, rules)
    got = _conf(causes)
    assert [c.id for c in claims(tuple(causes))] == ["lan-loss", "dns-slow"]
    assert (got["lan-loss"], got["dns-slow"]) == (0.9, 0.7)
    assert {"per-flow-limit", "uplink-capacity"} <= set(got)


def test_uplink_loss_is_not_claimed_when_the_gateway_sample_cannot_rule_out_the_lan():
    """Center and internet lose 2 of 30; the gateway answered all of 10 probes, which a LAN
    losing 7% would also do half the time: the loss may be the LAN's. With 200 clean gateway
    probes it cannot be."""
    few = [latency("gateway", rtts(1.0, n=10)), latency("center", rtts(5.0, n=30, lost=2)), latency("internet", rtts(15.0, n=30, lost=2))]
    inp = Scenario(latency=few).input()
    found = RULE_BY_ID["uplink-loss.beyond-gateway"].condition(inp)
    assert found is not None and POSSIBLE.holds(found.confidence)
    assert any(e.metric == "gateway_probes" for e in found.evidence)
    many = [latency("gateway", rtts(1.0, n=200)), latency("center", rtts(5.0, n=30, lost=2)), latency("internet", rtts(15.0, n=30, lost=2))]
    found = RULE_BY_ID["uplink-loss.beyond-gateway"].condition(Scenario(latency=many).input())
    assert found is not None and found.confidence >= CLAIM_AT


# ------------------------------------------------------------------------- session limit


@pytest.mark.parametrize(
    "refused, fires",
    [
        ((0, 0, 1, 10, 20), False),  # a failure before the failures start: not a clean cap between two counts
        ((0, 0, 5, 10, 20), True),
        ((5, 10, 20), False),  # failing from the start while more get through at each step: not a full table
        ((0, 0, 0), False),
    ],
)
def test_session_limit_from_the_load_ramp(refused, fires):
    found = session_limit(Scenario(load=ramp(refused)).input())
    assert (found is not None and found.confidence >= CLAIM_AT) is fires
    if fires:
        assert found.segment == "gateway" and found.evidence[0].value == 40.0  # the most connections held without an error


def test_session_limit_needs_spare_bandwidth():
    line = Scenario().input().facts.throughput("center", "download").goodput_mbps
    assert session_limit(Scenario(load=ramp((0, 0, 5, 10), goodput=line)).input()) is None
