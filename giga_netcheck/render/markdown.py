"""Markdown report: verdict, failed checks, causes with evidence, what was not measured.

Every word comes from the message catalogue; recorded sentences (evidence notes, probe
reasons, not-measured items) are said from their message keys (``render.say``). What is shown
as recorded is data: ids, names, addresses, numbers and OS error texts.
"""

from __future__ import annotations

from ..i18n import Messages
from ..models import RunResult, claims
from . import check_label, evidence_text, fmt_check_value, fmt_value, joined, not_measured_lines, phase_text, reason_text


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
        out += [f"- {m(f'cause.{c.id}')} `{c.id}` ({c.confidence:.0%}): " + "; ".join(evidence_text(e, m) for e in c.evidence) for c in rest]
        out.append("")
    out += [f"## {m('heading.checks')}", "", f"| {m('col.check')} | {m('col.classroom')} | {m('col.measured')} | {m('col.threshold')} | {m('col.status')} |", "|---|---|---|---|---|"]
    order = {"fail": 0, "warn": 1, "not-measured": 2, "pass": 3}
    for c in sorted(r.checks, key=lambda c: order.get(c.status, 9)):
        measured, threshold = fmt_check_value(c, m)
        est = f" {m('label.estimate')}" if c.estimate else ""
        out.append(f"| {check_label(m, c)} `{c.id}` | {c.classroom or '—'} | {measured} | {threshold}{est} | {m(f'status_word.{c.status}')} |")
    out.append("")
    out += [f"## {m('heading.measurements')}", "",
            f"| {m('col.target')} | {m('col.method')} | {m('md.phase')} | p50 | p95 | {m('md.jitter')} | {m('md.loss')} |", "|---|---|---|---|---|---|---|"]
    for s in r.measurements.latency:
        out.append(f"| {s.target} ({s.host}) | `{s.method}` | {phase_text(m, s.phase)} | {fmt_value(s.stats.p50_ms, 'ms')} | {fmt_value(s.stats.p95_ms, 'ms')} | {fmt_value(s.stats.jitter_ms, 'ms')} | {fmt_value(s.stats.loss_pct, '%')} |")
    out.append("")
    for b in r.measurements.bandwidth:
        label = m("label.download") if b.direction == "download" else m("label.upload")
        out.append(f"- {label} ({m('md.streams', n=b.streams)}) → {b.target}: {fmt_value(b.goodput_mbps, 'Mbps')} (p50 {fmt_value(b.p50_mbps, 'Mbps')}, p90 {fmt_value(b.p90_mbps, 'Mbps')}){' — ' + b.error if b.error else ''}")
        if b.engine != "http" or b.notes:  # which engine and server gave the figure, and its warnings
            out.append(f"  - {m('md.engine_server', engine=b.engine, server=_server_label(b))}")
            out += [f"  - ⚠ {m(n)}" for n in b.notes]
    for d in r.measurements.dns:
        kind = m(f"dns_kind.{d.kind}") if m.has(f"dns_kind.{d.kind}") else d.kind
        out.append("- " + m("md.dns_line", resolver=d.resolver, server=d.server, name=d.name, kind=kind, p50=fmt_value(d.p50_ms, "ms"),
                            timeouts=d.timeouts, total=len(d.times_ms), rcodes=", ".join(sorted(set(d.rcodes))) or "—"))
    out.append("")
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


def _server_label(b) -> str:
    """The engine's server in a few words: Ookla id and sponsor, LibreSpeed name, or the URL."""
    srv = b.server or {}
    if srv.get("kind") == "ookla":
        return f"Ookla #{srv.get('id')} {srv.get('sponsor', '')} ({srv.get('host', '')})".strip()
    if srv.get("kind") == "librespeed":
        return f"{srv.get('name')} ({srv.get('url', b.url)})"
    return srv.get("url") or b.url or "—"
