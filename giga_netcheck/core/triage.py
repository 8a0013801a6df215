"""Triage: checks and measurements -> likely causes with evidence (pure; rules as data).

Each :class:`Rule` has an id, the cause id it supports (the vocabulary of docs/causes.md,
from the domain notes), and a condition that returns a finding (confidence, segment,
evidence) or None. Findings for the same cause are merged (the strongest confidence wins, all
rule ids and evidence are kept); contradicting evidence lowers confidence. This is the first
rule set; docs/triage.md describes each rule.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from giga_netcheck.core.facts import Facts
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import BandwidthMeasurement, Cause, Check, Evidence, LatencySeries, LoadStep, Target
from giga_netcheck.core.profile import Profile
from giga_netcheck.core.stats import binomial_cdf

CAUSE_SEGMENTS = {
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
"""Every cause id the triage may name, with its fixed segment (None: decided per finding)."""


@dataclass(frozen=True)
class Finding:
    confidence: float
    segment: str
    evidence: tuple[Evidence, ...]
    explains_capacity: bool = False
    """The finding accounts for a low multi-stream figure (so capacity causes are consequences)."""


@dataclass(frozen=True)
class TriageInput:
    facts: Facts
    checks: tuple[Check, ...]
    profile: Profile
    host: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    id: str
    cause: str
    condition: Callable[[TriageInput], Optional[Finding]]
    doc: str


def _failing(inp: TriageInput, cid: str) -> list[Check]:
    return [c for c in inp.checks if c.id == cid and c.status == "fail"]


def _ev(
    metric: str, value: Optional[float], unit: str, target: Optional[str] = None, check_id: Optional[str] = None, note: Optional[str] = None
) -> Evidence:
    return Evidence(metric, None if value is None else round(value, 3), unit, target, check_id, note)


def _clamp(x: float) -> float:
    return round(max(0.05, min(0.95, x)), 2)


def _segment_after(facts: Facts, target_name: str) -> str:
    """The segment that ends at a target: the gateway closes the LAN, the center the uplink."""
    t = facts.target(target_name)
    if t is None:
        return "internet"
    if t.role == "gateway":
        return "lan"
    if t.role == "center":
        return "uplink"
    if t.role == "hop":  # a discovered router: before the center (if any) it ends the uplink
        route = facts.route
        centers = [i for i, x in enumerate(route) if x.role == "center"]
        return "center" if centers and route.index(t) > centers[0] else "uplink"
    return "center" if facts.by_role("center") else "uplink"


def _persists(after: Sequence[Target], shows: Callable[[str], Optional[bool]]) -> Optional[str]:
    """For a discovered hop's symptom: the farthest point beyond it with a figure shows it too
    (a router slow or stingy answering to itself is not the path). That point's name, or None."""
    for u in reversed(after):
        v = shows(u.name)
        if v is not None:
            return u.name if v else None
    return None


def _hop_note(f: Facts, t: Target, key: str, **args: Any) -> Optional[Text]:
    h = f.path_hop(t.name) if t.role in ("hop", "gateway") else None
    return Text(key, ttl=h.ttl, address=h.address, **args) if h is not None and h.address else None


# ----------------------------------------------------------------------------- rules


def dns_slow(inp: TriageInput) -> Optional[Finding]:
    lim = inp.profile.limits["dns_p50_ms"]
    slow = [d for d in inp.facts.dns if d.p50_ms is not None and d.p50_ms >= lim.fail]
    if not slow:
        return None
    worst = max(slow, key=lambda d: d.p50_ms or 0)
    ratio = (worst.p50_ms or 0) / lim.fail
    ev = tuple(_ev(f"dns_{d.kind}_p50_ms", d.p50_ms, "ms", d.server, f"classroom.dns.{d.kind}_p50", d.name) for d in slow[:6])
    return Finding(_clamp(0.55 + 0.15 * min(ratio - 1, 2)), "dns", ev)


def dns_failure(inp: TriageInput) -> Optional[Finding]:
    total = sum(len(d.times_ms) for d in inp.facts.dns)
    if not total:
        return None
    timeouts = sum(d.timeouts for d in inp.facts.dns)
    servfail = sum(1 for d in inp.facts.dns for r in d.rcodes if r in ("SERVFAIL", "REFUSED"))
    bad_pct = 100.0 * (timeouts + servfail) / total
    lim = inp.profile.limits["dns_timeout_pct"]
    if bad_pct < lim.fail:
        return None
    ev = (
        _ev("dns_timeout_pct", 100.0 * timeouts / total, "%", check_id="classroom.dns.timeouts"),
        _ev("dns_servfail_pct", 100.0 * servfail / total, "%", note=Text("evidence.dns_servfail")),
    )
    return Finding(_clamp(0.6 + bad_pct / 100), "dns", ev)


def _gateway_loss(f: Facts) -> Optional[tuple[int, int]]:
    """(probes sent, probes lost) to the gateway: idle, plus the probes sent while the load ran
    when the gateway's RTT stayed flat (no queue in the LAN, so a loss there is not congestion)."""
    gws = f.by_role("gateway")
    if not gws or gws[0].name not in f.idle:
        return None
    name = gws[0].name
    series = [f.idle[name]]
    inc = f.loaded_increase(name)
    if inc is not None and inc[0] < GATEWAY_QUEUE_MIN_MS:
        series += f.loaded.get(name, [])
    sent = sum(s.stats.sent for s in series)
    lost = sum(s.stats.sent - s.stats.received for s in series)
    return (sent, lost) if sent else None


def lan_loss(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    gw = [f.idle[t.name] for t in f.by_role("gateway") if t.name in f.idle]
    counts = _gateway_loss(f)
    if not gw or gw[0].stats.received == 0 or counts is None:
        return None
    sent, lost = counts
    loss_pct = 100.0 * lost / sent
    s = gw[0].stats
    loss_lim = inp.profile.limits["gateway_loss_pct"]
    jit_lim = inp.profile.limits["jitter_ms"]
    lossy = loss_pct >= loss_lim.fail
    jittery = s.jitter_ms is not None and s.jitter_ms >= jit_lim.fail
    if not (lossy or jittery):
        return None
    ev = (
        _ev("loss_pct", loss_pct, "%", "gateway", "classroom.gateway_loss", Text("evidence.gateway_loss_count", lost=lost, sent=sent)),
        _ev("jitter_ms", s.jitter_ms, "ms", "gateway"),
    )
    return Finding(_clamp(0.6 + min(loss_pct, 20) / 40), "lan", ev)


def _flat_loss(f: Facts, name: str) -> Optional[tuple[int, int]]:
    """(probes sent, probes lost) to a point: its idle probes, plus those sent under load while its
    RTT stayed flat (no queue on the way, so a loss there is no congestion drop), or the idle
    probes alone where they lost a larger share. None when nothing answered. Thirty idle probes
    alone miss a 4% loss about one time in three (0.96^30 = 0.29)."""
    s = f.idle.get(name)
    if s is None or not s.stats.received or s.stats.p50_ms is None:
        return None
    base = s.stats.p50_ms
    series = [s] + [
        x
        for x in f.loaded.get(name, [])
        if x.stats.received >= 3 and x.stats.p50_ms is not None and x.stats.p50_ms - base < GATEWAY_QUEUE_MIN_MS
    ]
    pooled = (sum(x.stats.sent for x in series), sum(x.stats.sent - x.stats.received for x in series))
    idle = (s.stats.sent, s.stats.sent - s.stats.received)
    # the idle figure where it shows more: pooling adds probes to see loss, never hides it
    return idle if idle[1] * pooled[0] > pooled[1] * idle[0] else pooled


LOSS_ALPHA = 0.05
"""A loss count rules a rate out when that rate would give a count this low less than one time in 20."""


def probes_to_rule_out(rate: float, alpha: float = LOSS_ALPHA) -> int:
    """Probes that must all come back before a segment losing at ``rate`` is ruled out
    (``(1 - rate)^n < alpha``): 74 for 4%, 299 for 1%."""
    if not 0.0 < rate < 1.0:
        return 0
    return math.ceil(math.log(alpha) / math.log(1.0 - rate))


def _offsite_loss(f: Facts, lim_pct: float) -> tuple[list[Target], dict[str, Optional[tuple[int, int]]], Optional[int]]:
    """The off-site points nearest first (discovered hops, the center, the internet), each one's
    (sent, lost), and the index of the first that loses at ``lim_pct`` or more (None: none does)."""
    offsite = [t for t in f.route if t.role in ("hop", "center", "internet")]
    pooled = {t.name: _flat_loss(f, t.name) for t in offsite}
    first = next((i for i, t in enumerate(offsite) if (c := pooled[t.name]) and 100.0 * c[1] / c[0] >= lim_pct), None)
    return offsite, pooled, first


def _rate_beyond(offsite: list[Target], pooled: dict[str, Optional[tuple[int, int]]], i: int) -> float:
    """The loss rate pooled over point ``i`` and every answering point beyond it, which the loss
    reaches too (one point's few losses alone understate the rate)."""
    beyond = [x for u in offsite[i:] if (x := pooled.get(u.name))]
    return sum(x[1] for x in beyond) / max(1, sum(x[0] for x in beyond))


MSS_BYTES = 1448
"""A TCP segment's payload on a 1500-byte Ethernet path with timestamps (1500 - 20 - 20 - 12)."""
MATHIS_C = math.sqrt(1.5)
"""Mathis et al. (1997): one Reno-like flow gets MSS / RTT x C / sqrt(p) under random loss p."""


def loss_explaining(rate_mbps: float, rtt_ms: float) -> Optional[float]:
    """The random loss rate at which one TCP flow gets ``rate_mbps`` over ``rtt_ms`` (Mathis), at
    most 0.5; None without a rate or an RTT."""
    if rate_mbps <= 0 or rtt_ms <= 0:
        return None
    return min(0.5, (MATHIS_C * MSS_BYTES * 8 / (rtt_ms / 1000.0 * rate_mbps * 1e6)) ** 2)


def _gateway_wanted(f: Facts, profile: Profile, rates: list[float]) -> int:
    """Gateway probes that tell a clean LAN from one losing at the rate seen beyond the gateway,
    or at any of ``rates`` (a loss being looked for beyond it)."""
    counts = _gateway_loss(f)
    if counts is None:
        return 0
    sent, lost = counts
    if 100.0 * lost / sent >= profile.limits["gateway_loss_pct"].fail:
        return 0  # loss already shown on the LAN: lan-loss says so
    offsite, pooled, first = _offsite_loss(f, profile.limits["loss_pct"].fail)
    if first is not None:
        rates = [*rates, _rate_beyond(offsite, pooled, first)]
    rates = [r for r in rates if binomial_cdf(lost, sent, r) >= LOSS_ALPHA]
    return max((probes_to_rule_out(r) - sent for r in rates), default=0)


def loss_probes_wanted(f: Facts, profile: Profile) -> dict[str, int]:
    """More idle probes, by target name, that would place a loss the run cannot place yet (empty:
    none needed). The measuring side sends them (bounded) before triage, so that a loss is found
    and placed by the count physics needs, not by the count a quick run happened to send:

    - a server whose one-flow download is far below several flows' (per-flow-limit's sign): the
      loss that would explain that flow by Mathis's law, halved (the constant differs between TCP
      variants), is looked for with the probes that would see it, unless a loss is already seen;
    - the gateway, when a loss is seen (or looked for) beyond it and its clean probes could still
      come from a LAN losing at that rate (binomial, 5%)."""
    lim = profile.limits["loss_pct"].fail
    want: dict[str, int] = {}
    rates: list[float] = []
    for t in f.targets:
        if t.role not in ("center", "internet"):
            continue
        b1, multi = f.throughput(t.name, "download", single=True), f.throughput(t.name, "download")
        rtt, seen = f.idle_p50(t.name), _flat_loss(f, t.name)
        if not (b1 and multi and b1.goodput_mbps and multi.goodput_mbps and rtt and seen):
            continue
        if b1.goodput_mbps > PER_FLOW_RATIO * multi.goodput_mbps or 100.0 * seen[1] / seen[0] >= lim:
            continue
        p = loss_explaining(b1.goodput_mbps, rtt)
        if p is None or 100.0 * p < lim:
            continue  # a loss too small to matter (the profile's limit) cannot explain it
        rates.append(p / 2)
        if (n := probes_to_rule_out(p / 2) - seen[0]) > 0:
            want[t.name] = n
    gateways = [t for t in f.by_role("gateway") if t.name in f.idle]
    if gateways and (n := _gateway_wanted(f, profile, rates)) > 0:
        want[gateways[0].name] = n
    return want


def uplink_loss(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    counts = _gateway_loss(f)
    gw_loss = 100.0 * counts[1] / counts[0] if counts else None
    lim = inp.profile.limits["loss_pct"]
    # nearest first (discovered hops, the center, the internet): loss starts at the first lossy one
    offsite, pooled, first = _offsite_loss(f, lim.fail)

    def loses_too(name: str, rate_pct: float) -> Optional[bool]:
        """The point beyond loses as the hop does: not clearly less (binomial, 5%)."""
        c = pooled.get(name)
        if c is None:
            return None
        return 100.0 * c[1] / c[0] >= 0.5 * lim.fail or binomial_cdf(c[1], c[0], rate_pct / 100.0) >= LOSS_ALPHA

    for i, t in enumerate(offsite):
        if first is None or i < first:
            continue
        role = t.role
        c = pooled[t.name]
        if c is None or 100.0 * c[1] / c[0] < lim.fail:
            continue
        loss_pct = 100.0 * c[1] / c[0]
        farthest = _persists(offsite[i + 1 :], functools.partial(loses_too, rate_pct=loss_pct)) if role == "hop" else None
        if role == "hop" and farthest is None:
            continue  # a router that drops echo requests to itself, while the path beyond does not lose
        if gw_loss is not None and gw_loss >= inp.profile.limits["gateway_loss_pct"].fail:
            return None  # loss already on the LAN: lan-loss explains it
        conf = 0.55 + min(loss_pct, 20) / 40 + (0.1 if gw_loss is not None else -0.15)
        beyond_center = role == "internet" and bool(f.by_role("center"))
        note = Text("evidence.loss_beyond_center") if beyond_center else None
        if role == "hop":
            note = _hop_note(f, t, "evidence.loss_starts_at_hop", farthest=farthest)
        ev = [
            _ev("loss_pct", loss_pct, "%", t.name, "classroom.loss", note),
            _ev("probes", float(c[0]), "", t.name, note=Text("evidence.gateway_loss_count", lost=c[1], sent=c[0])),
            _ev("gateway_loss_pct", gw_loss, "%", "gateway"),
        ]
        if counts is not None:
            # too few gateway probes to tell a clean LAN from one losing at the same rate
            rate_pct = 100.0 * _rate_beyond(offsite, pooled, i)
            chance = binomial_cdf(counts[1], counts[0], rate_pct / 100.0)
            if chance >= LOSS_ALPHA:
                conf -= 0.4
                ev.append(
                    _ev(
                        "gateway_probes",
                        float(counts[0]),
                        "",
                        "gateway",
                        note=Text("evidence.gateway_probes_few", lost=counts[1], loss_pct=rate_pct, chance=round(chance, 4)),
                    )
                )
        return Finding(_clamp(conf), "uplink", tuple(ev))
    return None


def _capacity_short(inp: TriageInput) -> list[Check]:
    return _failing(inp, "classroom.bandwidth.down") + [
        c for c in inp.checks if c.id.startswith("school.bandwidth.") and c.status == "fail" and c.metric == "download_mbps"
    ]


def _gateway_inflation(f: Facts) -> Optional[float]:
    gws = f.by_role("gateway")
    inc = f.loaded_increase(gws[0].name) if gws else None
    return inc[0] if inc else None


def _queue_before_gateway(f: Facts, inp: TriageInput) -> bool:
    """The gateway's RTT rises under load, absolutely or as much as the first off-site hop's does:
    the queue the load builds sits in the school LAN, not beyond the gateway."""
    gw_inc = _gateway_inflation(f)
    if gw_inc is None:
        return False
    if gw_inc >= inp.profile.limits["loaded_rtt_increase_ms"].warn_or_fail():
        return True
    off = _offsite_inflation(f)
    return gw_inc >= GATEWAY_QUEUE_MIN_MS and off is not None and gw_inc >= 0.6 * off


GATEWAY_QUEUE_MIN_MS = 5.0
"""A gateway RTT rise below this is noise, whatever the hops beyond do."""


def _offsite_inflation(f: Facts) -> Optional[float]:
    for t in f.route:  # nearest first: a discovered hop, the center, the internet
        if t.role == "gateway":
            continue
        inc = f.loaded_increase(t.name)
        if inc is not None:
            return inc[0]
    return None


def lan_capacity(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    multi = [b for b in f.bandwidth if b.streams > 1 and b.goodput_mbps is not None]
    best = {d: max((b.goodput_mbps or 0 for b in multi if b.direction == d), default=0.0) for d in ("download", "upload")}
    # a plateau only points at the LAN if no server beyond the LAN got clearly more through it
    plateau = [b for b in multi if 85.0 <= (b.goodput_mbps or 0) <= 97.0 and best[b.direction] <= 97.0 * 1.1]
    gw_inc = _gateway_inflation(f)
    inflates = _queue_before_gateway(f, inp)
    if not plateau and not inflates:
        return None
    link = inp.host.get("link_speed_mbps")
    if plateau and link == 100:
        return None  # the measuring device's own NIC: measuring-device explains it
    conf = 0.35 + (0.3 if plateau else 0) + (0.3 if inflates else 0) + (0.1 if _capacity_short(inp) else 0)
    ev = tuple(
        _ev(
            "download_mbps" if b.direction == "download" else "upload_mbps",
            b.goodput_mbps,
            "Mbps",
            b.target,
            note=Text("evidence.plateau_100m"),
        )
        for b in plateau[:2]
    )
    ev += (_ev("gateway_rtt_increase_ms", gw_inc, "ms", "gateway", "classroom.loaded_rtt_increase"),)
    return Finding(_clamp(conf), "lan", ev)


def uplink_capacity(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    short = _capacity_short(inp)
    if not short:
        return None
    first = next((t for role in ("center", "internet") for t in f.by_role(role) if f.throughput(t.name, "download")), None)
    if first is None:
        return None
    b = f.throughput(first.name, "download")
    assert b is not None
    need = max(c.threshold or 0 for c in short)
    if (b.goodput_mbps or 0) >= need:
        return None  # the first off-site hop is fast enough: the shortfall is further out
    gw_inc = _gateway_inflation(f)
    conf = 0.6
    if gw_inc is not None and not _queue_before_gateway(f, inp):
        conf += 0.15  # the queue is not in the school LAN
    if 85.0 <= (b.goodput_mbps or 0) <= 97.0:
        conf -= 0.25  # a 100 Mbit/s plateau points at the LAN instead
    ev = (
        _ev("download_mbps", b.goodput_mbps, "Mbps", first.name, short[0].id),
        _ev("needed_mbps", need, "Mbps", check_id=short[0].id),
        _ev("gateway_rtt_increase_ms", gw_inc, "ms", "gateway"),
    )
    return Finding(_clamp(conf), "uplink", ev)


def center_capacity(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    centers = [f.throughput(t.name, "download") for t in f.by_role("center")]
    nets = [f.throughput(t.name, "download") for t in f.by_role("internet")]
    c = next((x for x in centers if x), None)
    n = min((x for x in nets if x), key=lambda x: x.goodput_mbps or 0, default=None)
    if not c or not n or not c.goodput_mbps or not n.goodput_mbps:
        return None
    if n.goodput_mbps > 0.5 * c.goodput_mbps:
        return None
    conf = 0.6 + (0.15 if _capacity_short(inp) else 0.0)
    ev = (_ev("center_download_mbps", c.goodput_mbps, "Mbps", c.target), _ev("internet_download_mbps", n.goodput_mbps, "Mbps", n.target))
    return Finding(_clamp(conf), "center", ev)


def bufferbloat(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    lim = inp.profile.limits["loaded_rtt_increase_ms"]

    def inflated_too(name: str) -> Optional[bool]:
        rise = f.loaded_increase(name)
        return None if rise is None else rise[0] >= 0.5 * lim.fail

    first: Optional[tuple[Target, tuple[float, LatencySeries]]] = None
    route = list(f.route)
    for i, t in enumerate(route):  # nearest first: the queue sits before the first inflated hop
        rise = f.loaded_increase(t.name)
        if rise is not None and rise[0] >= lim.fail:
            if t.role == "hop" and _persists(route[i + 1 :], inflated_too) is None:
                continue  # only this router answers slowly under load: its control plane, not a queue
            first = (t, rise)
            break
    if first is None:
        return None
    t, (inc, series) = first
    ev: tuple[Evidence, ...] = (
        _ev(
            "rtt_increase_ms",
            inc,
            "ms",
            t.name,
            "classroom.loaded_rtt_increase",
            Text("evidence.bufferbloat_grade", grade=bufferbloat_grade(inc), phase=series.phase),
        ),
        _ev("idle_p50_ms", f.idle_p50(t.name), "ms", t.name),
        _ev("loaded_p50_ms", series.stats.p50_ms, "ms", t.name),
    )
    hop_note = _hop_note(f, t, "evidence.queue_before_hop")
    hop = f.path_hop(t.name)
    if hop_note and hop is not None:
        ev += (_ev("hop_ttl", float(hop.ttl), "", t.name, note=hop_note),)
    # the rise is what users feel and what smart queueing fixes, so from grade C it outranks the
    # shortfall that fills the queue (where the confidence alone does not, _weigh_contradictions does)
    return Finding(_clamp(0.6 + min(inc, 400) / 800), _segment_after(f, t.name), ev)


def high_latency(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    lim = inp.profile.limits["rtt_ms"]
    far = f.farthest_idle()
    if not far or far.role == "gateway" or (far.stats.p50_ms or 0) < lim.fail:
        return None
    centers = [f.idle_p50(t.name) for t in f.by_role("center")]
    c = next((x for x in centers if x is not None), None)
    segment = "center" if c is not None and c >= 0.5 * (far.stats.p50_ms or 0) else "internet"
    gw = next((f.idle_p50(t.name) for t in f.by_role("gateway")), None)
    conf = 0.65 if gw is not None and gw < lim.warn_or_fail() else 0.5
    ev = (
        _ev("rtt_p50_ms", far.stats.p50_ms, "ms", far.target, "classroom.rtt"),
        _ev("center_rtt_p50_ms", c, "ms", "center"),
        _ev("gateway_rtt_p50_ms", gw, "ms", "gateway"),
    )
    return Finding(_clamp(conf + min((far.stats.p50_ms or 0) / lim.fail - 1, 1) * 0.2), segment, ev)


PER_FLOW_RATIO = 0.35
"""One flow at or below this share of many flows' goodput is a per-flow limit."""


def per_flow_limit(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    # nearest server first: the limit sits on the path to the first server that shows it
    for t in f.targets:
        b1 = f.throughput(t.name, "download", single=True)
        multi = f.throughput(t.name, "download")
        # "far less": a healthy single TCP flow on a 30 ms path reads 40-80% of many flows (CUBIC's
        # sawtooth at a shaper); a per-flow shaper leaves it at 1/streams or below
        if not b1 or not multi or not b1.goodput_mbps or not multi.goodput_mbps or b1.goodput_mbps > PER_FLOW_RATIO * multi.goodput_mbps:
            continue
        ratio = b1.goodput_mbps / multi.goodput_mbps
        # every one of N streams held at the single-stream rate is a per-flow shaper's signature,
        # and it means the multi-stream "capacity" is only N x the per-flow cap
        # (or N-1 x: a hashing shaper puts two of four streams in one bucket about one time in ten)
        shaped = any(abs(multi.goodput_mbps / (b1.goodput_mbps * k) - 1.0) <= 0.2 for k in {multi.streams, max(2, multi.streams - 1)})
        note = Text("evidence.streams_per_flow_cap" if shaped else "evidence.streams", streams=multi.streams)
        ev = (
            _ev("single_stream_mbps", b1.goodput_mbps, "Mbps", t.name),
            _ev("multi_stream_mbps", multi.goodput_mbps, "Mbps", t.name, note=note),
        )
        conf = 0.5 + 1.5 * (PER_FLOW_RATIO - ratio) + (0.15 if shaped else 0.0)
        return Finding(_clamp(conf), _segment_after(f, t.name), ev, explains_capacity=shaped)
    return None


def no_connectivity(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    for i, t in enumerate(f.targets):  # nearest silent hop first
        later_answered = any(not f.silent(u.name) and u.name in f.idle and f.idle[u.name].stats.received for u in f.targets[i + 1 :])
        if f.silent(t.name) and not later_answered:  # a hop that ignores probes but passes traffic is not a break
            s = f.idle.get(t.name)
            ev = (
                _ev("answered_pct", 0.0, "%", t.name, f"path.reachable.{t.name}", s.error if s and s.error else Text("evidence.no_answer")),
            )
            return Finding(0.9, _segment_after(f, t.name), ev)
    return None


SESSION_ERROR_KINDS = ("refused", "reset", "timeout")


def session_limit(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    found = _session_limit_from_load(f)
    if found is not None:
        return found
    hit = [b for b in f.bandwidth if b.error_kind in ("refused", "reset") and b.bytes_total > 0]
    if not hit:
        return None
    ev = tuple(_ev("failed_streams", None, "", b.target, note=b.error) for b in hit[:3])
    return Finding(0.5, "gateway", ev)


def _session_limit_from_load(f: Facts) -> Optional[Finding]:
    """Connection failures that appear past some concurrency and grow with it, while the
    goodput at that point is well below what the multi-stream test moved on the same path."""
    if f.load is None:
        return None
    target = f.load.target
    steps = [st for st in f.load.steps if st.connections_opened]
    if len(steps) < 2:
        return None

    def failed(st: LoadStep) -> int:
        return st.failed_connections(SESSION_ERROR_KINDS)

    first = next((i for i, st in enumerate(steps) if failed(st) >= max(2, 0.05 * st.connections_opened)), None)
    if first is None:
        return None
    later = steps[first:]
    growing = all(failed(b) >= failed(a) for a, b in zip(later, later[1:]))
    clean_before = all(failed(st) == 0 for st in steps[:first])
    full_at_start = False
    if first == 0:
        # failing from the first step is a table already full at the first count only if the
        # connections that got through hold at one number at every step while the failures grow
        # (a server that refuses everyone lets none through; a table smaller than the first step's
        # count holds that many at every step while the refusals grow)
        peaks = [st.peak_open_connections for st in steps]
        full_at_start = min(peaks) > 0 and max(peaks) <= 1.1 * min(peaks) and growing and failed(steps[-1]) > failed(steps[0])
        if not full_at_start:
            return None
    line = f.throughput(target, "download")
    goodput = steps[first].goodput_mbps
    spare = line is not None and line.goodput_mbps is not None and goodput < 0.7 * line.goodput_mbps
    if not (spare and clean_before):
        return None
    conf = 0.7 + (0.15 if growing else 0.0)
    prev = steps[first - 1] if first else steps[0]
    ev = (
        _ev(
            "connections_without_errors",
            float(prev.peak_open_connections),
            "",
            target,
            note=Text("evidence.connections_held") if full_at_start else Text("evidence.before_failures"),
        ),
        _ev(
            "failed_connections",
            float(failed(steps[first])),
            "",
            target,
            note=Text(
                "evidence.failed_at",
                connections=steps[first].connections_opened,
                errors=", ".join(f"{k} {v}" for k, v in steps[first].errors.items() if v),
            ),
        ),
        _ev("load_goodput_mbps", goodput, "Mbps", target, note=Text("evidence.bandwidth_spare")),
        _ev("line_download_mbps", line.goodput_mbps if line else None, "Mbps", target),
    )
    return Finding(_clamp(conf), "gateway", ev)


def measuring_device(inp: TriageInput) -> Optional[Finding]:
    link = inp.host.get("link_speed_mbps")
    wifi = inp.host.get("wifi") or {}
    signal = wifi.get("signal_dbm")
    line = inp.facts.line("download")
    ev: list[Evidence] = []
    conf = 0.0
    if link is not None and line and line.goodput_mbps and line.goodput_mbps >= 0.85 * link:
        ev.append(_ev("link_speed_mbps", link, "Mbps", note=Text("evidence.own_interface")))
        conf = 0.7
    if signal is not None and signal < -70:
        ev.append(_ev("wifi_signal_dbm", signal, "dBm", note=Text("evidence.weak_wifi")))
        conf = max(conf, 0.55)
    return Finding(conf, "device", tuple(ev)) if ev else None


IPV4_CONGESTION_RATIO = 2.0
"""IPv6 downloads at least this many times what IPv4 does from the same server: IPv4 is congested."""
IPV4_RTT_RATIO = 2.0
IPV4_RTT_MIN_EXTRA_MS = 20.0
"""Or IPv4's connect RTT is at least twice IPv6's and at least this much longer."""
FAMILY_MIN_SAMPLES = 5
"""Post-warm-up throughput samples, and answered connects, each family needs to be compared."""


def _steady_samples(b: BandwidthMeasurement) -> int:
    skip = int(round(b.warmup_s / b.interval_s)) if b.interval_s else 0
    return max(0, len(b.samples_mbps) - skip)


def ipv4_congestion(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    best: Optional[Finding] = None
    for t in f.targets:
        fam = {p.family: p for p in f.families if p.target == t.name and p.status == "ok"}
        v4, v6 = fam.get("ipv4"), fam.get("ipv6")
        if v4 is None or v6 is None:
            continue  # one family not measured (no IPv6 route ...): nothing to compare, not a fault
        d4, d6 = v4.download, v6.download
        tput = None
        if d4 and d6 and d4.goodput_mbps and d6.goodput_mbps and min(_steady_samples(d4), _steady_samples(d6)) >= FAMILY_MIN_SAMPLES:
            tput = d6.goodput_mbps / d4.goodput_mbps
        r4 = v4.rtt.stats if v4.rtt and v4.rtt.stats.received >= FAMILY_MIN_SAMPLES else None
        r6 = v6.rtt.stats if v6.rtt and v6.rtt.stats.received >= FAMILY_MIN_SAMPLES else None
        slow_rtt = bool(
            r4
            and r6
            and r4.p50_ms is not None
            and r6.p50_ms is not None
            and r4.p50_ms >= IPV4_RTT_RATIO * r6.p50_ms
            and r4.p50_ms - r6.p50_ms >= IPV4_RTT_MIN_EXTRA_MS
        )
        slow_tput = tput is not None and tput >= IPV4_CONGESTION_RATIO
        if not (slow_tput or slow_rtt):
            continue
        if slow_tput:
            assert tput is not None
            conf = 0.6 + 0.15 * min(math.log2(tput) - 1.0, 2.0) + (0.05 if slow_rtt else 0.0)
        else:
            conf = 0.5
        ev = (
            _ev(
                "ipv4_download_mbps",
                d4.goodput_mbps if d4 else None,
                "Mbps",
                t.name,
                note=Text("evidence.family_address", address=v4.address),
            ),
            _ev(
                "ipv6_download_mbps",
                d6.goodput_mbps if d6 else None,
                "Mbps",
                t.name,
                note=Text("evidence.family_address", address=v6.address),
            ),
            _ev("ipv4_connect_p50_ms", r4.p50_ms if r4 else None, "ms", t.name),
            _ev("ipv6_connect_p50_ms", r6.p50_ms if r6 else None, "ms", t.name),
        )
        found = Finding(_clamp(conf), "uplink", ev)
        if best is None or found.confidence > best.confidence:
            best = found
    return best


PROXY_TTFB_RATIO = 3.0
"""Time to first byte through the proxy at least this many times the TCP connect RTT to it ..."""
PROXY_OVERHEAD_MIN_MS = 100.0
"""... and at least this much above what the path explains (two round trips to the farther of
the proxy and the server: the request, and the proxy's own connection upstream)."""
PROXY_MIN_SAMPLES = 5


def proxy_overhead(inp: TriageInput) -> Optional[Finding]:
    f = inp.facts
    rep = f.proxy
    if rep is None:
        return None
    best: Optional[Finding] = None
    for p in rep.paths:
        if not p.proxy or p.ttfb is None or p.connect is None:
            continue
        if p.ttfb.stats.received < PROXY_MIN_SAMPLES or p.connect.stats.received < 3:
            continue
        ttfb, conn = p.ttfb.stats.p50_ms, p.connect.stats.p50_ms
        if ttfb is None or conn is None:
            continue
        direct = f.idle_p50(p.target)  # ICMP/UDP/TCP echo: never through the proxy
        overhead = ttfb - 2.0 * max(conn, direct or 0.0)
        if ttfb < PROXY_TTFB_RATIO * conn or overhead < PROXY_OVERHEAD_MIN_MS:
            continue
        # without a direct RTT to the server a distant server could explain part of it
        conf = (0.6 if direct is not None else 0.45) + 0.3 * min(overhead / 500.0, 1.0)
        ev = (
            _ev("ttfb_p50_ms", ttfb, "ms", p.target, note=Text("evidence.through_proxy", proxy=p.proxy)),
            _ev("proxy_connect_p50_ms", conn, "ms", p.ttfb.host, note=Text("evidence.proxy_connect")),
            _ev("direct_rtt_p50_ms", direct, "ms", p.target, note=Text("evidence.direct_rtt")),
            _ev("proxy_overhead_ms", overhead, "ms", p.target),
        )
        found = Finding(_clamp(conf), "center", ev)
        if best is None or found.confidence > best.confidence:
            best = found
    return best


RULES: tuple[Rule, ...] = (
    Rule("dns-slow.p50", "dns-slow", dns_slow, "a resolver's cold or warm p50 is above the profile's DNS limit"),
    Rule(
        "dns-failure.timeouts-servfail", "dns-failure", dns_failure, "timeouts plus SERVFAIL/REFUSED reach the profile's DNS timeout limit"
    ),
    Rule("lan-loss.gateway", "lan-loss", lan_loss, "loss or jitter to the gateway above the profile's gateway limits"),
    Rule(
        "uplink-loss.beyond-gateway",
        "uplink-loss",
        uplink_loss,
        "loss to the center or internet above the limit while the gateway is clean",
    ),
    Rule(
        "lan-capacity.plateau-or-gateway-queue",
        "lan-capacity",
        lan_capacity,
        "a multi-stream plateau at 85-97 Mbit/s, or gateway RTT inflating under load",
    ),
    Rule(
        "uplink-capacity.first-offsite-short",
        "uplink-capacity",
        uplink_capacity,
        "bandwidth to the first off-site server is below the need while the gateway stays flat",
    ),
    Rule(
        "center-capacity.fast-center-slow-internet",
        "center-capacity",
        center_capacity,
        "the center downloads more than twice as fast as the internet target",
    ),
    Rule(
        "bufferbloat.loaded-increase",
        "bufferbloat",
        bufferbloat,
        "RTT under load rises above the profile's loaded-increase limit at some hop",
    ),
    Rule("high-latency.idle-rtt", "high-latency", high_latency, "idle RTT to the farthest target above the profile's RTT limit"),
    Rule("per-flow-limit.single-vs-multi", "per-flow-limit", per_flow_limit, "one stream gets at most 35% of what several streams get"),
    Rule("no-connectivity.silent-hop", "no-connectivity", no_connectivity, "a target answers no probe at all"),
    Rule(
        "session-limit.connection-errors",
        "session-limit",
        session_limit,
        "connection failures begin past some concurrency in the load ramp (or some parallel streams are refused) while bandwidth is spare",
    ),
    Rule(
        "measuring-device.nic-or-wifi",
        "measuring-device",
        measuring_device,
        "throughput at the device's own link speed, or a weak Wi-Fi signal",
    ),
    Rule(
        "ipv4-congestion.ipv6-faster",
        "ipv4-congestion",
        ipv4_congestion,
        "IPv6 downloads at least twice what IPv4 does from the same server (or IPv4's RTT is twice IPv6's)",
    ),
    Rule(
        "proxy-overhead.ttfb-vs-connect",
        "proxy-overhead",
        proxy_overhead,
        "time to first byte through the proxy is 3x its connect RTT and 100 ms above what the path explains",
    ),
)


def bufferbloat_grade(increase_ms: float) -> str:
    """Grade of the latency increase under load (A+ < 5 ms ... F >= 400 ms)."""
    for limit, grade in ((5, "A+"), (30, "A"), (60, "B"), (200, "C"), (400, "D")):
        if increase_ms < limit:
            return grade
    return "F"


def _lower(merged: dict[str, tuple[Finding, list[str]]], cause: str, by: float) -> None:
    if cause in merged:
        f, ids = merged[cause]
        merged[cause] = (Finding(_clamp(f.confidence - by), f.segment, f.evidence, f.explains_capacity), ids)


def _weigh_contradictions(merged: dict[str, tuple[Finding, list[str]]], inp: TriageInput) -> None:
    """Lower causes that another, better-supported cause explains (consequences, not causes)."""
    # a capacity shortfall at the LAN and at the uplink: the weaker one yields
    if "lan-capacity" in merged and "uplink-capacity" in merged:
        lan, up = merged["lan-capacity"][0], merged["uplink-capacity"][0]
        _lower(merged, "uplink-capacity" if lan.confidence >= up.confidence else "lan-capacity", 0.2)
    # nothing past a silent hop can be judged, and a resolver behind it times out by consequence
    if "no-connectivity" in merged and merged["no-connectivity"][0].confidence >= 0.5:
        for cid in ("uplink-capacity", "center-capacity", "high-latency"):
            _lower(merged, cid, 0.3)
        if _dns_failures_are_timeouts(inp):
            _lower(merged, "dns-failure", 0.5)
    # a per-flow cap caps the multi-stream figure at streams x cap: the "shortfall" is its consequence
    pf = merged.get("per-flow-limit")
    if pf and pf[0].explains_capacity and pf[0].confidence >= 0.5:
        for cid in ("uplink-capacity", "lan-capacity", "center-capacity"):
            _lower(merged, cid, 0.3)
    # a far longer RTT to the internet than to the center slows TCP there by itself
    if "center-capacity" in merged and _rtt_ratio(inp, "internet", "center") >= 2.0:
        _lower(merged, "center-capacity", 0.3)
    # IPv6 carries more over the same line: the capacity shortfall is IPv4's (PPPoE), not the line's
    if "ipv4-congestion" in merged and merged["ipv4-congestion"][0].confidence >= 0.5:
        for cid in ("uplink-capacity", "center-capacity"):
            _lower(merged, cid, 0.3)
    # packet loss makes TCP slow (and one flow slower than many) and makes DNS queries time out
    lossy = [c for c in ("lan-loss", "uplink-loss") if c in merged and merged[c][0].confidence >= 0.5]
    if lossy:
        for cid in ("per-flow-limit", "uplink-capacity", "lan-capacity", "center-capacity"):
            _lower(merged, cid, 0.35)
        if _dns_failures_are_timeouts(inp):
            _lower(merged, "dns-failure", 0.4)
    # one flow far below many on a path whose idle RTT is itself too long: TCP's window over that
    # RTT (and slow start in a short test) explains the gap, and the RTT is the cause to fix first
    pf = merged.get("per-flow-limit")
    if pf and "high-latency" in merged and merged["high-latency"][0].confidence >= 0.5:
        where = next((e.target for e in pf[0].evidence if e.target), None)
        p50 = inp.facts.idle_p50(where) if where and inp.facts is not None else None
        if p50 is not None and p50 >= inp.profile.limits["rtt_ms"].fail:
            _lower(merged, "per-flow-limit", 0.25)
    # a queue that rises grade C or worse under load, in the segment of a capacity shortfall: the
    # rise is what lessons feel and smart queueing fixes it, so it ranks above the shortfall that
    # fills the queue (a short test catches the queue before it is full)
    bb = merged.get("bufferbloat")
    if bb and bb[0].confidence >= 0.5:
        for cid in ("lan-capacity", "uplink-capacity", "center-capacity"):
            if cid in merged and merged[cid][0].segment == bb[0].segment:
                _lower(merged, cid, 0.1)
    # the internet at most half the center's rate (still claimed after the above): the narrowest
    # point is beyond the center, so a center leg also short of the need ranks below it (by
    # confidence, not by the order of the ids)
    if "center-capacity" in merged and merged["center-capacity"][0].confidence >= 0.5 and "uplink-capacity" in merged:
        _lower(merged, "uplink-capacity", 0.1)


def _rtt_ratio(inp: TriageInput, far: str, near: str) -> float:
    """Idle p50 RTT to the worst ``far``-role target over that to the best ``near``-role target."""
    if inp.facts is None:
        return 0.0
    f = inp.facts
    fars = [x for t in f.by_role(far) if (x := f.idle_p50(t.name)) is not None]
    nears = [x for t in f.by_role(near) if (x := f.idle_p50(t.name))]
    return max(fars) / min(nears) if fars and nears else 0.0


def _dns_failures_are_timeouts(inp: TriageInput) -> bool:
    if inp.facts is None:
        return False
    rcodes = [r for d in inp.facts.dns for r in d.rcodes]
    return not any(r in ("SERVFAIL", "REFUSED") for r in rcodes)


def triage(inp: TriageInput, rules: tuple[Rule, ...] = RULES) -> list[Cause]:
    """Apply every rule; merge findings per cause; rank by confidence (highest first)."""
    merged: dict[str, tuple[Finding, list[str]]] = {}
    for rule in rules:
        found = rule.condition(inp)
        if found is None:
            continue
        if rule.cause in merged:
            old, ids = merged[rule.cause]
            best = found if found.confidence > old.confidence else old
            merged[rule.cause] = (
                Finding(best.confidence, best.segment, old.evidence + found.evidence, old.explains_capacity or found.explains_capacity),
                ids + [rule.id],
            )
        else:
            merged[rule.cause] = (found, [rule.id])
    _weigh_contradictions(merged, inp)
    causes = [
        Cause(id=cid, segment=f.segment, confidence=f.confidence, evidence=f.evidence, advice=f"advice.{cid}", rules=tuple(ids))
        for cid, (f, ids) in merged.items()
    ]
    return sorted(causes, key=lambda c: (-c.confidence, c.id))
