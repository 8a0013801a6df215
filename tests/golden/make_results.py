"""Build the stored results the golden tests replay every renderer over (no network).

    python -m tests.golden.make_results            # rewrite results/*.json (not the v1 fixture)
    python -m tests.golden.make_results --v1       # also rewrite results/v1-schema.json (rarely!)

Each result is made from the package's own models with fixed numbers, ids and timestamps, then
concluded (thresholds + triage) with the shipped profiles, exactly as ``report`` would. The
stored JSON is the fixture: the golden tests load it from disk with ``results.load`` and never
call this module, so a change to thresholds or triage does not silently change the fixtures.

``v1-schema.json`` is the schema-version-1 fixture: written once by the schema-1 code and kept
as it is when the schema moves on, so the tests prove that an old document still loads
(``results.upgrade``) and renders. Do not regenerate it after a schema change.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional, Sequence

from giga_netcheck.config.profiles import load_profile
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import (
    SCHEMA_VERSION,
    BandwidthMeasurement,
    Classroom,
    DiscoveredPath,
    DnsAgreement,
    DnsSeries,
    FamilyPath,
    LatencySeries,
    Measurements,
    PathHop,
    ProbeRecord,
    ProxyPath,
    ProxyReport,
    RunResult,
    School,
    Target,
)
from giga_netcheck.core.results import dumps, write_atomic
from giga_netcheck.core.stats import percentile, summarize_rtts
from giga_netcheck.measure.runner import conclude

HERE = Path(__file__).parent
RESULTS = HERE / "results"
V1 = "v1-schema"

GATEWAY = Target("gateway", "gateway", "192.168.10.1")
CENTER = Target("center", "center", "10.20.0.10", "http://10.20.0.10:8080")
INTERNET = Target("internet", "internet", "speed.edu-net.example.jp", "http://speed.edu-net.example.jp:8080")
SCHOOL = School("tokyo-minato-01", "港区立第一小学校", 420)
ROOMS = (Classroom("3-2", 35, "default"), Classroom("PC室", 40, "video-lesson"))

HOST: dict[str, Any] = {
    "os_name": "Linux",
    "os_version": "Ubuntu 24.04.1 LTS",
    "hostname": "gnc-laptop-07",
    "interface": "enp3s0",
    "gateway_ipv4": "192.168.10.1",
    "gateway_ipv6": "fe80::1%enp3s0",
    "resolvers": ["192.168.10.1", "10.20.0.53"],
    "proxy": {"http": None, "https": None, "no_proxy": [], "pac_url": None, "source": None},
    "link_speed_mbps": 1000,
    "wifi": None,
    "raw_icmp": True,
    "dgram_icmp": True,
    "notes": [],
    "stub_resolver": "127.0.0.53",
    "python": "3.11.2",
}


# ----------------------------------------------------------------------------- builders


def rtts(ms: float, n: int = 20, lost: int = 0, spread: float = 0.4) -> tuple[Optional[float], ...]:
    """``n`` probes alternating around ``ms``; ``lost`` of them (spread through the series) lost."""
    out: list[Optional[float]] = [round(ms + (spread if i % 2 else -spread) * (1 + (i % 3) / 2), 3) for i in range(n)]
    for k in range(lost):
        out[(k * n) // max(lost, 1)] = None
    return tuple(out)


def lat(
    t: Target,
    values: Sequence[Optional[float]],
    phase: str = "idle",
    method: str = "icmp",
    error: Optional[str] = None,
    error_kind: Optional[str] = None,
) -> LatencySeries:
    return LatencySeries(t.name, t.role, t.host, method, phase, tuple(values), summarize_rtts(values), error, error_kind)


def bw(
    t: Target,
    mbps: Optional[float],
    direction: str = "download",
    streams: int = 4,
    error: Optional[str] = None,
    error_kind: Optional[str] = None,
) -> BandwidthMeasurement:
    samples = (
        tuple(round((mbps or 0.0) * f, 3) for f in (0.35, 0.8, 0.97, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0))
        if mbps
        else ()
    )
    total = int((mbps or 0.0) * 1e6 / 8 * 5.5)
    return BandwidthMeasurement(
        target=t.name,
        role=t.role,
        url=t.url or f"http://{t.host}:8080",
        direction=direction,
        streams=streams,
        engine="http",
        duration_s=7.0,
        warmup_s=1.5,
        interval_s=0.5,
        goodput_mbps=mbps,
        p50_mbps=mbps,
        p90_mbps=None if mbps is None else round(mbps * 1.02, 3),
        bytes_total=total,
        samples_mbps=samples,
        per_stream_mbps=tuple(round(mbps / streams, 3) for _ in range(streams)) if mbps else (),
        error=error,
        error_kind=error_kind,
    )


def dns(
    server: str,
    name: str,
    kind: str,
    ms: Optional[float],
    n: int = 5,
    timeouts: int = 0,
    servfail: int = 0,
    resolver: str = "system",
    answers: tuple[str, ...] = ("203.0.113.80",),
) -> DnsSeries:
    answered = n - timeouts
    times = tuple([ms] * answered) + (None,) * timeouts if ms is not None else (None,) * n
    times = tuple(None if t is None else round(t * (1 + (i % 3) / 20), 3) for i, t in enumerate(times))
    got = [t for t in times if t is not None]
    rcodes = ["SERVFAIL"] * servfail + ["NOERROR"] * (answered - servfail) + ["TIMEOUT"] * (n - answered)
    return DnsSeries(
        resolver,
        server,
        name,
        kind,
        times,
        tuple(rcodes),
        answers if kind == "warm" and got and not servfail else (),
        sum(1 for t in times if t is None),
        percentile(got, 50),
        percentile(got, 95),
    )


def healthy_latency(targets: Sequence[Target] = (GATEWAY, CENTER, INTERNET)) -> list[LatencySeries]:
    idle = {"gateway": 0.9, "center": 4.8, "internet": 14.5}
    out = [lat(t, rtts(idle[t.name])) for t in targets]
    for load_target in [t for t in targets if t.url]:
        for direction, extra in (("download", 2.5), ("upload", 3.5)):
            out += [
                lat(t, rtts(idle[t.name] + extra * (0.3 if t.role == "gateway" else 1.0)), f"{direction}:{load_target.name}")
                for t in targets
            ]
    return out


def healthy_dns(server: str = "192.168.10.1") -> list[DnsSeries]:
    return [
        dns(server, "www.mext.go.jp", "cold", 28.0),
        dns(server, "www.mext.go.jp", "warm", 2.4),
        dns(server, "classroom.google.com", "cold", 31.0),
        dns(server, "classroom.google.com", "warm", 2.1, answers=("142.250.196.110",)),
    ]


def probes(latency: str = "ok", dns_s: str = "ok", bandwidth: str = "ok", **reasons: Any) -> tuple[ProbeRecord, ...]:
    return (
        ProbeRecord("latency", latency, reasons.get("latency"), reasons.get("latency_kind"), 4.012),
        ProbeRecord("dns", dns_s, reasons.get("dns"), reasons.get("dns_kind"), 1.507),
        ProbeRecord("bandwidth", bandwidth, reasons.get("bandwidth"), reasons.get("bandwidth_kind"), 36.25),
    )


def result(
    name: str,
    m: Measurements,
    *,
    targets: Sequence[Target] = (GATEWAY, CENTER, INTERNET),
    host: Optional[dict] = None,
    school: School = SCHOOL,
    rooms: Sequence[Classroom] = ROOMS,
    recs: Optional[tuple[ProbeRecord, ...]] = None,
    not_measured: Sequence[str] = (),
    mode: str = "full",
    interrupted: bool = False,
    run_no: int = 1,
    started: str = "2026-06-03T11:20:05+09:00",
    finished: str = "2026-06-03T11:21:02+09:00",
) -> RunResult:
    r = RunResult(
        schema_version=SCHEMA_VERSION,
        run_id=f"00000000-0000-4000-8000-{run_no:012d}",
        tool_version="0.1.0",
        started_at=started,
        finished_at=finished,
        duration_s=57.125,
        status="error",
        school=school,
        classrooms=tuple(rooms),
        profile="default",
        site_file="/home/tanaka/giga/sites/minato-01.yaml",
        mode=mode,
        host=dict(HOST if host is None else host),
        targets=tuple(targets),
        measurements=m,
        probes=recs if recs is not None else probes(),
        not_measured=tuple(not_measured),
        interrupted=interrupted,
    )
    profiles = {p: load_profile(p) for p in sorted({r.profile} | {c.profile for c in r.classrooms})}
    return conclude(r, profiles)


# ----------------------------------------------------------------------------- fixtures


def healthy() -> RunResult:
    m = Measurements(
        bandwidth=(
            bw(CENTER, 862.4),
            bw(CENTER, 611.0, "upload"),
            bw(INTERNET, 604.3),
            bw(INTERNET, 402.7, "upload"),
            bw(INTERNET, 418.9, streams=1),
        ),
        latency=tuple(healthy_latency()),
        dns=tuple(healthy_dns()),
        dns_agreement=(DnsAgreement("www.mext.go.jp", True, {"system@192.168.10.1": ("203.0.113.80",)}),),
    )
    return result("healthy", m, run_no=1)


def dns_failure() -> RunResult:
    board = "10.20.0.53"
    d = healthy_dns() + [
        dns(board, "www.mext.go.jp", "cold", 240.0, timeouts=2, servfail=1, resolver=board),
        dns(board, "www.mext.go.jp", "warm", 185.0, timeouts=1, resolver=board),
        dns(board, "classroom.google.com", "cold", None, timeouts=5, resolver=board),
        dns(board, "classroom.google.com", "warm", 190.0, timeouts=1, resolver=board, answers=("142.250.196.110",)),
    ]
    m = Measurements(
        bandwidth=(
            bw(CENTER, 870.0),
            bw(CENTER, 640.0, "upload"),
            bw(INTERNET, 598.0),
            bw(INTERNET, 410.0, "upload"),
            bw(INTERNET, 430.0, streams=1),
        ),
        latency=tuple(healthy_latency()),
        dns=tuple(d),
        dns_agreement=(DnsAgreement("www.mext.go.jp", False, {"system@192.168.10.1": ("203.0.113.80",), f"{board}@{board}": ()}),),
    )
    recs = probes(
        dns_s="partial",
        dns=Text("reason.some_resolvers_failed", failures=f"{board}: Timeout: The DNS operation timed out."),
        dns_kind="timeout",
    )
    return result("dns-failure", m, recs=recs, run_no=2, started="2026-06-04T10:45:00+09:00", finished="2026-06-04T10:46:01+09:00")


def uplink_capacity() -> RunResult:
    idle = {"gateway": 1.1, "center": 6.2, "internet": 18.0}
    series = [lat(t, rtts(idle[t.name])) for t in (GATEWAY, CENTER, INTERNET)]
    for load in (CENTER, INTERNET):
        for direction, rise in (("download", 142.0), ("upload", 95.0)):
            series += [
                lat(GATEWAY, rtts(1.6), f"{direction}:{load.name}"),
                lat(CENTER, rtts(idle["center"] + rise, spread=6.0), f"{direction}:{load.name}"),
                lat(INTERNET, rtts(idle["internet"] + rise, spread=6.0), f"{direction}:{load.name}"),
            ]
    m = Measurements(
        bandwidth=(
            bw(CENTER, 152.6),
            bw(CENTER, 148.1, "upload"),
            bw(INTERNET, 141.9),
            bw(INTERNET, 139.5, "upload"),
            bw(INTERNET, 118.2, streams=1),
        ),
        latency=tuple(series),
        dns=tuple(healthy_dns()),
    )
    return result("uplink-capacity", m, run_no=3, started="2026-06-05T11:32:40+09:00", finished="2026-06-05T11:33:41+09:00")


def lan_capacity() -> RunResult:
    host = dict(
        HOST,
        interface="wlp2s0",
        link_speed_mbps=None,
        gateway_ipv6=None,
        resolvers=["192.168.10.1"],
        wifi={
            "ssid": "GIGA-Minato-5G",
            "bssid": "a4:2b:b0:12:34:56",
            "frequency_mhz": 5180,
            "band": "5GHz",
            "channel": 36,
            "signal_dbm": -58,
            "noise_dbm": None,
            "tx_rate_mbps": 866.7,
            "signal_pct": None,
            "interface": "wlp2s0",
        },
        proxy={
            "http": "http://proxy.minato.example.jp:3128",
            "https": "http://proxy.minato.example.jp:3128",
            "no_proxy": ["localhost", "*.minato.example.jp"],
            "pac_url": None,
            "source": "env",
        },
    )
    idle = {"gateway": 2.3, "center": 7.1, "internet": 17.4}
    series = [lat(t, rtts(idle[t.name], spread=1.2)) for t in (GATEWAY, CENTER, INTERNET)]
    for load in (CENTER, INTERNET):
        for direction in ("download", "upload"):
            series += [lat(t, rtts(idle[t.name] + 46.0, spread=4.0), f"{direction}:{load.name}") for t in (GATEWAY, CENTER, INTERNET)]
    m = Measurements(
        bandwidth=(
            bw(CENTER, 93.8),
            bw(CENTER, 92.9, "upload"),
            bw(INTERNET, 93.1),
            bw(INTERNET, 91.7, "upload"),
            bw(INTERNET, 88.4, streams=1),
        ),
        latency=tuple(series),
        dns=tuple(healthy_dns()),
    )
    return result("lan-capacity", m, host=host, run_no=4, started="2026-06-08T09:05:12+09:00", finished="2026-06-08T09:06:10+09:00")


def failed_probes() -> RunResult:
    """Internet server refuses, no center, no resolver, loss to the gateway, and Ctrl-C at the end."""
    host = dict(HOST, resolvers=[], stub_resolver=None)
    m = Measurements(
        latency=(
            lat(GATEWAY, rtts(3.2, lost=3, spread=2.5)),
            lat(INTERNET, (None,) * 20),
        ),  # ICMP echo unanswered: no error, every probe lost
    )
    recs = (
        ProbeRecord("identify:internet", "failed", "ConnectError: [Errno 111] Connection refused", "refused"),
        ProbeRecord("latency", "partial", Text("reason.no_answer_from", targets="internet"), "timeout", 6.004),
        ProbeRecord("dns", "skipped", Text("reason.no_resolver")),
        ProbeRecord("bandwidth", "skipped", Text("reason.no_server")),
        ProbeRecord("load", "skipped", Text("reason.interrupted_before"), "interrupted"),
    )
    nm = (
        Text("not_measured.no_center").about("center"),
        Text("not_measured.no_system_resolver").about("dns"),
        Text("reason.no_resolver").about("dns"),
        Text("reason.no_server").about("bandwidth"),
    )
    return result(
        "failed-probes",
        m,
        targets=(GATEWAY, INTERNET),
        host=host,
        recs=recs,
        not_measured=nm,
        interrupted=True,
        run_no=5,
        started="2026-06-09T13:40:00+09:00",
        finished="2026-06-09T13:40:09+09:00",
    )


def nothing_measured() -> RunResult:
    host = dict(
        HOST,
        gateway_ipv4=None,
        gateway_ipv6=None,
        resolvers=[],
        stub_resolver=None,
        interface=None,
        link_speed_mbps=None,
        notes=["gateway: no default route", "resolvers: /etc/resolv.conf is empty"],
    )
    m = Measurements(
        latency=(lat(INTERNET, (None,) * 20, error="network is unreachable", error_kind="unreachable"),),
        bandwidth=(bw(INTERNET, None, error="network is unreachable", error_kind="unreachable"),),
    )
    recs = (
        ProbeRecord("identify:internet", "failed", "network is unreachable", "unreachable"),
        ProbeRecord("latency", "failed", Text("reason.target_errors", errors="internet: network is unreachable"), "unreachable", 0.012),
        ProbeRecord("dns", "skipped", Text("reason.no_resolver")),
        ProbeRecord("bandwidth", "failed", "network is unreachable", "unreachable", 0.004),
    )
    nm = (
        Text("not_measured.no_gateway").about("gateway"),
        Text("not_measured.no_center").about("center"),
        Text("not_measured.no_system_resolver").about("dns"),
    )
    return result(
        "nothing-measured",
        m,
        targets=(INTERNET,),
        host=host,
        recs=recs,
        not_measured=nm,
        run_no=6,
        started="2026-06-10T08:15:00+09:00",
        finished="2026-06-10T08:15:03+09:00",
    )


def proxy_ipv6_path() -> RunResult:
    """The new sections: IPv4 (PPPoE) slow beside IPv6 (IPoE), a proxy set by a PAC script,
    a traceroute to the internet server with idle and loaded p50 per hop, and an Ookla figure
    with the speedtest-cli warning beside the own engine's."""
    proxy_url = "http://proxy.minato.example.jp:3128"
    host = dict(
        HOST,
        proxy={
            "http": proxy_url,
            "https": proxy_url,
            "no_proxy": ["localhost", "*.minato.example.jp"],
            "pac_url": "http://wpad.minato.example.jp/wpad.dat",
            "source": "env",
        },
    )
    series = healthy_latency()
    v4 = FamilyPath(
        "internet",
        "internet",
        "ipv4",
        "203.0.113.80",
        "ok",
        None,
        lat(Target("internet", "internet", "203.0.113.80"), rtts(18.2), "family", "tcp-connect"),
        BandwidthMeasurement(**{**bw(INTERNET, 38.5).__dict__, "url": "http://203.0.113.80:8080", "family": "ipv4"}),
    )
    v6 = FamilyPath(
        "internet",
        "internet",
        "ipv6",
        "2001:db8:20::80",
        "ok",
        None,
        lat(Target("internet", "internet", "2001:db8:20::80"), rtts(14.9), "family", "tcp-connect"),
        BandwidthMeasurement(**{**bw(INTERNET, 412.0).__dict__, "url": "http://[2001:db8:20::80]:8080", "family": "ipv6"}),
    )
    proxy_host = Target("internet", "internet", "10.20.0.3")
    ttfb = lat(INTERNET, rtts(96.0, n=10, spread=6.0), "proxy", "http-ttfb")
    report = ProxyReport(
        detected=True,
        source="env",
        http=proxy_url,
        https=proxy_url,
        no_proxy=("localhost", "*.minato.example.jp"),
        pac_url="http://wpad.minato.example.jp/wpad.dat",
        pac_status="evaluated",
        paths=(
            ProxyPath("center", "center", CENTER.url or "", None, "no_proxy"),
            ProxyPath(
                "internet", "internet", INTERNET.url or "", proxy_url, "pac", lat(proxy_host, rtts(4.1, n=10), "proxy", "tcp-connect"), ttfb
            ),
        ),
        probe_paths={"bandwidth": "proxy", "latency": "direct", "dns": "direct", "path": "direct"},
        notes=(Text("note.proxy_direct_probes"),),
    )
    hops = []
    for ttl, addr, role, idle_ms, loaded_ms, lost in (
        (1, "192.168.10.1", "gateway", 0.9, 1.4, 0),
        (2, "10.20.0.1", "hop", 3.8, 41.0, 0),
        (3, None, None, None, None, 0),
        (4, "203.0.113.1", "hop", 12.6, 55.2, 2),
        (5, "203.0.113.80", "internet", 14.5, 57.0, 1),
    ):
        if addr is None:
            hops.append(PathHop(ttl, None, None, (None, None, None)))
            continue
        idle = summarize_rtts(rtts(idle_ms, lost=lost))
        loaded = summarize_rtts(rtts(loaded_ms, lost=lost, spread=3.0))
        reply = "echo-reply" if role == "internet" else "time-exceeded"
        hops.append(
            PathHop(
                ttl,
                addr,
                reply,
                (idle_ms, idle_ms + 0.3, None),
                ("10.20.0.2",) if ttl == 2 else (),
                "internet" if role == "internet" else ("gateway" if role == "gateway" else f"hop-{ttl}"),
                role,
                idle,
                loaded,
                "download:internet",
            )
        )
    path = DiscoveredPath("internet", "203.0.113.80", "icmp", True, tuple(hops), ("icmp: reached in 5 hops",), 16, 3, 4.2)
    ookla = BandwidthMeasurement(
        **{
            **bw(INTERNET, 351.0).__dict__,
            "engine": "speedtest",
            "url": "http://speed.ookla.example.net:8080/speedtest/upload.php",
            "streams": 1,
            "notes": ("engine.speedtest.archived",),
            "server": {
                "kind": "ookla",
                "id": "48463",
                "sponsor": "Example Carrier",
                "name": "Tokyo",
                "cc": "JP",
                "host": "speed.ookla.example.net:8080",
                "url": "http://speed.ookla.example.net:8080/speedtest/upload.php",
            },
        }
    )
    m = Measurements(
        bandwidth=(bw(CENTER, 152.6), bw(CENTER, 148.1, "upload"), bw(INTERNET, 141.9), bw(INTERNET, 139.5, "upload"), ookla),
        latency=tuple(series),
        dns=tuple(healthy_dns()),
        families=(v4, v6),
        paths=(path,),
        proxy=report,
    )
    recs = probes() + (
        ProbeRecord("family", "ok", None, None, 16.2),
        ProbeRecord("proxy", "ok", None, None, 3.1),
        ProbeRecord("path", "ok", None, None, 4.2),
    )
    return result(
        "proxy-ipv6-path", m, host=host, recs=recs, run_no=8, started="2026-06-11T10:00:00+09:00", finished="2026-06-11T10:01:30+09:00"
    )


def v1_schema() -> RunResult:
    """Quick mode, a school without a student count, an IPv6 resolver: written by schema-1 code."""
    host = dict(
        HOST,
        os_name="Windows",
        os_version="10.0.22631",
        hostname="GIGA-PC-0312",
        interface="イーサネット",
        resolvers=["2001:db8:10::53", "192.168.10.1"],
        gateway_ipv6="fe80::1",
        stub_resolver=None,
        raw_icmp=False,
    )
    series = [lat(GATEWAY, rtts(1.4)), lat(INTERNET, rtts(38.0, spread=3.0))]
    series += [
        lat(GATEWAY, rtts(1.9), "download:internet"),
        lat(INTERNET, rtts(79.0, spread=8.0), "download:internet"),
        lat(GATEWAY, rtts(1.8), "upload:internet"),
        lat(INTERNET, rtts(61.0, spread=8.0), "upload:internet"),
    ]
    m = Measurements(
        bandwidth=(bw(INTERNET, 212.0), bw(INTERNET, 121.5, "upload"), bw(INTERNET, 120.0, streams=1)),
        latency=tuple(series),
        dns=(dns("2001:db8:10::53", "www.mext.go.jp", "cold", 61.0, n=3), dns("2001:db8:10::53", "www.mext.go.jp", "warm", 3.0, n=3)),
    )
    return result(
        V1,
        m,
        targets=(GATEWAY, INTERNET),
        host=host,
        school=School("osaka-sakai-12", "Sakai Municipal Elementary 12", None),
        rooms=(Classroom("5-1", 32, "default"),),
        mode="quick",
        run_no=7,
        not_measured=("center: no center server configured, so the school LAN+uplink and the center cannot be told apart",),
        started="2026-05-20T14:02:11+09:00",
        finished="2026-05-20T14:02:33+09:00",
    )


FIXTURES = {
    "healthy": healthy,
    "dns-failure": dns_failure,
    "uplink-capacity": uplink_capacity,
    "lan-capacity": lan_capacity,
    "failed-probes": failed_probes,
    "nothing-measured": nothing_measured,
    "proxy-ipv6-path": proxy_ipv6_path,
    V1: v1_schema,
}


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--v1", action="store_true", help="also rewrite the frozen schema-1 fixture")
    args = ap.parse_args(argv)
    for name, build in FIXTURES.items():
        path = RESULTS / f"{name}.json"
        if name == V1 and path.exists() and not args.v1:
            print(f"kept {path} (frozen schema-1 fixture; --v1 rewrites it)")
            continue
        write_atomic(path, dumps(build()) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
