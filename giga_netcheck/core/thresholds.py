"""Thresholds: measurements + site + profiles -> checks (pure).

Per classroom, needed bandwidth = per-device need x devices x share active at once (summed
over the parts of a mixed classroom), compared with the line's measured figure; quality limits
(RTT, jitter, loss, loaded-RTT increase, DNS) from the classroom's profile (the strictest of a
mix). The school line is compared with the school-level rule of the main profile
(``school.bandwidth.*``): the MEXT recommended bandwidth for the student count by default,
or a per-user, fixed or tabulated rule (docs/profiles.md). Every check's ``source`` names the
profile(s) and the citation its threshold came from.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional

from giga_netcheck.core.facts import Facts
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import Check, Classroom, Measurements, NotMeasured, ProbeRecord, School
from giga_netcheck.core.profile import Limit, Profile, SchoolRule, mext_2024_rule
from giga_netcheck.core.stats import rounded
from giga_netcheck.core.triage import IPV4_CONGESTION_RATIO, PROXY_OVERHEAD_MIN_MS, PROXY_TTFB_RATIO


def __getattr__(name: str) -> Any:
    # The MEXT table is data in giga_netcheck/data/reference.yaml; these names read it on first use.
    if name == "MEXT_2024_POINTS":
        return mext_2024_rule().points
    if name == "MEXT_SOURCE":
        return mext_2024_rule().source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def interpolate(points: tuple[tuple[int, float], ...], students: int) -> tuple[float, bool]:
    """Mbps for ``students`` from a published table, and whether it is an estimate (not a point).

    Piecewise-linear between points, the last segment's slope beyond the last point and a
    straight line through zero below the first, as the project's domain notes prescribe for
    the MEXT table (which publishes no formula).
    """
    if students <= 0:
        raise ValueError("students must be positive")
    pts = points
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


def mext_recommended_mbps(students: int) -> tuple[float, bool]:
    """MEXT 当面の推奨帯域 (2024) in Mbps for a student count, and whether it is an estimate."""
    return interpolate(mext_2024_rule().points, students)


SCHOOL_CHECK_NAMES = {"mext-2024": "mext", "table": "table", "per_user": "per_user", "fixed": "fixed"}
"""Rule -> the last part of its check id, ``school.bandwidth.<name>`` (``.up`` for upload)."""


@dataclass(frozen=True)
class SchoolNeed:
    """What a school-level rule asks of the line in one direction."""

    check_id: str
    direction: str
    """``download`` or ``upload``."""
    need_mbps: float
    estimate: bool
    detail: str
    source: str


def school_needs(rule: SchoolRule, school: School) -> list[SchoolNeed]:
    """The school line's needs under ``rule``; empty when the rule needs a student count the site lacks."""
    base = f"school.bandwidth.{SCHOOL_CHECK_NAMES[rule.rule]}"
    factor = rule.goodput_factor

    def as_goodput(t: Text) -> Text:
        return Text("detail.goodput", rest=t, factor=factor) if factor != 1.0 else t

    cite = _join_sources(
        rule.source, *(rule.sources.get(k, "") for k in ("down_mbps_per_user", "minimum_mbps", "down_mbps", "up_mbps", "goodput_factor"))
    )
    if rule.rule in ("mext-2024", "table"):
        if not school.students:
            return []
        need, est = interpolate(rule.points, int(school.students))
        return [SchoolNeed(base, "download", need, est, Text("detail.students", n=school.students), cite)]
    if rule.rule == "per_user":
        if not school.students:
            return []
        staff = getattr(school, "staff", None)
        if rule.users == "students_and_staff":
            users = int(school.students) + int(staff or 0)
            who = (
                Text("detail.students_staff", n=school.students, staff=staff)
                if staff is not None
                else Text("detail.students_no_staff", n=school.students)
            )
            est = staff is None
        else:
            users, who, est = int(school.students), Text("detail.students", n=school.students), False
        per_user = (rule.down_mbps_per_user or 0.0) * users
        line = max(per_user, rule.minimum_mbps or 0.0)
        detail = Text("detail.per_user", who=who, per=rule.down_mbps_per_user, total=per_user)
        if rule.minimum_mbps:
            detail = Text("detail.at_least", rest=detail, mbps=rule.minimum_mbps)
        detail = as_goodput(detail)
        return [SchoolNeed(base, "download", line * factor, est, detail, cite)]
    out = [
        SchoolNeed(base, "download", (rule.down_mbps or 0.0) * factor, False, as_goodput(Text("detail.line", mbps=rule.down_mbps)), cite)
    ]
    if rule.up_mbps is not None:
        out.append(
            SchoolNeed(f"{base}.up", "upload", rule.up_mbps * factor, False, as_goodput(Text("detail.line", mbps=rule.up_mbps)), cite)
        )
    return out


def _join_sources(*texts: str) -> str:
    seen: list[str] = []
    for t in texts:
        if t and t not in seen:
            seen.append(t)
    return "; ".join(seen)


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


def evaluate(
    facts: Facts, school: School, classrooms: tuple[Classroom, ...], profiles: dict[str, Profile], main_profile: Optional[str] = None
) -> list[Check]:
    """All checks for a run, in a stable order: school first, then paths, then each classroom.

    The school-level rule comes from ``main_profile`` (the site's ``profile``), or the first
    classroom's profile when it is not given.
    """
    checks: list[Check] = []
    down = facts.line("download")
    up = facts.line("upload")
    down_v = down.goodput_mbps if down else None
    up_v = up.goodput_mbps if up else None
    line_note = Text("detail.multi_stream_to", target=down.target) if down else Text("detail.no_server_reached")

    main = profiles.get(main_profile) if main_profile else None
    if main is None and classrooms:
        main = profiles[classrooms[0].profile]
    rule = main.school_bandwidth_rule() if main else None
    label = _label(main) if main else ""
    for need in school_needs(rule, school) if rule else []:
        measured = down_v if need.direction == "download" else up_v
        note = line_note if need.direction == "download" else (Text("detail.multi_stream") if up else Text("detail.no_server_reached"))
        checks.append(
            Check(
                id=need.check_id,
                classroom=None,
                metric=f"{need.direction}_mbps",
                measured=rounded(measured),
                threshold=round(need.need_mbps, 3),
                warn_at=None,
                unit="Mbps",
                better="higher",
                status=_higher_is_better(measured, need.need_mbps, 1.0),
                source=Text("source.cited", by=label, cite=need.source),
                detail=Text("detail.and", a=need.detail, b=note),
                estimate=need.estimate,
            )
        )

    for t in facts.targets:
        s = facts.idle.get(t.name)
        if s is None:
            continue
        reached = s.stats.received > 0 or any(b.target == t.name and b.bytes_total > 0 for b in facts.bandwidth)
        checks.append(
            Check(
                id=f"path.reachable.{t.name}",
                classroom=None,
                metric="answered",
                measured=1.0 if reached else 0.0,
                threshold=1.0,
                warn_at=None,
                unit="",
                better="higher",
                status="pass" if reached else "fail",
                source=Text("source.target_must_answer"),
                detail=Text("detail.reached_by_error", host=t.host, method=s.method, error=s.error)
                if s.error
                else Text("detail.reached_by", host=t.host, method=s.method),
            )
        )

    for t in facts.targets:
        if t.url:
            why = facts.unidentified.get(t.name)
            checks.append(
                Check(
                    id=f"path.server.{t.name}",
                    classroom=None,
                    metric="measurement_server",
                    measured=0.0 if why else 1.0,
                    threshold=1.0,
                    warn_at=None,
                    unit="",
                    better="higher",
                    status="fail" if why else "pass",
                    source=Text("source.must_be_server"),
                    detail=why or t.url,
                )
            )

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
    # A SERVFAIL or REFUSED answer fails the pupil's page as surely as a timeout: both count
    # against the profile's DNS failure limit (as the dns-failure rule counts them).
    dns_failed = sum(d.timeouts for d in facts.dns) + sum(1 for d in facts.dns for r in d.rcodes if r in ("SERVFAIL", "REFUSED"))
    dns_timeout_pct = 100.0 * dns_failed / dns_total if dns_total else None

    for room in classrooms:
        p = profiles[room.profile]
        src = _label(p)
        need_down, need_up = p.need_down_mbps(room.devices), p.need_up_mbps(room.devices)
        down_src, down_how = _need_text(p, room.devices, "down")
        up_src, up_how = _need_text(p, room.devices, "up")
        checks.append(
            Check(
                id="classroom.bandwidth.down",
                classroom=room.name,
                metric="download_mbps",
                measured=rounded(down_v),
                threshold=round(need_down, 3),
                warn_at=round(need_down * p.warn_margin, 3),
                unit="Mbps",
                better="higher",
                status=_higher_is_better(down_v, need_down, p.warn_margin),
                source=Text("source.cited", by=src, cite=down_src),
                detail=Text("detail.and", a=down_how, b=line_note),
            )
        )
        checks.append(
            Check(
                id="classroom.bandwidth.up",
                classroom=room.name,
                metric="upload_mbps",
                measured=rounded(up_v),
                threshold=round(need_up, 3),
                warn_at=round(need_up * p.warn_margin, 3),
                unit="Mbps",
                better="higher",
                status=_higher_is_better(up_v, need_up, p.warn_margin),
                source=Text("source.cited", by=src, cite=up_src),
                detail=up_how,
            )
        )
        quality = [
            ("classroom.rtt", "rtt_p50_ms", far.stats.p50_ms if far else None, "rtt_ms", "ms", far.target if far else None),
            ("classroom.jitter", "jitter_ms", far.stats.jitter_ms if far else None, "jitter_ms", "ms", far.target if far else None),
            (
                "classroom.loss",
                "loss_pct",
                far.stats.loss_pct if far and far.stats.sent else None,
                "loss_pct",
                "%",
                far.target if far else None,
            ),
            ("classroom.gateway_loss", "loss_pct", gw.stats.loss_pct if gw and gw.stats.sent else None, "gateway_loss_pct", "%", "gateway"),
            (
                "classroom.loaded_rtt_increase",
                "rtt_increase_ms",
                worst_inc[0] if worst_inc else None,
                "loaded_rtt_increase_ms",
                "ms",
                worst_inc[1] if worst_inc else None,
            ),
            (
                "classroom.dns.warm_p50",
                "dns_p50_ms",
                max(dns_warm) if dns_warm else None,
                "dns_p50_ms",
                "ms",
                Text("detail.slowest_resolver"),
            ),
            (
                "classroom.dns.cold_p50",
                "dns_p50_ms",
                max(dns_cold) if dns_cold else None,
                "dns_p50_ms",
                "ms",
                Text("detail.slowest_resolver"),
            ),
            ("classroom.dns.timeouts", "timeout_pct", dns_timeout_pct, "dns_timeout_pct", "%", Text("detail.all_resolvers")),
        ]
        for cid, metric, value, key, unit, where in quality:
            lim = p.limits[key]
            checks.append(
                Check(
                    id=cid,
                    classroom=room.name,
                    metric=metric,
                    measured=rounded(value),
                    threshold=lim.fail,
                    warn_at=lim.warn,
                    unit=unit,
                    better="lower",
                    status=_lower_is_better(value, lim),
                    source=Text("source.cited", by=src, cite=lim.source),
                    detail=where,
                )
            )
    checks += _load_checks(facts)
    checks += _path_checks(facts)
    return checks


def _path_checks(facts: Facts) -> list[Check]:
    """IPv4 against IPv6 to the same server, and what a proxy adds to time to first byte (the
    same comparisons as triage's ipv4-congestion and proxy-overhead rules); only where measured."""
    out: list[Check] = []
    pairs = []
    for t in facts.targets:
        fam = {f.family: f for f in facts.families if f.target == t.name and f.status == "ok" and f.download}
        d4 = fam["ipv4"].download if "ipv4" in fam else None
        d6 = fam["ipv6"].download if "ipv6" in fam else None
        if d4 and d6 and d4.goodput_mbps is not None and d6.goodput_mbps:
            pairs.append((t.name, d4.goodput_mbps, d6.goodput_mbps))
    if pairs:
        name, v4, v6 = min(pairs, key=lambda x: x[1] / x[2])
        need = v6 / IPV4_CONGESTION_RATIO
        out.append(
            Check(
                id="school.ipv4_vs_ipv6",
                classroom=None,
                metric="ipv4_download_mbps",
                measured=rounded(v4),
                threshold=rounded(need),
                warn_at=None,
                unit="Mbps",
                better="higher",
                status="pass" if v4 >= need else "fail",
                source=Text("source.ipv4_vs_ipv6"),
                detail=name,
            )
        )
    worst = None
    for p in facts.proxy.paths if facts.proxy else ():
        if not p.proxy or not p.ttfb or not p.connect or p.ttfb.stats.p50_ms is None or p.connect.stats.p50_ms is None:
            continue
        direct = facts.idle_p50(p.target)
        overhead = p.ttfb.stats.p50_ms - 2.0 * max(p.connect.stats.p50_ms, direct or 0.0)
        bad = overhead >= PROXY_OVERHEAD_MIN_MS and p.ttfb.stats.p50_ms >= PROXY_TTFB_RATIO * p.connect.stats.p50_ms
        if worst is None or overhead > worst[1]:
            worst = (p.target, overhead, bad)
    if worst is not None:
        out.append(
            Check(
                id="school.proxy_overhead",
                classroom=None,
                metric="proxy_overhead_ms",
                measured=rounded(worst[1]),
                threshold=PROXY_OVERHEAD_MIN_MS,
                warn_at=None,
                unit="ms",
                better="lower",
                status="fail" if worst[2] else "pass",
                source=Text("source.proxy_overhead"),
                detail=worst[0],
            )
        )
    return out


def _load_checks(facts: Facts) -> list[Check]:
    """The load ramp's verdict for the classroom it emulated: devices carried vs devices needed."""
    load = facts.load
    if load is None or not load.supports.needed:
        return []
    sup = load.supports
    carried, needed = sup.devices, sup.needed
    return [
        Check(
            id="classroom.load.devices",
            classroom=load.classroom.name,
            metric="devices_carried",
            measured=float(carried),
            threshold=float(needed),
            warn_at=None,
            unit="devices",
            better="higher",
            status="pass" if carried >= needed else "fail",
            source=Text("source.load_knee"),
            detail=Text(
                "detail.and",
                a=load.activity_kind,
                b=Text("detail.no_step_failed") if sup.at_least else Text("detail.first_failing", devices=sup.first_failing_devices),
            ),
        )
    ]


def _label(p: Profile) -> str:
    """How a check names its profile: a user profile that hides another one says so."""
    if p.shadows:
        return Text("source.profile_shadows", name=p.name, path=p.path, shadows=p.shadows)
    return Text("source.profile", name=p.name)


def _need_text(p: Profile, devices: int, direction: str) -> tuple[str, str]:
    """(citation, arithmetic) of a classroom's need: one activity, or each part of a mix."""
    key = f"{direction}_mbps_per_device"
    leaves = p.leaves(devices)
    if not p.mix:
        per = p.down_mbps_per_device if direction == "down" else p.up_mbps_per_device
        return p.sources.get(key, ""), Text("detail.need", per=per, devices=devices, share=p.active_share)
    cites = " + ".join(f"{leaf.name}: {leaf.sources.get(key, '')}" for leaf, _ in leaves)
    parts = [
        Text(
            "detail.need_part",
            name=leaf.name,
            per=leaf.down_mbps_per_device if direction == "down" else leaf.up_mbps_per_device,
            devices=n,
            share=leaf.active_share,
        )
        for leaf, n in leaves
    ]
    how = functools.reduce(lambda a, b: Text("detail.plus", a=a, b=b), parts)
    return cites, how


NEEDS: dict[str, tuple[str, ...]] = {
    "bandwidth": ("classroom.bandwidth.down", "classroom.bandwidth.up"),
    "latency": ("classroom.rtt",),
    "dns": ("classroom.dns.warm_p50",),
}
"""What every classroom's profile needs measured before a run may pass: need -> the checks that
carry it (jitter and loss come from the same series as the RTT; DNS cold and timeouts from the
same queries as the warm figure)."""

LIGHT_PLAN_NEEDS = ("latency", "dns")
"""The scheduled light plan (mode ``scheduled``) judges no bandwidth by design: a few capped MB
cannot measure a line (docs/scheduled.md); its full runs do."""

_NEED_PROBES = {"bandwidth": ("bandwidth",), "latency": ("latency",), "dns": ("dns",)}
_NO_ANSWER = ("TIMEOUT", "SERVFAIL", "REFUSED")


def needs_for(mode: str) -> tuple[str, ...]:
    """The needs a run of ``mode`` must measure to pass."""
    return LIGHT_PLAN_NEEDS if mode == "scheduled" else tuple(NEEDS)


def missing_needs(checks: list[Check], needs: tuple[str, ...] = tuple(NEEDS)) -> list[str]:
    """The needs (of ``needs``) whose check is not measured for some classroom, in NEEDS order."""
    return [
        need
        for need, ids in NEEDS.items()
        if need in needs and any(c.id in ids and c.classroom is not None and c.status == "not-measured" for c in checks)
    ]


def missing_reasons(
    checks: list[Check],
    probes: tuple[ProbeRecord, ...],
    notes: tuple[NotMeasured, ...],
    needs: tuple[str, ...] = tuple(NEEDS),
) -> tuple[NotMeasured, ...]:
    """Each missing need with why, one entry per reason (``subject`` = the need): its probe's
    skip or failure reason (for bandwidth also each server that did not identify itself), the
    run's not-measured notes about it, or else that no figure came back."""
    out: list[NotMeasured] = []
    for need in missing_needs(checks, needs):
        why: list[NotMeasured] = []
        for p in probes:
            related = p.probe in _NEED_PROBES[need] or (need == "bandwidth" and p.probe.startswith("identify:"))
            if related and p.status != "ok" and (p.reason or p.reason_key):
                why.append(NotMeasured(p.reason or p.status, p.reason_key or "", dict(p.reason_args), need))
        why += [NotMeasured(n.text, n.key, dict(n.args), need) for n in notes if n.subject == need]
        if not why:
            t = Text("missing.no_figure")
            why.append(NotMeasured(str(t), t.key, {}, need))
        seen: set[str] = set()
        for n in why:
            if n.text not in seen:
                seen.add(n.text)
                out.append(n)
    return tuple(out)


def answered(m: Measurements) -> bool:
    """Did anything answer: a latency probe, a transfer, or a resolver with an answer (a
    SERVFAIL or REFUSED, what a local stub says without an upstream, is no answer)."""
    return (
        any(s.stats.received > 0 for s in m.latency)
        or any(b.bytes_total > 0 for b in m.bandwidth)
        or any(t is not None and r not in _NO_ANSWER for d in m.dns for t, r in zip(d.times_ms, d.rcodes))
    )


def overall_status(checks: list[Check], reached: bool, *, interrupted: bool = False, missing: tuple[str, ...] = ()) -> str:
    """The run's verdict (docs/result-schema.md, ``status``), first that applies:

    ``no-connectivity`` nothing answered (``reached`` false; and the run was not cut short); ``fail`` a measured
    check failed (a failure stands however short the run); ``incomplete`` the run was
    interrupted, or a need of the classrooms (``missing``: bandwidth, latency, DNS) was not
    measured; ``warn``; ``pass``. A run that did not measure what it judges never passes.
    """
    if not reached and not interrupted:
        return "no-connectivity"
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return "fail"
    if interrupted or missing or not reached:
        return "incomplete"
    if "warn" in statuses:
        return "warn"
    return "pass"
