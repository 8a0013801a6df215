"""Thresholds: measurements + site + profiles -> checks (pure).

Per classroom, needed bandwidth = per-device need x devices x share active at once, compared
with the line's measured figure; quality limits (RTT, jitter, loss, loaded-RTT increase, DNS)
from the classroom's profile. The school line is also compared with the MEXT recommended
bandwidth for the school's student count.
"""

from __future__ import annotations

from typing import Optional

from .config import Limit, Profile
from .facts import Facts
from .models import Check, Classroom, School

# MEXT 当面の推奨帯域 (学校のネットワーク改善ガイドブック 2024, p.36): students -> Mbps.
MEXT_2024_POINTS: tuple[tuple[int, float], ...] = (
    (60, 108), (120, 216), (180, 323), (280, 408), (560, 525), (770, 607), (1050, 711), (1400, 834),
)
MEXT_SOURCE = "MEXT 当面の推奨帯域 (2024, 学校のネットワーク改善ガイドブック p.36)"


def mext_recommended_mbps(students: int) -> tuple[float, bool]:
    """Recommended school downlink in Mbps and whether it is an estimate (not a published point).

    Piecewise-linear between published points, the last segment's slope beyond 1,400 and a
    straight line through zero below 60, as the project's domain notes prescribe.
    """
    if students <= 0:
        raise ValueError("students must be positive")
    pts = MEXT_2024_POINTS
    for n, mbps in pts:
        if students == n:
            return float(mbps), False
    if students < pts[0][0]:
        return pts[0][1] * students / pts[0][0], True
    for (n0, m0), (n1, m1) in zip(pts, pts[1:]):
        if n0 < students < n1:
            return m0 + (m1 - m0) * (students - n0) / (n1 - n0), True
    (n0, m0), (n1, m1) = pts[-2], pts[-1]
    return m1 + (m1 - m0) * (students - n1) / (n1 - n0), True


def _higher_is_better(measured: Optional[float], need: float, margin: float) -> str:
    if measured is None:
        return "not-measured"
    if measured < need:
        return "fail"
    if measured < need * margin:
        return "warn"
    return "pass"


def _lower_is_better(measured: Optional[float], limit: Limit) -> str:
    if measured is None:
        return "not-measured"
    if measured >= limit.fail:
        return "fail"
    if limit.warn is not None and measured >= limit.warn:
        return "warn"
    return "pass"


def _r(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(v, 3)


def evaluate(facts: Facts, school: School, classrooms: tuple[Classroom, ...], profiles: dict[str, Profile]) -> list[Check]:
    """All checks for a run, in a stable order: school first, then each classroom."""
    checks: list[Check] = []
    down = facts.line("download")
    up = facts.line("upload")
    down_v = down.goodput_mbps if down else None
    up_v = up.goodput_mbps if up else None
    line_note = f"multi-stream to {down.target}" if down else "no measurement server reached"

    first_profile = profiles[classrooms[0].profile] if classrooms else None
    if school.students and first_profile and first_profile.school_recommendation == "mext-2024":
        need, est = mext_recommended_mbps(int(school.students))
        checks.append(Check(
            id="school.bandwidth.mext", classroom=None, metric="download_mbps", measured=_r(down_v),
            threshold=round(need, 1), warn_at=None, unit="Mbps", better="higher",
            status=_higher_is_better(down_v, need, 1.0), source=MEXT_SOURCE,
            detail=f"{school.students} students; {line_note}", estimate=est,
        ))

    for t in facts.targets:
        s = facts.idle.get(t.name)
        if s is None:
            continue
        reached = s.stats.received > 0 or any(b.target == t.name and b.bytes_total > 0 for b in facts.bandwidth)
        checks.append(Check(
            id=f"path.reachable.{t.name}", classroom=None, metric="answered", measured=1.0 if reached else 0.0,
            threshold=1.0, warn_at=None, unit="", better="higher", status="pass" if reached else "fail",
            source="a configured target must answer", detail=f"{t.host} by {s.method}" + (f": {s.error}" if s.error else ""),
        ))

    for t in facts.targets:
        if t.url:
            why = facts.unidentified.get(t.name)
            checks.append(Check(
                id=f"path.server.{t.name}", classroom=None, metric="measurement_server", measured=0.0 if why else 1.0,
                threshold=1.0, warn_at=None, unit="", better="higher", status="fail" if why else "pass",
                source="a configured URL must be a giga-netcheck measurement server", detail=why or t.url,
            ))

    far = facts.farthest_idle()
    gw = next((facts.idle[t.name] for t in facts.by_role("gateway") if t.name in facts.idle), None)
    worst_inc = None
    for t in facts.targets:
        inc = facts.loaded_increase(t.name)
        if inc is not None and (worst_inc is None or inc[0] > worst_inc[0]):
            worst_inc = (inc[0], t.name)
    dns_warm = [d.p50_ms for d in facts.dns if d.kind == "warm" and d.p50_ms is not None]
    dns_cold = [d.p50_ms for d in facts.dns if d.kind == "cold" and d.p50_ms is not None]
    dns_total = sum(len(d.times_ms) for d in facts.dns)
    dns_timeout_pct = 100.0 * sum(d.timeouts for d in facts.dns) / dns_total if dns_total else None

    for room in classrooms:
        p = profiles[room.profile]
        src = f"profile {p.name}"
        need_down, need_up = p.need_down_mbps(room.devices), p.need_up_mbps(room.devices)
        share = f"{room.devices} devices x {p.active_share:g} active"
        checks.append(Check(
            id="classroom.bandwidth.down", classroom=room.name, metric="download_mbps", measured=_r(down_v),
            threshold=round(need_down, 3), warn_at=round(need_down * p.warn_margin, 3), unit="Mbps", better="higher",
            status=_higher_is_better(down_v, need_down, p.warn_margin),
            source=f"{src}: {p.sources.get('down_mbps_per_device', '')}",
            detail=f"{p.down_mbps_per_device:g} Mbps x {share}; {line_note}",
        ))
        checks.append(Check(
            id="classroom.bandwidth.up", classroom=room.name, metric="upload_mbps", measured=_r(up_v),
            threshold=round(need_up, 3), warn_at=round(need_up * p.warn_margin, 3), unit="Mbps", better="higher",
            status=_higher_is_better(up_v, need_up, p.warn_margin),
            source=f"{src}: {p.sources.get('up_mbps_per_device', '')}",
            detail=f"{p.up_mbps_per_device:g} Mbps x {share}",
        ))
        quality = [
            ("classroom.rtt", "rtt_p50_ms", far.stats.p50_ms if far else None, "rtt_ms", "ms", far.target if far else None),
            ("classroom.jitter", "jitter_ms", far.stats.jitter_ms if far else None, "jitter_ms", "ms", far.target if far else None),
            ("classroom.loss", "loss_pct", far.stats.loss_pct if far and far.stats.sent else None, "loss_pct", "%", far.target if far else None),
            ("classroom.gateway_loss", "loss_pct", gw.stats.loss_pct if gw and gw.stats.sent else None, "gateway_loss_pct", "%", "gateway"),
            ("classroom.loaded_rtt_increase", "rtt_increase_ms", worst_inc[0] if worst_inc else None, "loaded_rtt_increase_ms", "ms", worst_inc[1] if worst_inc else None),
            ("classroom.dns.warm_p50", "dns_p50_ms", max(dns_warm) if dns_warm else None, "dns_p50_ms", "ms", "slowest resolver"),
            ("classroom.dns.cold_p50", "dns_p50_ms", max(dns_cold) if dns_cold else None, "dns_p50_ms", "ms", "slowest resolver"),
            ("classroom.dns.timeouts", "timeout_pct", dns_timeout_pct, "dns_timeout_pct", "%", "all resolvers"),
        ]
        for cid, metric, value, key, unit, where in quality:
            lim = p.limits[key]
            checks.append(Check(
                id=cid, classroom=room.name, metric=metric, measured=_r(value), threshold=lim.fail, warn_at=lim.warn,
                unit=unit, better="lower", status=_lower_is_better(value, lim), source=f"{src}: {lim.source}",
                detail=where,
            ))
    return checks


def overall_status(checks: list[Check], anything_measured: bool) -> str:
    """``error`` when nothing was measured; otherwise the worst measured check."""
    if not anything_measured:
        return "error"
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return "fail"
    if "warn" in statuses:
        return "warn"
    return "pass"
