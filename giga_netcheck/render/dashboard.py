"""The board dashboard: one self-contained HTML page from a :class:`~giga_netcheck.core.board_summary.Summary`.

Same look and languages as the single-school report (its stylesheet, CSP and SVG helpers): no
scripts, no external loads, inline SVG only. Pure: no I/O.
"""

from __future__ import annotations

from html import escape
from typing import Any, Optional

from giga_netcheck import __version__
from giga_netcheck.core.board_summary import Summary, Table
from giga_netcheck.core.i18n import Messages
from giga_netcheck.render import svg
from giga_netcheck.render.html import _VERDICT_CLASS, CSP, FONTS_EN, FONTS_JA, STYLE

EXTRA_STYLE = """
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 4px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:150px;background:var(--soft)}
.kpi b{display:block;font-size:22px}
.kpi span{font-size:12.5px;color:var(--muted)}
.kpi.bad b{color:var(--fail)} .kpi.good b{color:var(--pass)}
section.board{margin-top:26px}
table.rank td:first-child{width:36px}
table.rank code{word-break:normal;white-space:nowrap;font-size:.75em}
table.rank td:nth-child(2){min-width:150px}
.skipped li{font-size:13px}
"""


def _e(v: object) -> str:
    return escape("" if v is None else str(v), quote=True)


def _f(v: Any, digits: int = 0, unit: str = "") -> str:
    if v is None:
        return "—"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return _e(v)
    text = f"{x:,.{digits}f}"
    return f"{text} {unit}".strip()


def _pct(v: Any) -> str:
    if v is None:
        return "—"
    x = float(v)
    return f"{x:.0%}" if x == 0 or x >= 0.995 or abs(x * 100 - round(x * 100)) < 0.05 else f"{x:.1%}"


def _cause(m: Messages, cid: Optional[str]) -> str:
    if not cid:
        return "—"
    key = f"cause.{cid}"
    return _e(m(key) if m.has(key) else cid)


def _rows(t: Table, board: str) -> list[dict[str, Any]]:
    return [r for r in t.dicts() if r.get("board") == board]


def _kpis(m: Messages, b: dict[str, Any]) -> str:
    share, national = b.get("share_compliant"), b["national_share_2024"]  # the reference figure, as the SQL read it
    cls = "" if share is None else ("good" if share >= national else "bad")
    items = [
        (cls, _pct(share), m("board.kpi.compliant", compliant=b["schools_compliant"], assessed=b["schools_assessed"])),
        ("", _pct(national), m("board.kpi.national")),
        ("", _e(b["schools"]), m("board.kpi.schools")),
        ("", _e(b["runs"]), m("board.kpi.runs")),
        ("", _pct(b.get("failed_share")), m("board.kpi.failed")),
    ]
    return (
        '<div class="kpis">' + "".join(f'<div class="kpi {c}"><b>{v}</b><span>{_e(label)}</span></div>' for c, v, label in items) + "</div>"
    )


def _compliance_chart(m: Messages, board: str, b: dict[str, Any]) -> str:
    share, national = b.get("share_compliant"), b["national_share_2024"]
    chart = svg.BarChart(
        groups=(
            svg.Group(
                m("board.chart.this_board", board=board), (svg.Bar(None if share is None else share * 100, "measured", _pct(share)),)
            ),
            svg.Group(m("board.chart.national"), (svg.Bar(national * 100, "needed", _pct(national)),)),
        ),
        unit="%",
        refs=(svg.RefLine(national * 100, m("board.chart.national_ref", national=_pct(national))),),
        title=m("board.chart.compliance"),
        chart_id=f"compliance-{board}",
    )
    return f'<figure class="chart-box"><figcaption>{_e(m("board.chart.compliance"))}</figcaption>{svg.bar_chart(chart)}</figure>'


def _ranking(m: Messages, rows: list[dict[str, Any]], limit: int) -> str:
    head = "".join(
        f"<th>{_e(m(k))}</th>"
        for k in (
            "board.col.rank",
            "board.col.school",
            "board.col.students",
            "board.col.recommended",
            "board.col.lesson_down",
            "board.col.ratio",
            "board.col.compliant",
            "board.col.lesson_rtt",
            "board.col.dns",
            "board.col.failed",
            "board.col.top_cause",
            "board.col.latest",
        )
    )
    body = []
    for r in rows[:limit]:
        ok = r.get("mext_compliant")
        badge = (
            "—"
            if ok is None
            else (f'<span class="badge status-{"pass" if ok else "fail"}">{_e(m("board.yes") if ok else m("board.no"))}</span>')
        )
        latest = r.get("latest_status") or "error"
        body.append(
            f'<tr class="row-{"fail" if ok == 0 else "pass"}"><td class="num">{_e(r["worst_rank"])}</td>'
            f"<td>{_e(r['school_name'])}<br><code>{_e(r['school_id'])}</code></td>"
            f'<td class="num">{_f(r.get("students"))}</td><td class="num">{_f(r.get("mext_mbps"), 0, "Mbps")}</td>'
            f'<td class="num">{_f(r.get("compliance_down_mbps"), 0, "Mbps")}</td><td class="num">{_pct(r.get("mext_ratio"))}</td>'
            f'<td>{badge}</td><td class="num">{_f(r.get("lesson_rtt_internet_ms_p50"), 1, "ms")}</td>'
            f'<td class="num">{_f(r.get("lesson_dns_p50_ms"), 1, "ms")}</td><td class="num">{_pct(r.get("failed_share"))}</td>'
            f"<td>{_cause(m, r.get('top_cause'))}</td>"
            f'<td><span class="badge status-{_e(_VERDICT_CLASS.get(latest, latest))}">{_e(m("status_word." + latest) if m.has("status_word." + latest) else latest)}</span></td></tr>'
        )
    more = f'<p class="note">{_e(m("board.more", n=len(rows) - limit))}</p>' if len(rows) > limit else ""
    return (
        f'<h3>{_e(m("board.ranking"))}</h3><table class="rank"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'
    )


def _causes_chart(m: Messages, board: str, rows: list[dict[str, Any]]) -> str:
    title = m("board.chart.causes")
    if not rows:
        return f'<figure class="chart-box"><figcaption>{_e(title)}</figcaption><p class="empty">{_e(m("board.no_causes"))}</p></figure>'
    groups = tuple(
        svg.Group(
            m(f"cause.{r['cause_id']}") if m.has(f"cause.{r['cause_id']}") else r["cause_id"],
            (svg.Bar(r["share_of_runs"] * 100, "down", m("board.cause_bar", share=_pct(r["share_of_runs"]), schools=r["schools"])),),
            sublabel=r["cause_id"],
        )
        for r in rows[:12]
    )
    chart = svg.BarChart(groups=groups, unit="%", title=title, chart_id=f"causes-{board}", label_width=260)
    return f'<figure class="chart-box"><figcaption>{_e(title)}</figcaption>{svg.bar_chart(chart)}</figure>'


def _weekly(m: Messages, board: str, rows: list[dict[str, Any]]) -> str:
    title = m("board.chart.weekly")
    pts = tuple(
        (float(i + 1), float(r["lesson_down_mbps_p50"] if r["lesson_down_mbps_p50"] is not None else r["down_mbps_p50"] or 0.0))
        for i, r in enumerate(rows)
    )
    chart = (
        svg.line_chart(svg.LineChart(pts, m("board.chart.week_axis"), m("board.chart.mbps_axis"), title=title, chart_id=f"weekly-{board}"))
        if pts
        else ""
    )
    head = "".join(
        f"<th>{_e(m(k))}</th>"
        for k in (
            "board.col.week",
            "board.kpi.runs",
            "board.kpi.schools",
            "board.col.lesson_down",
            "board.col.lesson_rtt",
            "board.col.mext_ok",
            "board.kpi.failed",
        )
    )
    body = "".join(
        f'<tr><td>{i + 1}: {_e(r["week"])}</td><td class="num">{_e(r["runs"])}</td><td class="num">{_e(r["schools"])}</td>'
        f'<td class="num">{_f(r.get("lesson_down_mbps_p50"), 0, "Mbps")}</td><td class="num">{_f(r.get("lesson_rtt_internet_ms_p50"), 1, "ms")}</td>'
        f'<td class="num">{_pct(r.get("mext_ok_share"))}</td><td class="num">{_pct(r.get("failed_share"))}</td></tr>'
        for i, r in enumerate(rows)
    )
    return (
        f'<figure class="chart-box"><figcaption>{_e(title)}</figcaption>{chart}</figure>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _context(m: Messages, rows: list[dict[str, Any]]) -> str:
    if not rows or all(r["value"] == "-" for r in rows):
        return f'<h3>{_e(m("board.context"))}</h3><p class="empty">{_e(m("board.no_context"))}</p>'
    head = "".join(
        f"<th>{_e(m(k))}</th>"
        for k in (
            "board.col.field",
            "board.col.value",
            "board.kpi.schools",
            "board.col.share_compliant",
            "board.col.lesson_down",
            "board.col.lesson_rtt",
        )
    )
    body = "".join(
        f'<tr><td>{_e(m("board.field." + r["field"]))}</td><td>{_e(r["value"])}</td><td class="num">{_e(r["schools"])}</td>'
        f'<td class="num">{_pct(r.get("share_compliant"))} ({_e(r["schools_compliant"])}/{_e(r["schools_assessed"])})</td>'
        f'<td class="num">{_f(r.get("school_down_mbps_p50"), 0, "Mbps")}</td><td class="num">{_f(r.get("lesson_rtt_internet_ms_p50"), 1, "ms")}</td></tr>'
        for r in rows
    )
    return f"<h3>{_e(m('board.context'))}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(summary: Summary, m: Messages, *, limit: int = 50) -> str:
    """The dashboard as one HTML document."""
    lang = "ja" if m.lang == "ja" else "en"
    t = summary.tables
    inp = summary.inputs
    title = m("board.title")
    style = STYLE.replace("FONTS", FONTS_JA if lang == "ja" else FONTS_EN) + EXTRA_STYLE
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f'<meta name="generator" content="giga-netcheck {_e(__version__)}">',
        f"<title>{_e(title)}</title>",
        f"<style>{style}</style>",
        "</head>",
        "<body>",
        "<main>",
        f'<header class="top"><h1>{_e(title)}</h1><p>{_e(m("board.subtitle", generated=summary.generated_at, runs=len(inp.runs), files=inp.files, skipped=len(inp.skipped)))}</p></header>',
    ]
    for b in t["board_summary"].dicts():
        board = b["board"]
        ranking = _rows(t["board_ranking"], board)
        parts += [
            f'<section class="board" id="board-{_e(board)}"><h2>{_e(m("board.section", board=board))}</h2>',
            _kpis(m, b),
            f"<p>{_e(m('board.compliance_sentence', share=_pct(b.get('share_compliant')), national=_pct(b['national_share_2024'])))}</p>",
            '<div class="charts">',
            _compliance_chart(m, board, b),
            _causes_chart(m, board, _rows(t["board_causes"], board)),
            "</div>",
            _ranking(m, ranking, limit),
            f"<h3>{_e(m('board.weekly'))}</h3>",
            _weekly(m, board, _rows(t["board_weekly"], board)),
            _context(m, _rows(t["context_breakdown"], board)),
            "</section>",
        ]
    if not t["board_summary"].rows:
        parts.append(f'<p class="empty">{_e(m("board.nothing"))}</p>')
    if inp.skipped:
        items = "".join(f'<li><code>{_e(s.path)}</code>: <span class="raw">{_e(s.reason)}</span></li>' for s in inp.skipped)
        parts.append(
            f'<section id="skipped"><h2>{_e(m("board.skipped", n=len(inp.skipped)))}</h2><ul class="skipped">{items}</ul></section>'
        )
    parts += [f"<footer>{_e(m('board.footer', version=__version__))}</footer>", "</main>", "</body>", "</html>", ""]
    return "\n".join(p for p in parts if p)
