"""Builders for synthetic results: measurements a test can read at a glance.

Every builder takes the few numbers a test cares about and fills the rest with plausible
values, so a test reads "gateway 1 ms, internet 180 ms, 40 Mbit/s down" and nothing more.
Nothing here touches the network.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from giga_netcheck.config.profiles import load_profile
from giga_netcheck.core import load as load_analysis
from giga_netcheck.core.facts import Facts
from giga_netcheck.core.models import (
    SCHEMA_VERSION,
    BandwidthMeasurement,
    Cause,
    Check,
    Classroom,
    DiscoveredPath,
    DnsAgreement,
    DnsSeries,
    Evidence,
    FamilyPath,
    LatencySeries,
    LatencyStats,
    LoadCaps,
    LoadClassroom,
    LoadHop,
    LoadIdle,
    LoadResult,
    LoadStep,
    Measurements,
    NotMeasured,
    PathHop,
    ProbeRecord,
    ProxyPath,
    ProxyReport,
    RunResult,
    School,
    Target,
)
from giga_netcheck.core.profile import Limit, Profile
from giga_netcheck.core.stats import percentile, summarize_rtts
from giga_netcheck.core.thresholds import evaluate
from giga_netcheck.core.triage import TriageInput

# ------------------------------------------------------------------------------ targets

GATEWAY = Target("gateway", "gateway", "192.168.1.1")
CENTER = Target("center", "center", "10.0.0.10", "http://10.0.0.10:8080")
INTERNET = Target("internet", "internet", "203.0.113.5", "http://203.0.113.5:8080")
ALL_TARGETS = (GATEWAY, CENTER, INTERNET)
NO_CENTER = (GATEWAY, INTERNET)

_BY_NAME = {t.name: t for t in ALL_TARGETS}


def target(name: str, role: Optional[str] = None, host: Optional[str] = None, url: Optional[str] = None) -> Target:
    """A target; the three standard names come with their role and address."""
    if name in _BY_NAME and role is None and host is None and url is None:
        return _BY_NAME[name]
    return Target(name, role or name, host or f"{name}.example", url)


def _role(name: str) -> str:
    return _BY_NAME[name].role if name in _BY_NAME else "internet"


def _host(name: str) -> str:
    return _BY_NAME[name].host if name in _BY_NAME else f"{name}.example"


# ------------------------------------------------------------------------------ latency


def rtts(ms: float, n: int = 20, lost: int = 0, spread: float = 0.0) -> tuple[Optional[float], ...]:
    """``n`` probes around ``ms`` (alternating +/- ``spread``), the last ``lost`` of them lost."""
    got = [round(ms + (spread if i % 2 else -spread), 3) for i in range(n - lost)]
    return tuple(got) + (None,) * lost


def latency(
    name: str,
    values: Sequence[Optional[float]] | float,
    *,
    phase: str = "idle",
    role: Optional[str] = None,
    method: str = "icmp",
    error: Optional[str] = None,
    error_kind: Optional[str] = None,
) -> LatencySeries:
    """A latency series; a bare number means 20 probes at that RTT."""
    series = rtts(values) if isinstance(values, (int, float)) else tuple(values)
    return LatencySeries(
        target=name,
        role=role or _role(name),
        host=_host(name),
        method=method,
        phase=phase,
        rtts_ms=series,
        stats=summarize_rtts(series),
        error=error,
        error_kind=error_kind,
    )


def silent(name: str, n: int = 20, error: Optional[str] = "no answer") -> LatencySeries:
    """A series where every probe was lost."""
    return latency(name, (None,) * n, error=error, error_kind="timeout" if error else None)


# ---------------------------------------------------------------------------- bandwidth


def bandwidth(
    name: str,
    mbps: Optional[float],
    *,
    direction: str = "download",
    streams: int = 4,
    role: Optional[str] = None,
    duration_s: float = 7.0,
    warmup_s: float = 1.5,
    bytes_total: Optional[int] = None,
    error: Optional[str] = None,
    error_kind: Optional[str] = None,
) -> BandwidthMeasurement:
    """A throughput test with flat per-interval samples at ``mbps``."""
    t = _BY_NAME.get(name)
    url = t.url if t and t.url else f"http://{_host(name)}:8080"
    samples = tuple([mbps] * 14) if mbps is not None else ()
    if bytes_total is None:
        bytes_total = int((mbps or 0.0) * 1e6 / 8 * (duration_s - warmup_s))
    return BandwidthMeasurement(
        target=name,
        role=role or _role(name),
        url=url,
        direction=direction,
        streams=streams,
        engine="http",
        duration_s=duration_s,
        warmup_s=warmup_s,
        interval_s=0.5,
        goodput_mbps=mbps,
        p50_mbps=mbps,
        p90_mbps=mbps,
        bytes_total=bytes_total,
        samples_mbps=samples,
        per_stream_mbps=tuple([mbps / streams] * streams) if mbps else (),
        error=error,
        error_kind=error_kind,
    )


# ---------------------------------------------------------------------------------- dns


def dns(
    p50_ms: Optional[float],
    *,
    kind: str = "warm",
    server: str = "192.168.1.1",
    resolver: str = "system",
    name: str = "www.mext.go.jp",
    n: int = 5,
    timeouts: int = 0,
    rcodes: Optional[Sequence[str]] = None,
) -> DnsSeries:
    """``n`` queries answered at ``p50_ms``, the last ``timeouts`` of them timed out."""
    answered = n - timeouts
    times = tuple([p50_ms] * answered if p50_ms is not None else [None] * answered) + (None,) * timeouts
    got = [t for t in times if t is not None]
    if rcodes is None:
        rcodes = ["NOERROR"] * answered + ["TIMEOUT"] * timeouts
    return DnsSeries(
        resolver=resolver,
        server=server,
        name=name,
        kind=kind,
        times_ms=times,
        rcodes=tuple(rcodes),
        answers=("203.0.113.80",) if kind == "warm" and got else (),
        timeouts=sum(1 for t in times if t is None),
        p50_ms=percentile(got, 50),
        p95_ms=percentile(got, 95),
    )


# ------------------------------------------------------------------------- measurements


def measurements(
    latency: Iterable[LatencySeries] = (),
    bandwidth: Iterable[BandwidthMeasurement] = (),
    dns: Iterable[DnsSeries] = (),
    dns_agreement: Iterable[DnsAgreement] = (),
    load: Optional[LoadResult] = None,
) -> Measurements:
    return Measurements(tuple(bandwidth), tuple(latency), tuple(dns), tuple(dns_agreement), load)


def healthy_latency() -> list[LatencySeries]:
    """Idle and loaded series of a healthy path: 1 / 5 / 15 ms, +3 ms under load."""
    return [
        latency("gateway", rtts(1.0, spread=0.2)),
        latency("center", rtts(5.0, spread=0.5)),
        latency("internet", rtts(15.0, spread=1.0)),
        latency("gateway", rtts(1.5, spread=0.2), phase="download"),
        latency("center", rtts(7.0, spread=0.5), phase="download"),
        latency("internet", rtts(18.0, spread=1.0), phase="download"),
        latency("gateway", rtts(1.5, spread=0.2), phase="upload"),
        latency("internet", rtts(17.0, spread=1.0), phase="upload"),
    ]


def healthy_bandwidth() -> list[BandwidthMeasurement]:
    return [
        bandwidth("center", 850.0),
        bandwidth("center", 600.0, direction="upload"),
        bandwidth("internet", 600.0),
        bandwidth("internet", 400.0, direction="upload"),
        bandwidth("internet", 420.0, streams=1),
    ]


def healthy_dns() -> list[DnsSeries]:
    return [dns(3.0), dns(25.0, kind="cold"), dns(4.0, name="classroom.google.com")]


def healthy_measurements() -> Measurements:
    return measurements(healthy_latency(), healthy_bandwidth(), healthy_dns())


HEALTHY_HOST: dict[str, Any] = {
    "os": "linux",
    "link_speed_mbps": 10000,
    "gateway_ipv4": "192.168.1.1",
    "resolvers": ["192.168.1.1"],
}


def facts(m: Measurements, targets: Sequence[Target] = ALL_TARGETS, probes: Sequence[ProbeRecord] = ()) -> Facts:
    return Facts.of(tuple(targets), m, tuple(probes))


# ----------------------------------------------------------------------------- profiles


def default_profile() -> Profile:
    """The shipped default profile (the numbers the triage tests are written against)."""
    return load_profile("default")


def profile(
    name: str = "test",
    *,
    down: float = 1.0,
    up: float = 0.5,
    share: float = 1.0,
    margin: float = 1.25,
    limits: Optional[dict[str, Limit]] = None,
    recommendation: str = "mext-2024",
) -> Profile:
    """A profile built in memory with round numbers (limits default to the shipped default's)."""
    base = default_profile()
    return Profile(
        name=name,
        description="synthetic",
        down_mbps_per_device=down,
        up_mbps_per_device=up,
        active_share=share,
        warn_margin=margin,
        sources={"down_mbps_per_device": "test down", "up_mbps_per_device": "test up"},
        limits={**base.limits, **(limits or {})},
        school_recommendation=recommendation,
    )


# -------------------------------------------------------------------------------- triage


def triage_input(
    m: Measurements,
    *,
    targets: Sequence[Target] = ALL_TARGETS,
    host: Optional[dict[str, Any]] = None,
    school: School = School("s1", "Test school", None),
    classrooms: Sequence[Classroom] = (Classroom("3-2", 35, "default"),),
    prof: Optional[Profile] = None,
) -> TriageInput:
    """Facts, checks (from thresholds.evaluate) and profile for the triage, as the runner builds them."""
    prof = prof or default_profile()
    f = facts(m, targets)
    profiles = {c.profile: prof for c in classrooms}
    checks = evaluate(f, school, tuple(classrooms), profiles)
    return TriageInput(f, tuple(checks), prof, dict(HEALTHY_HOST if host is None else host))


# ---------------------------------------------------------------------------- run result


def run_result(m: Optional[Measurements] = None, **over: Any) -> RunResult:
    """A complete RunResult with every nested type populated (checks and causes included)."""
    default_m = m is None
    m = (
        m
        if m is not None
        else measurements(
            healthy_latency() + [silent("extra")],
            healthy_bandwidth() + [bandwidth("internet", None, error="refused", error_kind="refused", bytes_total=0)],
            healthy_dns() + [dns(None, n=3, timeouts=3, server="10.0.0.53", resolver="10.0.0.53")],
            [DnsAgreement("www.mext.go.jp", False, {"system@192.168.1.1": ("203.0.113.80",), "10.0.0.53@10.0.0.53": ()})],
            sample_load(),
        )
    )
    if default_m:
        m = replace_dc(m, paths=(discovered_path(),))
        m = replace_dc(
            m,
            families=(family_path("internet", "ipv4", 280.0), family_path("internet", "ipv6", 290.0)),
            proxy=proxy_report("internet", 35.0, 30.0),
        )
    fields: dict[str, Any] = dict(
        schema_version=SCHEMA_VERSION,
        run_id="0b7c5a52-3f9e-4c1e-9d38-4d1b3c2f0a11",
        tool_version="0.1.0",
        started_at="2026-06-03T11:20:05+09:00",
        finished_at="2026-06-03T11:21:02+09:00",
        duration_s=57.125,
        status="warn",
        school=School("tokyo-minato-01", "港区立第一小学校", 420),
        classrooms=(Classroom("3-2", 35, "default"), Classroom("pc-room", 40, "video-lesson")),
        profile="default",
        site_file="/home/staff/site.yaml",
        mode="full",
        host={"os": "linux", "link_speed_mbps": 1000, "resolvers": ["192.168.1.1"], "wifi": None, "python": "3.11.7"},
        targets=ALL_TARGETS + (Target("extra", "internet", "198.51.100.9"),),
        measurements=m,
        probes=(
            ProbeRecord("latency", "ok", seconds=2.5),
            ProbeRecord("dns", "partial", "10.0.0.53: timeout", "timeout", 6.0),
            ProbeRecord("bandwidth", "ok", seconds=30.25),
        ),
        checks=(
            Check(
                "classroom.bandwidth.down", "3-2", "download_mbps", 600.0, 24.5, 30.625, "Mbps", "higher", "pass", "profile default: MEXT"
            ),
            Check(
                "school.bandwidth.mext", None, "download_mbps", 600.0, 466.5, None, "Mbps", "higher", "pass", "MEXT", "420 students", True
            ),
            Check("classroom.dns.cold_p50", "3-2", "dns_p50_ms", None, 100.0, 50.0, "ms", "lower", "not-measured", "profile default"),
        ),
        causes=(
            Cause(
                "dns-failure",
                "dns",
                0.75,
                (
                    Evidence("dns_timeout_pct", 16.667, "%", check_id="classroom.dns.timeouts"),
                    Evidence("dns_servfail_pct", 0.0, "%", note="SERVFAIL or REFUSED answers"),
                ),
                "advice.dns-failure",
                ("dns-failure.timeouts-servfail",),
            ),
        ),
        not_measured=("center: no center server configured",),
        interrupted=False,
        not_measured_messages=(NotMeasured("center: no center server configured", "not_measured.no_center", {}, "center"),),
    )
    fields.update(over)
    return RunResult(**fields)


def check_by(checks: Iterable[Check], cid: str, classroom: Optional[str] = None) -> Check:
    """The one check with this id (and classroom); fails the test if there is not exactly one."""
    found = [c for c in checks if c.id == cid and (classroom is None or c.classroom == classroom)]
    assert len(found) == 1, f"expected one {cid} ({classroom}), got {len(found)}"
    return found[0]


# ------------------------------------------------------------- IPv4 vs IPv6, proxies


def family_path(
    name: str,
    family: str,
    mbps: Optional[float],
    rtt_ms: Optional[float] = 30.0,
    *,
    status: str = "ok",
    n_rtt: int = 20,
    reason: Optional[str] = None,
) -> FamilyPath:
    """One target over one family: TCP connects at ``rtt_ms`` and a download at ``mbps``."""

    addr = "198.18.3.2" if family == "ipv4" else "2001:2:0:3::2"
    rtt = None if rtt_ms is None else latency(name, rtts(rtt_ms, n=n_rtt), method="tcp-connect", phase="family")
    down = None if mbps is None else replace_dc(bandwidth(name, mbps), family=family)
    return FamilyPath(name, _role(name), family, addr, status, reason, rtt, down)


def proxy_report(
    name: str = "internet",
    ttfb_ms: float = 330.0,
    connect_ms: float = 30.0,
    *,
    n: int = 10,
    proxy: Optional[str] = "http://198.18.2.2:3128",
    decided_by: str = "site",
) -> ProxyReport:
    """A proxy report with one path: connects to the proxy and TTFB through it."""

    host = "198.18.2.2"
    connect = None if proxy is None else latency(name, rtts(connect_ms, n=n), method="tcp-connect", phase="proxy")
    ttfb = None if proxy is None else latency(name, rtts(ttfb_ms, n=n), method="http-ttfb", phase="proxy")
    if connect is not None:
        connect = replace_dc(connect, host=host)
        ttfb = replace_dc(ttfb, host=host)
    t = _BY_NAME.get(name)
    url = t.url if t and t.url else f"http://{_host(name)}:8080"
    path = ProxyPath(name, _role(name), url, proxy, decided_by, connect, ttfb)
    return ProxyReport(
        detected=proxy is not None,
        source=decided_by if proxy else None,
        http=proxy,
        https=proxy,
        paths=(path,),
        probe_paths={"latency": "direct", "dns": "direct"},
    )


def replace_dc(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


# ------------------------------------------------------------------ discovered paths (traceroute)


def discovered_path(
    target_name: str = "extra",
    host: str = "198.51.100.9",
    hops: Sequence[tuple[Optional[str], Optional[str], Optional[str]]] = (
        ("192.168.1.1", "gateway", "gateway"),
        ("10.0.0.1", "hop-2", "hop"),
        (None, None, None),
        ("198.51.100.9", "extra", "internet"),
    ),
    method: str = "icmp",
    reached: bool = True,
) -> DiscoveredPath:
    """A traceroute: (address, series name, role) per TTL from 1; an address None is a silent TTL."""

    out = []
    for ttl, (addr, name, role) in enumerate(hops, 1):
        if addr is None:
            out.append(PathHop(ttl, None, None, (None, None)))
            continue
        kind = "time-exceeded" if addr != host else "echo-reply"
        out.append(
            PathHop(
                ttl,
                addr,
                kind,
                (1.0 * ttl, None),
                ("10.9.9.9",) if ttl == 2 else (),
                name,
                role,
                LatencyStats(20, 20, 0.0, 1.0, 1.0 * ttl, 1.2 * ttl, 1.5 * ttl, 0.1),
                LatencyStats(20, 19, 5.0, 2.0, 3.0 * ttl, 4.0 * ttl, 5.0 * ttl, 0.3),
                "download:center",
            )
        )
    return DiscoveredPath(target_name, host, method, reached, tuple(out), (f"{method}: reached in {len(out)} hops",), 16, 3, 2.5)


# ------------------------------------------------------------------------------- load ramp


def load_step(
    devices: int, met_share: Optional[float] = 1.0, *, connections: Optional[int] = None, goodput_mbps: float = 10.0, **kw: Any
) -> LoadStep:
    """One ramp step: ``devices`` devices of which ``met_share`` met their activity (any other LoadStep field by keyword)."""
    judged = kw.pop("judged", devices if met_share is not None else 0)
    met = kw.pop("met", round((met_share or 0.0) * judged))
    return LoadStep(
        devices=devices,
        connections=devices if connections is None else connections,
        met=met,
        judged=judged,
        met_share=met_share,
        goodput_mbps=goodput_mbps,
        **kw,
    )


def load_result(
    steps: Sequence[LoadStep], needed: int = 35, *, target: str = "center", activity: Optional[dict[str, Any]] = None, **kw: Any
) -> LoadResult:
    """The load section of a ramp with these steps, reduced as the probe reduces it (knee, supports, grades)."""
    k = load_analysis.knee(steps)
    fields: dict[str, Any] = dict(
        target=target,
        url=f"http://{target}.example:8080",
        verified_server=True,
        classroom=LoadClassroom(name="5-1", devices_needed=needed, profile="web-apps"),
        activity=activity or {"kind": "web-apps"},
        caps=LoadCaps(max_devices=300, steps=len(steps), step_s=4.0, max_duration_s=30.0, max_bytes=2 * 10**9),
        planned_devices=tuple(s.devices for s in steps),
        meet_share=load_analysis.MEET_SHARE,
        steps=tuple(steps),
        knee=k,
        supports=load_analysis.supports(k, needed),
        responsiveness=load_analysis.responsiveness(steps),
        bufferbloat=load_analysis.bufferbloat(steps),
    )
    fields.update(kw)
    return LoadResult(**fields)


def sample_load() -> LoadResult:
    """A ramp with every load type populated: idle and loaded hops, a knee, a cut step."""
    hops = lambda inc: (  # noqa: E731
        LoadHop(
            target="center",
            role="center",
            method="icmp",
            p50_ms=5.0 + inc,
            p95_ms=7.0 + inc,
            loss_pct=0.0,
            idle_p50_ms=5.0,
            increase_ms=inc,
            grade=load_analysis.grade(inc),
            rtts_ms=(5.0 + inc, None),
        ),
    )
    steps = [
        load_step(10, 1.0, goodput_mbps=25.0, errors={"refused": 0}, rpm=1800.0, working_rtt_ms=33.3, latency=hops(3.0)),
        load_step(20, 0.9, goodput_mbps=48.0, errors={"refused": 4}, error_examples=("refused: [Errno 111]",), latency=hops(40.0)),
        load_step(30, 0.2, goodput_mbps=49.0, complete=False, stopped="interrupted", latency=hops(90.0)),
    ]
    return load_result(
        steps,
        20,
        activity={"kind": "video", "bitrate_mbps": 2.5, "segment_s": 2.0, "pass": "every segment in time"},
        stopped="interrupted",
        idle={"center": LoadIdle(p50_ms=5.0, method="icmp", rtts_ms=(5.0, 5.1))},
    )
