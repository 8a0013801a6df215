"""Markdown report: verdict, failed checks, causes with evidence, what was not measured.

Every word comes from the message catalogue; recorded sentences (evidence notes, probe
reasons, not-measured items) are said from their message keys (``render.common.say``). What is shown
as recorded is data: ids, names, addresses, numbers and OS error texts.
"""

from __future__ import annotations

from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import RunResult, claims
from giga_netcheck.render.common import (
    check_label,
    evidence_text,
    fmt_check_value,
    fmt_value,
    joined,
    not_measured_lines,
    phase_text,
    proxy_probes,
    reason_text,
    recorded,
    server_label,
    source_word,
)


def render(r: RunResult, m: Messages) -> str:
    out = [f"# {m('heading.summary', school=r.school.name, school_id=r.school.id)}", ""]
    out.append(f"**{m(f'status.{r.status}')}**")
    out.append("")
    if r.interrupted:
        out += [f"> {m('interrupted')}", ""]
    mode = m(f"mode.{r.mode}") if m.has(f"mode.{r.mode}") else r.mode
    out.append(f"- {m('label.profile')}: {r.profile}")
    out.append(f"- {m('label.started')}: {r.started_at} ({m('label.duration')}: {r.duration_s:.0f} s, {m('label.mode')}: {mode})")
    out.append(f"- {m('label.host')}: {r.host.get('hostname', '?')} / {r.host.get('os_name', '?')} / {r.host.get('interface') or '?'}")
    out.append("")
    likely = claims(r.causes)
    out += [f"## {m('heading.causes')}", ""]
    if not likely:
        out += [m("no_claim"), ""]
    for c in likely:
        out.append(f"### {m(f'cause.{c.id}')} — `{c.id}` ({m(f'segment.{c.segment}')}, {c.confidence:.0%})")
        out.append("")
        for e in c.evidence:
            out.append(f"- {evidence_text(e, m)}")
        out.append(f"- {m('label.advice')}: {m(c.advice)}")
        out.append(f"- {m('md.rules')}: {', '.join(c.rules)}")
        out.append("")
    rest = [c for c in r.causes if c not in likely]
    if rest:
        out += [f"## {m('heading.possible')}", ""]
        out += [
            f"- {m(f'cause.{c.id}')} `{c.id}` ({c.confidence:.0%}): " + "; ".join(evidence_text(e, m) for e in c.evidence) for c in rest
        ]
        out.append("")
    out += [
        f"## {m('heading.checks')}",
        "",
        f"| {m('col.check')} | {m('col.classroom')} | {m('col.measured')} | {m('col.threshold')} | {m('col.status')} |",
        "|---|---|---|---|---|",
    ]
    order = {"fail": 0, "warn": 1, "not-measured": 2, "pass": 3}
    for c in sorted(r.checks, key=lambda c: order.get(c.status, 9)):
        measured, threshold = fmt_check_value(c, m)
        est = f" {m('label.estimate')}" if c.estimate else ""
        out.append(
            f"| {check_label(m, c)} `{c.id}` | {c.classroom or '—'} | {measured} | {threshold}{est} | {m(f'status_word.{c.status}')} |"
        )
    out.append("")
    out += [
        f"## {m('heading.measurements')}",
        "",
        f"| {m('col.target')} | {m('col.method')} | {m('md.phase')} | p50 | p95 | {m('md.jitter')} | {m('md.loss')} |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in r.measurements.latency:
        out.append(
            f"| {s.target} ({s.host}) | `{s.method}` | {phase_text(m, s.phase)} | {fmt_value(s.stats.p50_ms, 'ms')} | {fmt_value(s.stats.p95_ms, 'ms')} | {fmt_value(s.stats.jitter_ms, 'ms')} | {fmt_value(s.stats.loss_pct, '%')} |"
        )
    out.append("")
    for b in r.measurements.bandwidth:
        label = m("label.download") if b.direction == "download" else m("label.upload")
        out.append(
            f"- {label} ({m('md.streams', n=b.streams)}) → {b.target}: {fmt_value(b.goodput_mbps, 'Mbps')} (p50 {fmt_value(b.p50_mbps, 'Mbps')}, p90 {fmt_value(b.p90_mbps, 'Mbps')}){' — ' + b.error if b.error else ''}"
        )
        if b.engine != "http" or b.notes:  # which engine and server gave the figure, and its warnings
            out.append(f"  - {m('md.engine_server', engine=b.engine, server=server_label(b))}")
            out += [f"  - ⚠ {m(n)}" for n in b.notes]
    for d in r.measurements.dns:
        kind = m(f"dns_kind.{d.kind}") if m.has(f"dns_kind.{d.kind}") else d.kind
        out.append(
            "- "
            + m(
                "md.dns_line",
                resolver=d.resolver,
                server=d.server,
                name=d.name,
                kind=kind,
                p50=fmt_value(d.p50_ms, "ms"),
                timeouts=d.timeouts,
                total=len(d.times_ms),
                rcodes=", ".join(sorted(set(d.rcodes))) or "—",
            )
        )
    out.append("")
    out += _families(r, m) + _proxy(r, m) + _paths(r, m)
    lines = not_measured_lines(m, r)
    if lines:
        out += [f"## {m('heading.not_measured')}", ""]
        out += [f"- {(f'`{x.subject}`' if x.subject_is_id else x.subject) + ': ' if x.subject else ''}{x.text}" for x in lines] + [""]
    out += [f"## {m('heading.probes')}", ""]
    for p in r.probes:
        reason = joined(reason_text(m, p)[0])
        word = m(f"probe_status.{p.status}") if m.has(f"probe_status.{p.status}") else p.status
        out.append(f"- `{p.probe}`: {word}{' — ' + reason if reason else ''}")
    out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _families(r: RunResult, m: Messages) -> list[str]:
    """IPv4 vs IPv6 to the same server: TCP connect p50 and download per family."""
    fams = r.measurements.families
    if not fams:
        return []
    out = [
        f"## {m('heading.families')}",
        "",
        f"| {m('col.server')} | {m('col.family')} | {m('col.address')} | {m('col.connect_p50')} | {m('col.download_mbps')} |",
        "|---|---|---|---|---|",
    ]
    for f in fams:
        fam = m(f"family.{f.family}") if m.has(f"family.{f.family}") else f.family
        rtt = fmt_value(f.rtt.stats.p50_ms, "ms") if f.rtt is not None else "—"
        down = fmt_value(f.download.goodput_mbps, "Mbps") if f.download is not None else "—"
        if f.status != "ok":
            why = joined(recorded(m, f.reason, "reason.family_")[0])
            down = f"{m('status_word.not-measured')}{': ' + why if why else ''}"
        out.append(f"| {_cell(f.target)} | {fam} | {_cell(f.address)} | {rtt} | {_cell(down)} |")
    return out + [""]


def _proxy(r: RunResult, m: Messages) -> list[str]:
    """Which proxy, what it costs (TCP connect vs first byte), which probes went direct."""
    p = r.measurements.proxy
    if p is None:
        return []
    out = [f"## {m('heading.proxy')}", ""]
    proxies = list(dict.fromkeys(x for x in (p.http, p.https) if x))
    if proxies or p.source:
        out.append(f"- {m('proxy.settings', source=source_word(m, p.source), proxy=', '.join(proxies) or '—')}")
    else:
        out.append(f"- {m('proxy.none')}")
    if p.pac_url:
        status = (
            m(f"proxy.pac_status.{p.pac_status}") if p.pac_status and m.has(f"proxy.pac_status.{p.pac_status}") else (p.pac_status or "—")
        )
        out.append(f"- {m('proxy.pac', url=p.pac_url, status=status)}")
    for via, key in (("direct", "proxy.probes_direct"), ("proxy", "proxy.probes_via")):
        probes = proxy_probes(m, p.probe_paths, via)
        if probes:
            out.append(f"- {m(key, probes=', '.join(f'{label} `{pid}`'.strip() for label, pid in probes))}")
    for n in p.notes:
        out.append(f"- {joined(recorded(m, n, 'note.')[0])}")
    out.append("")
    if p.paths:
        out += [
            f"| {m('col.target')} | {m('col.proxy')} | {m('col.decided_by')} | {m('col.proxy_connect')} | {m('col.ttfb')} |",
            "|---|---|---|---|---|",
        ]
        for pp in p.paths:
            connect = fmt_value(pp.connect.stats.p50_ms, "ms") if pp.connect is not None else "—"
            ttfb = fmt_value(pp.ttfb.stats.p50_ms, "ms") if pp.ttfb is not None else "—"
            if pp.error:
                ttfb += f" ({pp.error})"
            out.append(
                f"| {_cell(pp.target)} | {_cell(pp.proxy or m('proxy.direct'))} | {source_word(m, pp.decided_by)} | {connect} | {_cell(ttfb)} |"
            )
        out.append("")
    return out


def _paths(r: RunResult, m: Messages) -> list[str]:
    """Each discovered path, hop by hop: who answered, idle and loaded p50, loss."""
    out: list[str] = []
    for d in r.measurements.paths:
        out += [f"## {m('heading.discovered_path', target=d.target, host=d.host)}", ""]
        if d.method:
            hops = len(d.hops)
            out += [m("path.reached" if d.reached else "path.not_reached", method=f"`{d.method}`", hops=hops), ""]
        elif d.error:
            out += [d.error, ""]
        if not d.hops:
            continue
        out += [
            f"| {m('col.hop')} | {m('col.address')} | {m('col.idle_p50')} | {m('col.loaded_p50')} | {m('col.loss')} |",
            "|---|---|---|---|---|",
        ]
        for h in d.hops:
            addr = h.address or m("path.silent")
            if h.other_addresses:
                addr += " / " + " / ".join(h.other_addresses)
            if h.role and h.role != "hop" and m.has(f"diagram.{h.role}"):
                addr += f" ({m(f'diagram.{h.role}')})"
            idle = fmt_value(h.idle.p50_ms, "ms") if h.idle else "—"
            loaded = fmt_value(h.loaded.p50_ms, "ms") if h.loaded else "—"
            loss = fmt_value(h.idle.loss_pct, "%") if h.idle else "—"
            out.append(f"| {h.ttl} | {_cell(addr)} | {idle} | {loaded} | {loss} |")
        out.append("")
    return out
