"""HTML report: one self-contained page (inline CSS and SVG, no scripts, no external loads).

Made for the IT person to hand to a principal, a board officer or a carrier: the verdict first,
then where on the path the trouble is, then the charts, then the checks and the evidence a
reader can verify. It works offline, prints on A4, and a Content-Security-Policy meta tag
blocks any external load should one ever slip in. Every value is escaped; every word a person
reads comes from the message catalogue (``Messages``). Text that comes from the measurement
data itself (probe errors, threshold sources) is shown as recorded, in elements marked
``class="raw"``.

``measurements.load`` (the load ramp, a ``LoadResult``) is charted as goodput against connections
per step, the knee marked, when it holds steps; otherwise the report says it was not measured.
"""

from __future__ import annotations

from html import escape
from typing import Any, Iterable, Optional

from giga_netcheck.core.facts import Facts
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import Cause, Check, LatencySeries, LoadResult, RunResult, claims
from giga_netcheck.core.triage import bufferbloat_grade
from giga_netcheck.render import svg
from giga_netcheck.render.common import (
    Pieces,
    check_label,
    detail_text,
    fmt_value,
    missing_said,
    not_measured_lines,
    note_text,
    proxy_probes,
    reason_text,
    recorded,
    server_label,
    source_text,
    source_word,
    third_party_notes,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
"""Nothing but the page's own inline styles and data: images may load."""

STATUS_ORDER = {"fail": 0, "warn": 1, "not-measured": 2, "pass": 3}
_VERDICT_CLASS = {"incomplete": "warn", "no-connectivity": "error"}
"""The verdict box's colours for the statuses that have none of their own."""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(v: Optional[float]) -> str:
    """A number without its unit (evidence tables), or an em dash."""
    return fmt_value(v, "")


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _link(mbps: Any) -> str:
    try:
        return f"{float(mbps):,.0f} Mbps"
    except (TypeError, ValueError):
        return str(mbps)


def _target_label(m: Messages, name: str, role: str) -> str:
    """The role in the reader's language, with the target's own name when it differs."""
    key = f"diagram.{role}"
    label = m(key) if m.has(key) else role
    return label if name == role else f"{label} ({name})"


def _code(text: Optional[str]) -> str:
    return f"<code>{_e(text)}</code>" if text else "—"


def _raw(text: object, tag: str = "span") -> str:
    """Text recorded by the measurement (OS error texts, threshold sources), marked as such."""
    return f'<{tag} class="raw">{_e(text)}</{tag}>'


def _said(pieces: Pieces, translated: bool = True) -> str:
    """A recorded sentence said from its message key: the words escaped, the values (names,
    numbers, recorded error texts) marked as data; a sentence without a key is data as a whole."""
    return "".join(_raw(t) if value else _ticks(t) for t, value in pieces)


def _ticks(text: str) -> str:
    """Catalogue text with `site-file keys` and `commands` in backticks shown as code."""
    words = text.split("`")
    return "".join(f"<code>{_e(w)}</code>" if i % 2 else _e(w) for i, w in enumerate(words))


# ----------------------------------------------------------------------------- sections


def _verdict(r: RunResult, m: Messages) -> str:
    counts = {s: sum(1 for c in r.checks if c.status == s) for s in ("fail", "warn", "pass", "not-measured")}
    out = [
        f'<section class="verdict status-{_e(_VERDICT_CLASS.get(r.status, r.status))}" id="verdict" data-status="{_e(r.status)}">',
        f"<h2>{_e(m('html.verdict'))}</h2>",
        f'<p class="status-line">{_e(m(f"status.{r.status}"))}</p>',
    ]
    if r.checks:
        out.append(
            f'<p class="counts">{_e(m("html.counts", fail=counts["fail"], warn=counts["warn"], **{"pass": counts["pass"]}, not_measured=counts["not-measured"]))}</p>'
        )
    if r.interrupted:
        out.append(f'<p class="interrupted">{_e(m("interrupted"))}</p>')
    for need, why in missing_said(m, r):  # what the classrooms need that was not measured, and why
        out.append(f'<p class="interrupted missing">{_msg(m, "missing.line", {"why": "; ".join(_said(p) for p in why)}, need=need)}</p>')
    likely = claims(r.causes)
    out.append(f"<h3>{_e(m('heading.causes'))}</h3>")
    if likely:
        out.append('<ol class="claims">')
        for c in likely:
            sentence = m("html.cause_sentence", cause=m(f"cause.{c.id}"), segment=m(f"segment.{c.segment}"), confidence=_pct(c.confidence))
            out.append(
                f'<li data-cause="{_e(c.id)}"><strong>{_e(sentence)}</strong><br>'
                f'<span class="advice">{_e(m("html.advice_sentence", advice=m(c.advice)))}</span></li>'
            )
        out.append("</ol>")
    elif r.status in ("error", "no-connectivity"):
        out.append(f'<p class="no-claim">{_e(m("html.no_cause_error"))}</p>')
    else:
        out.append(f'<p class="no-claim">{_e(m("no_claim"))}</p>')
    out.append("</section>")
    return "".join(out)


def _first(r: RunResult, role: str):
    return next((t for t in r.targets if t.role == role), None)


def _idle(r: RunResult, target: str) -> Optional[LatencySeries]:
    return next((s for s in r.measurements.latency if s.target == target and s.phase == "idle"), None)


def _rtt_line(r: RunResult, m: Messages, target: Optional[str]) -> list[str]:
    if target is None:
        return []
    s = _idle(r, target)
    if s is None:
        return []
    if s.stats.p50_ms is None:
        return [m("chart.no_answer")]
    return [f"RTT {fmt_value(s.stats.p50_ms, 'ms')}"]


def _path(r: RunResult, m: Messages) -> str:
    host = r.host or {}
    nodes: list[svg.Node] = []
    dev_lines = [str(x) for x in (host.get("interface"),) if x]
    wifi = host.get("wifi") or {}
    if host.get("link_speed_mbps"):
        dev_lines.append(_link(host["link_speed_mbps"]))
    elif isinstance(wifi, dict) and wifi.get("signal_dbm") is not None:
        dev_lines.append(f"{wifi.get('band') or ''} {wifi['signal_dbm']} dBm".strip())
    nodes.append(svg.Node("device", m("diagram.device"), tuple(dev_lines[:2])))
    nodes.append(svg.Node("lan", m("diagram.lan")))
    for seg in ("gateway", "center", "internet"):
        t = _first(r, seg)
        lines: list[str] = []
        if t is not None:
            extra = sum(1 for x in r.targets if x.role == seg) - 1
            lines.append(t.host + (f" +{extra}" if extra > 0 else ""))
            lines += _rtt_line(r, m, t.name)
        elif seg == "gateway" and host.get("gateway_ipv4"):
            lines.append(str(host["gateway_ipv4"]))
        nodes.append(svg.Node(seg, m(f"diagram.{seg}"), tuple(lines), absent=t is None))
        if seg == "gateway":
            nodes.append(svg.Node("uplink", m("diagram.uplink")))
    servers = list(dict.fromkeys(d.server for d in r.measurements.dns))
    dns_lines = servers[:1] + ([servers[1] + (f" +{len(servers) - 2}" if len(servers) > 2 else "")] if len(servers) > 1 else [])
    nodes.append(svg.Node("dns", m("diagram.dns"), tuple(dns_lines), absent=not servers))
    suspects = list(dict.fromkeys(c.segment for c in claims(r.causes)))
    diagram = svg.path_diagram(
        nodes, suspects, suspect_label=m("diagram.suspect"), title=m("diagram.title"), absent_label=m("diagram.not_configured")
    )
    return (
        f'<section id="path"><h2>{_e(m("heading.path"))}</h2><figure>{diagram}'
        f"<figcaption>{_e(m('diagram.legend'))}</figcaption></figure></section>"
    )


def _bandwidth_chart(r: RunResult, m: Messages, direction: str, facts: Facts) -> str:
    cid = "classroom.bandwidth.down" if direction == "download" else "classroom.bandwidth.up"
    key = "bw_down" if direction == "download" else "bw_up"
    title = m(f"chart.{key}.title")
    rows = [c for c in r.checks if c.id == cid]
    head = f'<figure class="chart-box" id="fig-{key}"><figcaption>{_e(title)}</figcaption>'
    if not rows:
        return head + f'<p class="empty">{_e(m("chart.none"))}</p></figure>'
    devices = {c.name: c.devices for c in r.classrooms}
    groups = []
    for c in rows:
        mark, mark_class = "", ""
        if c.status in ("fail", "warn"):
            mark, mark_class = m(f"status_word.{c.status}"), c.status
        measured_text = fmt_value(c.measured, c.unit) if c.measured is not None else m("chart.not_measured")
        groups.append(
            svg.Group(
                c.classroom or "—",
                (
                    svg.Bar(
                        c.threshold, "needed", fmt_value(c.threshold, c.unit), f"{m('chart.needed')}: {fmt_value(c.threshold, c.unit)}"
                    ),
                    svg.Bar(c.measured, "measured", measured_text, f"{m('chart.measured')}: {measured_text}", mark, mark_class),
                ),
                m("meta.devices", n=devices[c.classroom]) if c.classroom in devices else "",
            )
        )
    refs: tuple[svg.RefLine, ...] = ()
    mext = next((c for c in r.checks if c.id == "school.bandwidth.mext"), None)
    if direction == "download" and mext is not None and mext.threshold is not None:
        value = fmt_value(mext.threshold, mext.unit) + (f" {m('label.estimate')}" if mext.estimate else "")
        refs = (svg.RefLine(mext.threshold, m("chart.mext", value=value)),)
    chart = svg.bar_chart(
        svg.BarChart(
            tuple(groups),
            "Mbps",
            (svg.Legend("needed", m("chart.needed")), svg.Legend("measured", m("chart.measured"))),
            refs,
            title,
            chart_id=f"chart-{key}",
        )
    )
    line = facts.line(direction)
    note = f'<p class="note">{_e(m("chart.bw.note", target=_target_label(m, line.target, line.role)))}</p>' if line else ""
    return head + chart + note + "</figure>"


def _worst_loaded(r: RunResult, target: str, direction: str) -> Optional[LatencySeries]:
    found = [
        s for s in r.measurements.latency if s.target == target and s.phase.split(":", 1)[0] == direction and s.stats.p50_ms is not None
    ]
    return max(found, key=lambda s: s.stats.p50_ms or 0.0, default=None)


def _grade_class(grade: str) -> str:
    return "fail" if grade in ("C", "D", "F") else "warn" if grade == "B" else "ok"


def _latency_chart(r: RunResult, m: Messages) -> str:
    title = m("chart.latency.title")
    head = f'<figure class="chart-box" id="fig-latency"><figcaption>{_e(title)}</figcaption>'
    names = [t.name for t in r.targets if any(s.target == t.name for s in r.measurements.latency)]
    if not names:
        return head + f'<p class="empty">{_e(m("chart.none"))}</p></figure>'
    phases = {s.phase.split(":", 1)[0] for s in r.measurements.latency}
    directions = [d for d in ("download", "upload") if d in phases]
    hosts = {t.name: t.host for t in r.targets}
    roles = {t.name: t.role for t in r.targets}
    groups = []
    for name in names:
        idle = _idle(r, name)
        base = idle.stats.p50_ms if idle else None
        if idle is None:
            idle_text = m("chart.not_measured")
        elif base is None:
            idle_text = m("chart.no_answer")
        else:
            idle_text = fmt_value(base, "ms")
        bars = [svg.Bar(base, "idle", idle_text, f"{m('chart.idle')}: {idle_text}")]
        for d in directions:
            s = _worst_loaded(r, name, d)
            label = m("chart.loaded_down" if d == "download" else "chart.loaded_up")
            if s is None:
                bars.append(svg.Bar(None, "down" if d == "download" else "up", m("chart.not_measured")))
                continue
            value = s.stats.p50_ms
            mark, cls = "", ""
            if base is not None and value is not None:
                inc = value - base
                grade = bufferbloat_grade(inc)
                mark, cls = m("chart.grade", increase=fmt_value(inc, "ms"), grade=grade), _grade_class(grade)
            bars.append(
                svg.Bar(value, "down" if d == "download" else "up", fmt_value(value, "ms"), f"{label}: {fmt_value(value, 'ms')}", mark, cls)
            )
        groups.append(svg.Group(_target_label(m, name, roles.get(name, name)), tuple(bars), hosts.get(name, "")))
    legend = [svg.Legend("idle", m("chart.idle"))]
    legend += [
        svg.Legend("down" if d == "download" else "up", m("chart.loaded_down" if d == "download" else "chart.loaded_up"))
        for d in directions
    ]
    chart = svg.bar_chart(svg.BarChart(tuple(groups), "ms", tuple(legend), (), title, chart_id="chart-latency"))
    return head + chart + f'<p class="note">{_e(m("chart.latency.note"))}</p></figure>'


def _dns_chart(r: RunResult, m: Messages) -> str:
    title = m("chart.dns.title")
    head = f'<figure class="chart-box" id="fig-dns"><figcaption>{_e(title)}</figcaption>'
    keys = list(dict.fromkeys((d.resolver, d.server) for d in r.measurements.dns))
    if not keys:
        return head + f'<p class="empty">{_e(m("chart.none"))}</p></figure>'
    groups = []
    for resolver, server in keys:
        series = [d for d in r.measurements.dns if (d.resolver, d.server) == (resolver, server)]
        bars = []
        for kind in ("cold", "warm"):
            of_kind = [d for d in series if d.kind == kind]
            if not of_kind:
                bars.append(svg.Bar(None, kind, m("chart.not_measured")))
                continue
            p50s = [d.p50_ms for d in of_kind if d.p50_ms is not None]
            value = max(p50s) if p50s else None
            total = sum(len(d.times_ms) for d in of_kind)
            timeouts = sum(d.timeouts for d in of_kind)
            servfail = sum(1 for d in of_kind for rc in d.rcodes if rc in ("SERVFAIL", "REFUSED"))
            text = fmt_value(value, "ms") if value is not None else m("chart.no_answer")
            marks = []
            if timeouts:
                marks.append(m("chart.timeouts", n=timeouts, total=total))
            if servfail:
                marks.append(f"SERVFAIL/REFUSED {servfail}/{total}")
            label = m(f"chart.{kind}")
            bars.append(svg.Bar(value, kind, text, f"{label}: {text}", " · ".join(marks), "fail" if marks else ""))
        label = m("chart.dns.system") if resolver == "system" else server if resolver in (server, "") else resolver
        groups.append(svg.Group(label, tuple(bars), server if label != server else ""))
    chart = svg.bar_chart(
        svg.BarChart(
            tuple(groups), "ms", (svg.Legend("cold", m("chart.cold")), svg.Legend("warm", m("chart.warm"))), (), title, chart_id="chart-dns"
        )
    )
    return head + chart + "</figure>"


def load_ramp(load: Optional[LoadResult]) -> Optional[tuple[tuple[tuple[float, float], ...], Optional[tuple[float, float]]]]:
    """(points, knee): goodput against connections per step, from ``measurements.load``; None without steps."""
    if load is None or not load.steps:
        return None
    points = tuple((float(s.connections), float(s.goodput_mbps)) for s in load.steps)
    k = load.knee
    return points, None if k is None or k.goodput_mbps is None else (float(k.connections), float(k.goodput_mbps))


def _load_chart(r: RunResult, m: Messages) -> str:
    title = m("chart.load.title")
    ramp = load_ramp(r.measurements.load)
    head = f'<figure class="chart-box" id="fig-load"><figcaption>{_e(title)}</figcaption>'
    if ramp is None:
        return head + f'<p class="empty" data-not-measured="load">{_e(m("chart.load.not_measured"))}</p></figure>'
    points, knee = ramp
    knee_label = m("chart.knee", connections=f"{knee[0]:g}", value=fmt_value(knee[1], "Mbps")) if knee else ""
    chart = svg.line_chart(svg.LineChart(points, m("chart.connections"), m("chart.throughput"), knee, knee_label, title, "chart-load"))
    return head + chart + "</figure>"


def label_for_check(m: Messages, c: Check, roles: dict[str, str]) -> str:
    """The check's name in the reader's language; per-target checks name the target by its role."""
    for prefix in ("path.reachable.", "path.server."):
        if c.id.startswith(prefix):
            name = c.id[len(prefix) :]
            return f"{m('check.' + prefix[:-1])} ({_target_label(m, name, roles.get(name, name))})"
    return check_label(m, c)


def _check_values(m: Messages, c: Check) -> tuple[str, str, str]:
    if c.id.startswith(("path.reachable.", "path.server.")):
        measured = "—" if c.measured is None else m("value.yes") if c.measured else m("value.no")
        return measured, "", ""
    sign = "≥" if c.better == "higher" else "≤"
    threshold = f"{sign} {fmt_value(c.threshold, c.unit)}" if c.threshold is not None else "—"
    warn = f"{sign} {fmt_value(c.warn_at, c.unit)}" if c.warn_at is not None else "—"
    return fmt_value(c.measured, c.unit), threshold, warn


def _badge(m: Messages, status: str) -> str:
    return f'<span class="badge status-{_e(status)}">{_e(m(f"status_word.{status}"))}</span>'


def _checks(r: RunResult, m: Messages) -> str:
    out = [f'<section id="checks"><h2>{_e(m("heading.checks"))}</h2>']
    if not r.checks:
        return out[0] + f'<p class="empty">{_e(m("chart.none"))}</p></section>'
    roles = {t.name: t.role for t in r.targets}
    cols = ("col.status", "col.check", "col.classroom", "col.measured", "col.threshold", "col.warn_at", "col.source")
    out.append('<table class="checks"><thead><tr>' + "".join(f"<th>{_e(m(k))}</th>" for k in cols) + "</tr></thead><tbody>")
    for c in sorted(r.checks, key=lambda c: STATUS_ORDER.get(c.status, 9)):
        measured, threshold, warn = _check_values(m, c)
        est = f'<br><span class="est">{_e(m("label.estimate"))}</span>' if c.estimate else ""
        source = _said(source_text(m, c)[0]) + (f"<br>{_said(detail_text(m, c)[0])}" if c.detail or c.detail_key else "")
        out.append(
            f'<tr class="row-{_e(c.status)}" data-check="{_e(c.id)}"><td>{_badge(m, c.status)}</td>'
            f'<td>{_e(label_for_check(m, c, roles))}<br><code>{_e(c.id).replace(".", ".<wbr>")}</code></td><td class="room">{_e(c.classroom or "—")}</td>'
            f'<td class="num">{_e(measured)}</td><td class="num">{_e(threshold)}{est}</td><td class="num">{_e(warn)}</td>'
            f'<td class="src">{source}</td></tr>'
        )
    out.append("</tbody></table></section>")
    return "".join(out)


def _cause_block(m: Messages, c: Cause, claimed: bool) -> str:
    out = [
        f'<article class="cause{" claimed" if claimed else " possible"}" id="cause-{_e(c.id)}" data-cause="{_e(c.id)}" data-segment="{_e(c.segment)}">',
        f"<h3>{_e(m(f'cause.{c.id}'))} <code>{_e(c.id)}</code></h3>",
        f'<p class="cause-meta">{_e(m("col.segment"))}: <strong>{_e(m(f"segment.{c.segment}"))}</strong> · '
        f"{_e(m('col.confidence'))}: <strong>{_e(_pct(c.confidence))}</strong></p>",
    ]
    cols = ("col.metric", "col.value", "col.unit", "col.target", "col.check_id", "col.note")
    out.append('<table class="evidence"><thead><tr>' + "".join(f"<th>{_e(m(k))}</th>" for k in cols) + "</tr></thead><tbody>")
    for ev in c.evidence:
        out.append(
            f'<tr><td><code>{_e(ev.metric)}</code></td><td class="num">{_e(_num(ev.value))}</td><td>{_e(ev.unit)}</td>'
            f"<td>{_code(ev.target)}</td><td>{_code(ev.check_id)}</td>"
            f"<td>{_said(*note_text(m, ev)) if ev.note or ev.note_key else '—'}</td></tr>"
        )
    out.append("</tbody></table>")
    out.append(f'<p class="advice"><strong>{_e(m("label.advice"))}:</strong> {_e(m(c.advice))}</p>')
    out.append(f'<p class="rules">{_e(m("label.rules"))}: ' + ", ".join(f"<code>{_e(x)}</code>" for x in c.rules) + "</p>")
    out.append("</article>")
    return "".join(out)


def _evidence(r: RunResult, m: Messages) -> str:
    likely = claims(r.causes)
    rest = [c for c in r.causes if c not in likely]
    if not likely and not rest:
        return ""
    out = [f'<section id="evidence"><h2>{_e(m("heading.evidence"))}</h2>']
    out += [_cause_block(m, c, True) for c in likely]
    if rest:
        out.append(f'<h3 class="possible-heading">{_e(m("heading.possible"))}</h3>')
        out += [_cause_block(m, c, False) for c in rest]
    out.append("</section>")
    return "".join(out)


def _msg(m: Messages, key: str, html: dict[str, str], **plain: Any) -> str:
    """A catalogue sentence escaped, with the values in ``html`` put in as ready-made markup."""
    holes = {k: f"\x00{i}\x00" for i, k in enumerate(html)}
    text = _e(m(key, **plain, **holes))
    for k, hole in holes.items():
        text = text.replace(hole, html[k])
    return text


def _table(cls: str, m: Messages, cols: Iterable[str], rows: Iterable[str]) -> str:
    return (
        f'<table class="{cls}"><thead><tr>'
        + "".join(f"<th>{_e(m(k))}</th>" for k in cols)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _ms(s: Optional[LatencySeries]) -> str:
    return _e(fmt_value(s.stats.p50_ms, "ms")) if s is not None else "—"


def _engines(r: RunResult, m: Messages) -> str:
    """Bandwidth figures from another engine (speedtest, librespeed) or with warnings: engine, server, warnings."""
    shown = [b for b in r.measurements.bandwidth if b.engine != "http" or b.notes or b.server]
    if not shown:
        return ""
    rows = []
    for b in shown:
        label = m("label.download") if b.direction == "download" else m("label.upload")
        warn = "".join(f"<li>{_e(m(n) if m.has(n) else n)}</li>" for n in b.notes)
        warn = f'<ul class="warnings">{warn}</ul>' if warn else "—"
        rows.append(
            f"<tr><td>{_raw(b.target)}</td><td>{_e(label)} ({_e(m('md.streams', n=b.streams))})</td>"
            f'<td class="num">{_e(fmt_value(b.goodput_mbps, "Mbps"))}</td><td>{_code(b.engine)}</td>'
            f"<td>{_raw(server_label(b))}</td><td>{warn}</td></tr>"
        )
    cols = ("col.target", "col.figure", "col.measured", "col.engine", "col.server", "col.warnings")
    return f'<section id="engines"><h2>{_e(m("heading.engines"))}</h2>{_table("engines", m, cols, rows)}</section>'


def _families(r: RunResult, m: Messages) -> str:
    """IPv4 vs IPv6 to the same server: TCP connect p50 and download per family."""
    fams = r.measurements.families
    if not fams:
        return ""
    rows = []
    for f in fams:
        fam = m(f"family.{f.family}") if m.has(f"family.{f.family}") else f.family
        down = _e(fmt_value(f.download.goodput_mbps, "Mbps")) if f.download is not None else "—"
        if f.status != "ok":
            pieces, ok = recorded(m, f.reason, "reason.family_")
            down = _e(m("status_word.not-measured")) + (f": {_said(pieces, ok)}" if pieces else "")
        rows.append(
            f'<tr class="family-{_e(f.status)}"><td>{_raw(f.target)}</td><td>{_e(fam)}</td><td>{_raw(f.address)}</td>'
            f'<td class="num">{_ms(f.rtt)}</td><td class="num">{down}</td></tr>'
        )
    cols = ("col.server", "col.family", "col.address", "col.connect_p50", "col.download_mbps")
    return f'<section id="families"><h2>{_e(m("heading.families"))}</h2>{_table("families", m, cols, rows)}</section>'


def _proxy(r: RunResult, m: Messages) -> str:
    """Which proxy, what it costs (TCP connect vs first byte), which probes went direct."""
    p = r.measurements.proxy
    if p is None:
        return ""
    items = []
    proxies = list(dict.fromkeys(x for x in (p.http, p.https) if x))
    if proxies or p.source:
        items.append(_msg(m, "proxy.settings", {"proxy": _raw(", ".join(proxies) or "—")}, source=source_word(m, p.source)))
    else:
        items.append(_e(m("proxy.none")))
    if p.pac_url:
        status = (
            m(f"proxy.pac_status.{p.pac_status}") if p.pac_status and m.has(f"proxy.pac_status.{p.pac_status}") else (p.pac_status or "—")
        )
        items.append(_msg(m, "proxy.pac", {"url": _raw(p.pac_url)}, status=status))
    for via, key in (("direct", "proxy.probes_direct"), ("proxy", "proxy.probes_via")):
        probes = proxy_probes(m, p.probe_paths, via)
        if probes:
            names = ", ".join(f"{_e(label)} {_code(pid)}".strip() for label, pid in probes)
            items.append(_msg(m, key, {"probes": names}))
    items += [_said(*recorded(m, n, "note.")) for n in p.notes]
    out = [f'<section id="proxy"><h2>{_e(m("heading.proxy"))}</h2><ul>' + "".join(f"<li>{x}</li>" for x in items) + "</ul>"]
    if p.paths:
        rows = []
        for pp in p.paths:
            ttfb = _ms(pp.ttfb) + (f" {_raw(pp.error)}" if pp.error else "")
            rows.append(
                f"<tr><td>{_raw(pp.target)}</td><td>{_raw(pp.proxy) if pp.proxy else _e(m('proxy.direct'))}</td>"
                f'<td>{_e(source_word(m, pp.decided_by))}</td><td class="num">{_ms(pp.connect)}</td><td class="num">{ttfb}</td></tr>'
            )
        out.append(_table("proxy", m, ("col.target", "col.proxy", "col.decided_by", "col.proxy_connect", "col.ttfb"), rows))
    out.append("</section>")
    return "".join(out)


def _discovered_paths(r: RunResult, m: Messages) -> str:
    """Each discovered path, hop by hop: who answered, idle and loaded p50, loss."""
    out = []
    for d in r.measurements.paths:
        head = _msg(m, "heading.discovered_path", {"target": _raw(d.target), "host": _raw(d.host)})
        block = [f'<section class="discovered-path" data-target="{_e(d.target)}"><h2>{head}</h2>']
        if d.method:
            key = "path.reached" if d.reached else "path.not_reached"
            block.append(f'<p class="note">{_msg(m, key, {"method": _code(d.method)}, hops=len(d.hops))}</p>')
        elif d.error:
            block.append(f'<p class="note">{_raw(d.error)}</p>')
        rows = []
        for h in d.hops:
            if h.address:
                addr = _raw(" / ".join((h.address, *h.other_addresses)))
            else:
                addr = f'<span class="silent">{_e(m("path.silent"))}</span>'
            if h.role and h.role != "hop" and m.has(f"diagram.{h.role}"):
                addr += f" ({_e(m(f'diagram.{h.role}'))})"
            idle = _e(fmt_value(h.idle.p50_ms, "ms")) if h.idle else "—"
            loaded = _e(fmt_value(h.loaded.p50_ms, "ms")) if h.loaded else "—"
            loss = _e(fmt_value(h.idle.loss_pct, "%")) if h.idle else "—"
            rows.append(
                f'<tr><td class="num">{h.ttl}</td><td>{addr}</td><td class="num">{idle}</td>'
                f'<td class="num">{loaded}</td><td class="num">{loss}</td></tr>'
            )
        if rows:
            block.append(_table("hops", m, ("col.hop", "col.address", "col.idle_p50", "col.loaded_p50", "col.loss"), rows))
        block.append("</section>")
        out.append("".join(block))
    return "".join(out)


def _third_party(r: RunResult, m: Messages) -> str:
    notes = third_party_notes(m, r)
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<section id="third-party"><h2>{_e(m("heading.third_party"))}</h2><ul>{items}</ul></section>'


def _not_measured(r: RunResult, m: Messages) -> str:
    items = [
        f"<li>{_code(x.subject) if x.subject_is_id else f'<strong>{_e(x.subject)}</strong>'}: {_said(x.pieces)}</li>"
        if x.subject
        else f"<li>{_said(x.pieces)}</li>"
        for x in not_measured_lines(m, r)
    ]
    for c in r.checks:
        if c.status == "not-measured":
            label = label_for_check(m, c, {t.name: t.role for t in r.targets})
            text = (
                m("not_measured.check", check=label, classroom=c.classroom) if c.classroom else m("not_measured.check_school", check=label)
            )
            items.append(f"<li>{_e(text)} <code>{_e(c.id)}</code></li>")
    if load_ramp(r.measurements.load) is None:
        items.append(f"<li>{_e(m('chart.load.not_measured'))}</li>")
    return f'<section id="not-measured"><h2>{_e(m("heading.not_measured"))}</h2><ul>{"".join(items)}</ul></section>'


def _probes(r: RunResult, m: Messages) -> str:
    if not r.probes:
        return ""
    cols = ("col.probe", "col.status", "col.reason", "col.seconds")
    out = [
        f'<section id="probes"><h2>{_e(m("heading.probes"))}</h2><table class="probes"><thead><tr>'
        + "".join(f"<th>{_e(m(k))}</th>" for k in cols)
        + "</tr></thead><tbody>"
    ]
    for p in r.probes:
        word = m(f"probe_status.{p.status}") if m.has(f"probe_status.{p.status}") else p.status
        out.append(
            f'<tr class="probe-{_e(p.status)}"><td>{_probe_label(m, p.probe)}</td><td>{_e(word)}</td>'
            f'<td>{_said(*reason_text(m, p)) if p.reason or p.reason_key else "—"}</td><td class="num">{_e(f"{p.seconds:.1f} s" if p.seconds else "—")}</td></tr>'
        )
    out.append("</tbody></table></section>")
    return "".join(out)


def _probe_label(m: Messages, probe: str) -> str:
    kind, _, target = probe.partition(":")
    if kind == "identify" and target:
        return f"{_e(m('check.path.server'))} <code>{_e(probe)}</code>"
    key = f"not_measured.subject.{kind}"
    return f"{_e(m(key))} <code>{_e(probe)}</code>" if m.has(key) else f"<code>{_e(probe)}</code>"


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values if v not in (None, ""))


def _metadata(r: RunResult, m: Messages) -> str:
    h = r.host or {}
    none = m("value.none")
    proxy = h.get("proxy") if isinstance(h.get("proxy"), dict) else {}
    proxy_text = _join([proxy.get("http"), proxy.get("https"), proxy.get("pac_url")]) if proxy else ""
    wifi = h.get("wifi") if isinstance(h.get("wifi"), dict) else {}
    wifi_text = (
        _join(
            [
                wifi.get("ssid"),
                wifi.get("bssid"),
                wifi.get("band"),
                f"{wifi['signal_dbm']} dBm" if wifi.get("signal_dbm") is not None else None,
            ]
        )
        if wifi
        else ""
    )
    os_text = _join([h.get("os_name") or h.get("os"), h.get("os_version")])
    resolvers = h.get("resolvers") or []
    resolvers = list(resolvers) if isinstance(resolvers, (list, tuple)) else [resolvers]  # free-form: what the OS said
    if h.get("stub_resolver"):
        resolvers.append(m("meta.stub", address=h["stub_resolver"]))
    gateway = _join([h.get("gateway_ipv4"), h.get("gateway_ipv6")])
    rows: list[tuple[str, str, bool]] = [
        ("label.school", f"{r.school.name} ({r.school.id})", False),
        ("meta.students", str(r.school.students) if r.school.students else "—", False),
        ("meta.classrooms", _join(f"{c.name} ({m('meta.devices', n=c.devices)}, {c.profile})" for c in r.classrooms) or "—", False),
        ("label.profile", r.profile, False),
        ("label.mode", m(f"mode.{r.mode}") if m.has(f"mode.{r.mode}") else r.mode, False),
        ("label.started", r.started_at, False),
        ("meta.finished", r.finished_at, False),
        ("label.duration", f"{r.duration_s:.0f} s", False),
        ("meta.run_id", r.run_id, True),
        ("meta.tool_version", f"giga-netcheck {r.tool_version}", True),
        ("meta.hostname", h.get("hostname") or "—", True),
        ("meta.os", os_text or "—", True),
        ("meta.interface", h.get("interface") or "—", True),
        ("meta.link", _link(h["link_speed_mbps"]) if h.get("link_speed_mbps") else "—", False),
        ("meta.wifi", wifi_text or none, True),
        ("meta.gateway", gateway or "—", True),
        ("meta.resolvers", _join(resolvers) or none, True),
        ("meta.proxy", proxy_text or none, True),
        ("meta.targets", _join(f"{t.name}: {t.url or t.host}" for t in r.targets) or "—", True),
        ("meta.site_file", r.site_file or "—", True),
        ("meta.python", h.get("python") or "—", True),
    ]
    body = "".join(f"<tr><th>{_e(m(k))}</th><td>{_raw(v) if raw and v not in ('—', none) else _e(v)}</td></tr>" for k, v, raw in rows)
    return f'<section id="metadata"><h2>{_e(m("heading.metadata"))}</h2><table class="meta">{body}</table></section>'


# ---------------------------------------------------------------------------------- page

FONTS_EN = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Hiragino Sans", "Hiragino Kaku Gothic ProN", "Yu Gothic UI", "Yu Gothic", Meiryo, '
    '"Noto Sans CJK JP", "Noto Sans JP", sans-serif'
)
FONTS_JA = (
    '"Hiragino Sans", "Hiragino Kaku Gothic ProN", "Yu Gothic UI", "Yu Gothic", YuGothic, Meiryo, '
    '"Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", system-ui, -apple-system, "Segoe UI", sans-serif'
)

STYLE = """
:root{--ink:#1d2939;--muted:#667085;--line:#d0d5dd;--bg:#fff;--soft:#f8fafc;
--pass:#1f7a4d;--pass-bg:#e7f5ee;--warn:#9a6700;--warn-bg:#fff4d6;--fail:#b42318;--fail-bg:#fdecea;
--error:#7a271a;--error-bg:#fde8e7;--nm:#667085;--nm-bg:#f2f4f7}
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;background:var(--bg);color:var(--ink);font-family:FONTS;font-size:15px;line-height:1.55}
main{max-width:980px;margin:0 auto;padding:24px 28px 40px}
header.top{border-bottom:3px solid var(--ink);padding-bottom:10px;margin-bottom:18px}
header.top h1{font-size:26px;margin:0 0 4px;line-height:1.3}
header.top p{margin:0;color:var(--muted)}
h2{font-size:19px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:16px 0 6px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.85em;color:#475467;background:#f2f4f7;padding:0 3px;border-radius:3px;word-break:break-all}
.verdict{border-radius:10px;padding:14px 20px 12px;border:2px solid;margin-top:8px}
.verdict h2{border:0;margin:0 0 4px;font-size:15px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.verdict h3{margin:12px 0 4px}
.verdict.status-pass{background:var(--pass-bg);border-color:var(--pass)}
.verdict.status-warn{background:var(--warn-bg);border-color:var(--warn)}
.verdict.status-fail{background:var(--fail-bg);border-color:var(--fail)}
.verdict.status-error{background:var(--error-bg);border-color:var(--error)}
.status-line{font-size:22px;font-weight:700;margin:0}
.status-pass .status-line{color:var(--pass)}
.status-warn .status-line{color:var(--warn)}
.status-fail .status-line{color:var(--fail)}
.status-error .status-line{color:var(--error)}
.counts{margin:4px 0 0;color:#344054}
.claims{margin:4px 0 0;padding-left:22px}
.claims li{margin:4px 0}
.claims .advice{color:#344054}
.interrupted{font-weight:600;color:var(--warn)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:700;white-space:nowrap;border:1px solid}
.badge.big{font-size:16px;padding:2px 12px;vertical-align:2px}
.badge.status-pass{color:var(--pass);background:var(--pass-bg)}
.badge.status-warn{color:var(--warn);background:var(--warn-bg)}
.badge.status-fail{color:var(--fail);background:var(--fail-bg)}
.badge.status-error{color:var(--error);background:var(--error-bg)}
.badge.status-not-measured{color:var(--nm);background:var(--nm-bg)}
figure{margin:0}
figcaption{font-weight:600;margin:0 0 6px}
#path figcaption{font-weight:400;color:var(--muted);font-size:13px;margin-top:4px}
.charts{display:grid;grid-template-columns:1fr;gap:18px}
.chart-box{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fff;break-inside:avoid;page-break-inside:avoid}
.chart-box .note{font-size:12.5px;color:var(--muted);margin:6px 0 0}
.chart-box .empty{color:var(--muted);font-style:italic;margin:8px 0}
svg.chart{width:100%;height:auto;display:block;font-family:inherit}
svg .band{fill:#f8fafc}
svg .grid{stroke:#e4e7ec;stroke-width:1}
svg .axis{stroke:#98a2b3;stroke-width:1}
svg .tick{font-size:11px;fill:var(--muted)}
svg .glabel{font-size:13px;fill:var(--ink);font-weight:600}
svg .gsub{font-size:11px;fill:var(--muted)}
svg .val{font-size:12px;fill:#344054}
svg .legend{font-size:12px;fill:#344054}
svg .bar-needed{fill:#cbd2dc}
svg .bar-measured{fill:#2563eb}
svg .bar-idle{fill:#64748b}
svg .bar-down{fill:#ea580c}
svg .bar-up{fill:#7c3aed}
svg .bar-cold{fill:#0e7490}
svg .bar-warm{fill:#22a06b}
svg .bar-missing{fill:#d0d5dd}
svg .mark-fail{fill:var(--fail);font-weight:700}
svg .mark-warn{fill:var(--warn);font-weight:700}
svg .mark-ok{fill:var(--pass)}
svg .ref{stroke:#b42318;stroke-width:2;stroke-dasharray:6 4}
svg .ref-label{font-size:12px;fill:#b42318;font-weight:600}
svg .line{fill:none;stroke:#2563eb;stroke-width:2.5}
svg .dot{fill:#2563eb}
svg .knee{fill:none;stroke:#b42318;stroke-width:2.5}
svg .knee-label{font-size:12px;fill:#b42318;font-weight:600}
svg.path .seg rect{fill:#f2f4f7;stroke:#475467;stroke-width:1.5}
svg.path .seg line{stroke:#475467;stroke-width:4}
svg.path .seg-label{font-size:13px;font-weight:700;fill:var(--ink)}
svg.path .seg-sub{font-size:11px;fill:var(--muted)}
svg.path .seg.absent rect{fill:#fff;stroke:#98a2b3;stroke-dasharray:5 4}
svg.path .seg.absent line{stroke:#98a2b3;stroke-dasharray:6 5}
svg.path .seg.absent .seg-label{fill:#98a2b3}
svg.path .seg.suspect rect{fill:var(--fail-bg);stroke:var(--fail);stroke-width:3}
svg.path .seg.suspect line{stroke:var(--fail);stroke-width:8}
svg.path .seg.suspect .seg-label{fill:var(--fail)}
svg.path .dns-wire{fill:none;stroke:#98a2b3;stroke-width:1.5;stroke-dasharray:4 4}
svg.path .suspect-flag{font-size:12px;font-weight:700;fill:var(--fail)}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{border-bottom:1px solid #eaecf0;padding:6px 8px;text-align:left;vertical-align:top}
thead th{background:#f2f4f7;font-size:12.5px;color:#344054;border-bottom:1px solid var(--line)}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.room{white-space:nowrap}
td.src{font-size:12px;color:var(--muted);min-width:200px;max-width:320px}
tr.row-fail td{background:#fffafa}
tr.row-warn td{background:#fffdf5}
table.probes td:nth-child(2),table.probes th{white-space:nowrap}
table.probes code,table.evidence code{word-break:normal;white-space:nowrap}
ul.warnings{margin:0;padding-left:16px;font-size:12.5px;color:#b54708}
table.engines td:nth-child(-n+4),table.families td,table.hops td:not(:nth-child(2)),table.proxy td:nth-child(3){white-space:nowrap}
table.engines code,table.hops code,table.engines th{word-break:normal;white-space:nowrap}
table.engines td:nth-child(6){min-width:280px}
.silent{color:var(--muted)}
table.checks td:nth-child(2){min-width:160px}
.est{font-size:12px;color:var(--muted)}
table.checks td:nth-child(2) code{word-break:normal}
table.meta th{width:210px;color:#344054;font-weight:600;background:none}
.cause{border-left:4px solid var(--fail);padding:2px 0 2px 14px;margin:14px 0 20px;break-inside:avoid;page-break-inside:avoid}
.cause.possible{border-left-color:var(--line)}
.cause h3{margin:0 0 2px}
.cause-meta{margin:0 0 6px;color:#344054}
.advice{margin:8px 0 2px}
.rules{margin:2px 0;font-size:12.5px;color:var(--muted)}
.raw{unicode-bidi:plaintext}
#not-measured li{margin:3px 0}
footer{margin-top:30px;padding-top:8px;border-top:1px solid var(--line);font-size:12px;color:var(--muted)}
@media (max-width:760px){main{padding:14px}}
@page{size:A4;margin:12mm 11mm 14mm}
@media print{
 body{font-size:10pt;line-height:1.45}
 main{max-width:none;padding:0}
 header.top h1{font-size:18pt}
 h2{font-size:13pt;margin-top:16px;break-after:avoid;page-break-after:avoid}
 .charts{gap:8px}
 .chart-box{padding:6px 8px}
 table{font-size:8.5pt}
 th,td{padding:3px 5px}
 td.room{white-space:nowrap}
td.src{font-size:7.5pt}
 tr,figure,.verdict,#path{break-inside:avoid;page-break-inside:avoid}
 #checks,#evidence{break-before:auto}
}
"""


def render(r: RunResult, m: Messages) -> str:
    """The whole report as one HTML document (pure: no I/O)."""
    lang = "ja" if m.lang == "ja" else "en"
    title = m("html.title", school=r.school.name)
    facts = Facts.of(r.targets, r.measurements, r.probes)
    started = r.started_at.replace("T", " ")
    style = STYLE.replace("FONTS", FONTS_JA if lang == "ja" else FONTS_EN)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f'<meta name="generator" content="giga-netcheck {_e(r.tool_version)}">',
        f"<title>{_e(title)}</title>",
        f"<style>{style}</style>",
        "</head>",
        f'<body data-status="{_e(r.status)}">',
        "<main>",
        f'<header class="top"><h1>{_e(title)}</h1>'
        f"<p>{_e(m('html.subtitle', school=r.school.name, school_id=r.school.id, started=started))}</p></header>",
        _verdict(r, m),
        _path(r, m),
        f'<section id="charts"><h2>{_e(m("heading.charts"))}</h2><div class="charts">',
        _bandwidth_chart(r, m, "download", facts),
        _bandwidth_chart(r, m, "upload", facts),
        _latency_chart(r, m),
        _dns_chart(r, m),
        _load_chart(r, m),
        "</div></section>",
        _engines(r, m),
        _third_party(r, m),
        _families(r, m),
        _proxy(r, m),
        _discovered_paths(r, m),
        _evidence(r, m),
        _checks(r, m),
        _not_measured(r, m),
        _probes(r, m),
        _metadata(r, m),
        f"<footer>{_e(m('html.footer', version=r.tool_version))}</footer>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(p for p in parts if p)
