"""Markdown report: verdict, failed checks, causes with evidence, what was not measured."""

from __future__ import annotations

from ..i18n import Messages
from ..models import RunResult, claims
from . import check_label, evidence_text, fmt_check_value, fmt_value


def render(r: RunResult, m: Messages) -> str:
    out = [f"# {m('heading.summary', school=r.school.name, school_id=r.school.id)}", ""]
    out.append(f"**{m(f'status.{r.status}')}**")
    out.append("")
    if r.interrupted:
        out += [f"> {m('interrupted')}", ""]
    out.append(f"- {m('label.profile')}: {r.profile}")
    out.append(f"- {m('label.started')}: {r.started_at} ({m('label.duration')}: {r.duration_s:.0f} s, {m('label.mode')}: {r.mode})")
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
            out.append(f"- {evidence_text(e)}")
        out.append(f"- {m('label.advice')}: {m(c.advice)}")
        out.append(f"- rules: {', '.join(c.rules)}")
        out.append("")
    rest = [c for c in r.causes if c not in likely]
    if rest:
        out += [f"## {m('heading.possible')}", ""]
        out += [f"- `{c.id}` ({c.confidence:.0%}): " + "; ".join(evidence_text(e) for e in c.evidence) for c in rest]
        out.append("")
    out += [f"## {m('heading.checks')}", "", f"| {m('col.check')} | {m('col.classroom')} | {m('col.measured')} | {m('col.threshold')} | {m('col.status')} |", "|---|---|---|---|---|"]
    order = {"fail": 0, "warn": 1, "not-measured": 2, "pass": 3}
    for c in sorted(r.checks, key=lambda c: order.get(c.status, 9)):
        measured, threshold = fmt_check_value(c)
        est = f" {m('label.estimate')}" if c.estimate else ""
        out.append(f"| {check_label(m, c)} `{c.id}` | {c.classroom or '—'} | {measured} | {threshold}{est} | {m(f'status_word.{c.status}')} |")
    out.append("")
    out += [f"## {m('heading.measurements')}", "", f"| {m('col.target')} | {m('col.method')} | phase | p50 | p95 | jitter | loss |", "|---|---|---|---|---|---|---|"]
    for s in r.measurements.latency:
        out.append(f"| {s.target} ({s.host}) | {s.method} | {s.phase} | {fmt_value(s.stats.p50_ms, 'ms')} | {fmt_value(s.stats.p95_ms, 'ms')} | {fmt_value(s.stats.jitter_ms, 'ms')} | {fmt_value(s.stats.loss_pct, '%')} |")
    out.append("")
    for b in r.measurements.bandwidth:
        label = m("label.download") if b.direction == "download" else m("label.upload")
        out.append(f"- {label} x{b.streams} → {b.target}: {fmt_value(b.goodput_mbps, 'Mbps')} (p50 {fmt_value(b.p50_mbps, 'Mbps')}, p90 {fmt_value(b.p90_mbps, 'Mbps')}){' — ' + b.error if b.error else ''}")
    for d in r.measurements.dns:
        out.append(f"- DNS {d.resolver}@{d.server} {d.name} {d.kind}: p50 {fmt_value(d.p50_ms, 'ms')}, timeouts {d.timeouts}/{len(d.times_ms)}, rcodes {', '.join(sorted(set(d.rcodes))) or '—'}")
    out.append("")
    if r.not_measured:
        out += [f"## {m('heading.not_measured')}", ""] + [f"- {x}" for x in r.not_measured] + [""]
    out += [f"## {m('heading.probes')}", ""]
    out += [f"- {p.probe}: {m(f'probe_status.{p.status}')}{' — ' + p.reason if p.reason else ''}" for p in r.probes]
    out.append("")
    return "\n".join(out)
