"""Markdown report: verdict, failed checks, causes with evidence, what was not measured.

Every word comes from the message catalogue; recorded sentences (evidence notes, probe
reasons, not-measured items) are said from their message keys (``render.common.say``). What is shown
as recorded is data: ids, names, addresses, numbers and OS error texts.

Data is text, never markup: every value from outside (a school or classroom name from a site
file, a server's id or error text, anything in a result file a reader hands to ``report``) goes
through :func:`md` (or :func:`code` for ids), which keeps it on one line and escapes what Markdown or
HTML would act on, so a name like ``<script>`` or ``[x](javascript:...)`` is shown as written.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

from giga_netcheck.core.i18n import Messages, catalogue
from giga_netcheck.core.models import Check, Evidence, RunResult, claims
from giga_netcheck.render.common import (
    Pieces,
    check_label,
    fmt_check_value,
    fmt_value,
    missing_said,
    not_measured_lines,
    note_text,
    phase_text,
    proxy_probes,
    reason_text,
    recorded,
    server_label,
    third_party_notes,
)

_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
_SPECIAL = re.compile(r"[\\`*|~]|\](?=[(\[:]|$)")
"""Backslash-escaped: what starts code, emphasis, table cells, strikethrough; a ``]`` that could close
a link, an image or a link reference definition (``](``, ``][``, ``]:``, or last, before the report's
own text), so ``[Errno 111] Connection refused`` stays as is."""
_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
_LONE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
"""An underscore that is not between two letters or digits (only those can start or end emphasis)."""
_BLOCK_START = re.compile(r"^([ \t]*)(?:(#{1,6}|[-+])(?=[ \t]|$)|([-=])(?=[-= \t]*$)|([0-9]{1,9})([.)])(?=[ \t]|$))")
"""What would make a line a heading, list item, rule or underline when the value starts it."""


def _unblock(hit: re.Match[str]) -> str:
    if hit.group(4):  # "1. " -> "1\. "
        return hit.group(1) + hit.group(4) + "\\" + hit.group(5)
    return hit.group(1) + "\\" + (hit.group(2) or hit.group(3))


def md(value: object) -> str:
    """Outside text as Markdown that shows exactly that text: one line, no markup, no raw HTML."""
    text = _LINE_BREAK.sub(" ", "" if value is None else str(value))
    text = _SPECIAL.sub(r"\\\g<0>", text)
    text = _LONE_UNDERSCORE.sub(r"\\_", text)
    text = _ENTITY.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return _BLOCK_START.sub(_unblock, text, count=1)


def code(value: object) -> str:
    """An id as inline code; text a code span cannot hold as written (a backtick, a ``|``, a line
    break) or that looks like a tag or a link is shown as escaped text instead."""
    text = "" if value is None else str(value)
    if any(ch in text for ch in "`|<>[]") or _LINE_BREAK.search(text):
        return md(text)
    return f"`{text}`"


def _known(m: Messages, key: str) -> bool:
    return m.has(key) or catalogue("en").get(key) is not None


def _word(m: Messages, key: str, fallback: Optional[str] = None) -> str:
    """A catalogue word; a key no catalogue knows (an id from a newer or a hostile result) as data."""
    return m(key) if _known(m, key) else md(key if fallback is None else fallback)


def _said(pieces: Pieces) -> str:
    """A recorded sentence: the catalogue's words as they are, the values (names, error texts) as data."""
    return "".join(md(t) if value else t for t, value in pieces)


def _evidence(e: Evidence, m: Messages) -> str:
    """One evidence line: metric@target = value [check id] (note)."""
    text = md(e.metric) + (f" @{md(e.target)}" if e.target else "") + f" = {fmt_value(e.value, md(e.unit))}"
    if e.check_id:
        text += f" [{md(e.check_id)}]"
    note = _said(note_text(m, e)[0])
    return text + (f" ({note})" if note else "")


def _check_label(m: Messages, c: Check) -> str:
    path_check = c.id.startswith(("path.reachable.", "path.server."))
    key = "check." + (c.id.rsplit(".", 1)[0] if path_check else c.id)
    if not _known(m, key):
        return md(check_label(m, c))
    return m(key) + (f" ({md(c.id.rsplit('.', 1)[1])})" if path_check else "")


def _values(c: Check, m: Messages) -> tuple[str, str]:
    return fmt_check_value(dataclasses.replace(c, unit=md(c.unit)), m)


def _source_word(m: Messages, source: Optional[str]) -> str:
    return m(f"proxy.source.{source}") if source and m.has(f"proxy.source.{source}") else md(source or "—")


def render(r: RunResult, m: Messages) -> str:
    out = [f"# {m('heading.summary', school=md(r.school.name), school_id=md(r.school.id))}", ""]
    out.append(f"**{_word(m, f'status.{r.status}', r.status)}**")
    out.append("")
    missing = missing_said(m, r)  # what the classrooms need that was not measured, and why
    out += [f"- {m('missing.line', need=md(need), why='; '.join(_said(p) for p in why))}" for need, why in missing]
    out += [""] if missing else []
    if r.interrupted:
        out += [f"> {m('interrupted')}", ""]
    mode = m(f"mode.{r.mode}") if m.has(f"mode.{r.mode}") else md(r.mode)
    host = r.host
    out.append(f"- {m('label.profile')}: {md(r.profile)}")
    out.append(f"- {m('label.started')}: {md(r.started_at)} ({m('label.duration')}: {r.duration_s:.0f} s, {m('label.mode')}: {mode})")
    out.append(
        f"- {m('label.host')}: {md(host.get('hostname', '?'))} / {md(host.get('os_name', '?'))} / {md(host.get('interface') or '?')}"
    )
    out.append("")
    likely = claims(r.causes)
    out += [f"## {m('heading.causes')}", ""]
    if not likely:
        out += [m("no_claim"), ""]
    for c in likely:
        out.append(
            f"### {_word(m, f'cause.{c.id}', c.id)} — {code(c.id)} ({_word(m, f'segment.{c.segment}', c.segment)}, {c.confidence:.0%})"
        )
        out.append("")
        for e in c.evidence:
            out.append(f"- {_evidence(e, m)}")
        out.append(f"- {m('label.advice')}: {_word(m, c.advice)}")
        out.append(f"- {m('md.rules')}: {', '.join(md(x) for x in c.rules)}")
        out.append("")
    rest = [c for c in r.causes if c not in likely]
    if rest:
        out += [f"## {m('heading.possible')}", ""]
        out += [
            f"- {_word(m, f'cause.{c.id}', c.id)} {code(c.id)} ({c.confidence:.0%}): " + "; ".join(_evidence(e, m) for e in c.evidence)
            for c in rest
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
        measured, threshold = _values(c, m)
        est = f" {m('label.estimate')}" if c.estimate else ""
        out.append(
            f"| {_check_label(m, c)} {code(c.id)} | {md(c.classroom or '—')} | {measured} | {threshold}{est} | {_word(m, f'status_word.{c.status}', c.status)} |"
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
            f"| {md(s.target)} ({md(s.host)}) | {code(s.method)} | {phase_text(m, md(s.phase))} | {fmt_value(s.stats.p50_ms, 'ms')} | {fmt_value(s.stats.p95_ms, 'ms')} | {fmt_value(s.stats.jitter_ms, 'ms')} | {fmt_value(s.stats.loss_pct, '%')} |"
        )
    out.append("")
    for b in r.measurements.bandwidth:
        label = m("label.download") if b.direction == "download" else m("label.upload")
        out.append(
            f"- {label} ({m('md.streams', n=b.streams)}) → {md(b.target)}: {fmt_value(b.goodput_mbps, 'Mbps')} (p50 {fmt_value(b.p50_mbps, 'Mbps')}, p90 {fmt_value(b.p90_mbps, 'Mbps')}){' — ' + md(b.error) if b.error else ''}"
        )
        if b.engine != "http" or b.notes:  # which engine and server gave the figure, and its warnings
            out.append(f"  - {m('md.engine_server', engine=md(b.engine), server=md(server_label(b)))}")
            out += [f"  - ⚠ {_word(m, n)}" for n in b.notes]
    for d in r.measurements.dns:
        kind = m(f"dns_kind.{d.kind}") if m.has(f"dns_kind.{d.kind}") else md(d.kind)
        out.append(
            "- "
            + m(
                "md.dns_line",
                resolver=md(d.resolver),
                server=md(d.server),
                name=md(d.name),
                kind=kind,
                p50=fmt_value(d.p50_ms, "ms"),
                timeouts=d.timeouts,
                total=len(d.times_ms),
                rcodes=", ".join(md(x) for x in sorted(set(d.rcodes))) or "—",
            )
        )
    out.append("")
    out += _families(r, m) + _proxy(r, m) + _paths(r, m)
    notes = third_party_notes(m, r)
    if notes:
        out += [f"## {m('heading.third_party')}", ""] + [f"- {md(n)}" for n in notes] + [""]
    lines = not_measured_lines(m, r)
    if lines:
        out += [f"## {m('heading.not_measured')}", ""]
        out += [
            f"- {((code(x.subject) if x.subject_is_id else md(x.subject)) + ': ') if x.subject else ''}{_said(x.pieces)}" for x in lines
        ] + [""]
    out += [f"## {m('heading.probes')}", ""]
    for p in r.probes:
        reason = _said(reason_text(m, p)[0])
        word = m(f"probe_status.{p.status}") if m.has(f"probe_status.{p.status}") else md(p.status)
        out.append(f"- {code(p.probe)}: {word}{' — ' + reason if reason else ''}")
    out.append("")
    return "\n".join(out)


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
        fam = m(f"family.{f.family}") if m.has(f"family.{f.family}") else md(f.family)
        rtt = fmt_value(f.rtt.stats.p50_ms, "ms") if f.rtt is not None else "—"
        down = fmt_value(f.download.goodput_mbps, "Mbps") if f.download is not None else "—"
        if f.status != "ok":
            why = _said(recorded(m, f.reason, "reason.family_")[0])
            down = f"{m('status_word.not-measured')}{': ' + why if why else ''}"
        out.append(f"| {md(f.target)} | {fam} | {md(f.address)} | {rtt} | {down} |")
    return out + [""]


def _proxy(r: RunResult, m: Messages) -> list[str]:
    """Which proxy, what it costs (TCP connect vs first byte), which probes went direct."""
    p = r.measurements.proxy
    if p is None:
        return []
    out = [f"## {m('heading.proxy')}", ""]
    proxies = list(dict.fromkeys(x for x in (p.http, p.https) if x))
    if proxies or p.source:
        out.append(f"- {m('proxy.settings', source=_source_word(m, p.source), proxy=', '.join(md(x) for x in proxies) or '—')}")
    else:
        out.append(f"- {m('proxy.none')}")
    if p.pac_url:
        status = (
            m(f"proxy.pac_status.{p.pac_status}") if p.pac_status and m.has(f"proxy.pac_status.{p.pac_status}") else md(p.pac_status or "—")
        )
        out.append(f"- {m('proxy.pac', url=md(p.pac_url), status=status)}")
    for via, key in (("direct", "proxy.probes_direct"), ("proxy", "proxy.probes_via")):
        probes = proxy_probes(m, p.probe_paths, via)
        if probes:
            out.append(f"- {m(key, probes=', '.join(f'{label} {code(pid)}'.strip() for label, pid in probes))}")
    for n in p.notes:
        out.append(f"- {_said(recorded(m, n, 'note.')[0])}")
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
                ttfb += f" ({md(pp.error)})"
            proxy = md(pp.proxy) if pp.proxy else m("proxy.direct")
            out.append(f"| {md(pp.target)} | {proxy} | {_source_word(m, pp.decided_by)} | {connect} | {ttfb} |")
        out.append("")
    return out


def _paths(r: RunResult, m: Messages) -> list[str]:
    """Each discovered path, hop by hop: who answered, idle and loaded p50, loss."""
    out: list[str] = []
    for d in r.measurements.paths:
        out += [f"## {m('heading.discovered_path', target=md(d.target), host=md(d.host))}", ""]
        if d.method:
            hops = len(d.hops)
            out += [m("path.reached" if d.reached else "path.not_reached", method=code(d.method), hops=hops), ""]
        elif d.error:
            out += [md(d.error), ""]
        if not d.hops:
            continue
        out += [
            f"| {m('col.hop')} | {m('col.address')} | {m('col.idle_p50')} | {m('col.loaded_p50')} | {m('col.loss')} |",
            "|---|---|---|---|---|",
        ]
        for h in d.hops:
            addr = md(h.address) if h.address else m("path.silent")
            if h.other_addresses:
                addr += " / " + " / ".join(md(x) for x in h.other_addresses)
            if h.role and h.role != "hop" and m.has(f"diagram.{h.role}"):
                addr += f" ({m(f'diagram.{h.role}')})"
            idle = fmt_value(h.idle.p50_ms, "ms") if h.idle else "—"
            loaded = fmt_value(h.loaded.p50_ms, "ms") if h.loaded else "—"
            loss = fmt_value(h.idle.loss_pct, "%") if h.idle else "—"
            out.append(f"| {h.ttl} | {addr} | {idle} | {loaded} | {loss} |")
        out.append("")
    return out
