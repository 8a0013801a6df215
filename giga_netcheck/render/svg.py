"""Inline SVG for the HTML report: the path diagram, horizontal bar charts, a line chart (pure).

No words of its own: every label arrives already translated from the caller, and every piece of
text is escaped here. Output is deterministic (fixed decimals), so golden files stay stable.
Colours come from CSS classes the HTML renderer's stylesheet defines (``bar-*``, ``seg``,
``suspect``), so a print stylesheet can restyle them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Optional, Sequence

WIDTH = 720
"""viewBox width of every chart; the SVG scales to its container (A4 print included)."""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(x: float) -> str:
    """Coordinates with at most one decimal, no trailing zeros (stable golden output)."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


# ------------------------------------------------------------------------------ bar chart


@dataclass(frozen=True)
class Bar:
    """One bar: its value (None: nothing measured), the series class and the text beside it."""

    value: Optional[float]
    series: str
    """CSS suffix: the bar is drawn with class ``bar-<series>``."""
    text: str
    """Shown right of the bar (value with unit, 'not measured', a grade ...)."""
    tooltip: str = ""
    mark: str = ""
    """Extra text after ``text`` in class ``mark-<mark_class>`` (e.g. a failed status)."""
    mark_class: str = ""


@dataclass(frozen=True)
class Group:
    label: str
    bars: tuple[Bar, ...]
    sublabel: str = ""


@dataclass(frozen=True)
class RefLine:
    """A vertical reference line across the chart (e.g. the MEXT recommended bandwidth)."""

    value: float
    label: str
    css: str = "ref"


@dataclass(frozen=True)
class Legend:
    series: str
    label: str


@dataclass(frozen=True)
class BarChart:
    groups: tuple[Group, ...]
    unit: str
    legend: tuple[Legend, ...] = ()
    refs: tuple[RefLine, ...] = ()
    title: str = ""
    """Accessible name (``<title>``) of the SVG."""
    chart_id: str = "chart"
    label_width: int = 170
    bar_h: int = 14


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^n at or above ``value`` (axis end)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exp
        if top >= value * 0.999:
            return float(top)
    return float(10 ** (exp + 1))


def _ticks(top: float) -> list[float]:
    return [top * i / 5 for i in range(6)]


def _tick_text(v: float) -> str:
    if v == 0:
        return "0"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
    return f"{v:g}"


def bar_chart(chart: BarChart) -> str:
    """Horizontal grouped bars with a value axis, optional reference lines and a legend."""
    left = chart.label_width
    right = WIDTH - 150  # room for the value text
    values = [b.value for g in chart.groups for b in g.bars if b.value is not None]
    values += [r.value for r in chart.refs]
    top = nice_max(max(values) * 1.05 if values else 1.0)
    scale = (right - left) / top

    legend_h = 22 if chart.legend else 0
    ref_h = 16 * len(chart.refs)
    y = 8 + legend_h + ref_h
    plot_top = y
    body: list[str] = []
    bands: list[str] = []
    for gi, g in enumerate(chart.groups):
        bars_h = len(g.bars) * (chart.bar_h + 3)
        gh = max(bars_h, 30 if g.sublabel else 0)
        group_top = y
        if gi % 2 == 0:
            bands.append(f'<rect class="band" x="0" y="{_n(y - 4)}" width="{WIDTH}" height="{_n(gh + 5)}"/>')
        ly = y + gh / 2 + (0 if not g.sublabel else -5)
        y += (gh - bars_h) / 2
        body.append(f'<text class="glabel" x="{left - 8}" y="{_n(ly + 4)}" text-anchor="end">{_e(clip(g.label, 13, left - 12))}</text>')
        if g.sublabel:
            body.append(
                f'<text class="gsub" x="{left - 8}" y="{_n(ly + 17)}" text-anchor="end">{_e(clip(g.sublabel, 11, left - 12))}</text>'
            )
        for b in g.bars:
            w = 0.0 if b.value is None else max(b.value * scale, 0.0)
            tip = f"<title>{_e(b.tooltip)}</title>" if b.tooltip else ""
            if b.value is None:
                body.append(f'<rect class="bar-missing" x="{left}" y="{_n(y)}" width="3" height="{chart.bar_h}">{tip}</rect>')
            else:
                body.append(
                    f'<rect class="bar-{_e(b.series)}" data-value="{_e(b.value)}" x="{left}" y="{_n(y)}" '
                    f'width="{_n(max(w, 1.0))}" height="{chart.bar_h}">{tip}</rect>'
                )
            tx = left + (w if b.value is not None else 3) + 5
            mark = f' <tspan class="mark-{_e(b.mark_class)}">{_e(b.mark)}</tspan>' if b.mark else ""
            body.append(f'<text class="val" x="{_n(tx)}" y="{_n(y + chart.bar_h - 3)}">{_e(b.text)}{mark}</text>')
            y += chart.bar_h + 3
        y = group_top + gh + 12
    plot_bottom = y - 8

    axis: list[str] = []
    for t in _ticks(top):
        x = left + t * scale
        axis.append(f'<line class="grid" x1="{_n(x)}" y1="{_n(plot_top - 4)}" x2="{_n(x)}" y2="{_n(plot_bottom)}"/>')
        axis.append(f'<text class="tick" x="{_n(x)}" y="{_n(plot_bottom + 14)}" text-anchor="middle">{_e(_tick_text(t))}</text>')
    axis.append(f'<text class="tick unit" x="{right + 24}" y="{_n(plot_bottom + 14)}">{_e(chart.unit)}</text>')

    refs: list[str] = []
    for i, r in enumerate(chart.refs):
        x = left + r.value * scale
        ly = 8 + legend_h + 16 * i + 10
        tw = _text_width(r.label, 12) * 1.15  # bold, and wide fallback fonts (DejaVu): never run off the edge
        anchor = "start" if x + 4 + tw <= WIDTH - 4 else "end"
        lx = x + 4 if anchor == "start" else max(x - 4, tw + 4)
        refs.append(f'<line class="{_e(r.css)}" x1="{_n(x)}" y1="{_n(ly + 3)}" x2="{_n(x)}" y2="{_n(plot_bottom)}"/>')
        refs.append(f'<text class="{_e(r.css)}-label" x="{_n(lx)}" y="{_n(ly)}" text-anchor="{anchor}">{_e(r.label)}</text>')

    legend: list[str] = []
    lx = left
    for item in chart.legend:
        legend.append(f'<rect class="bar-{_e(item.series)}" x="{lx}" y="8" width="12" height="12"/>')
        legend.append(f'<text class="legend" x="{lx + 16}" y="18">{_e(item.label)}</text>')
        lx += 28 + _text_width(item.label, 12)

    height = plot_bottom + 22
    title = f"<title>{_e(chart.title)}</title>" if chart.title else ""
    return (
        f'<svg class="chart" id="{_e(chart.chart_id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'role="img" aria-label="{_e(chart.title)}">{title}'
        + "".join(bands)
        + "".join(axis)
        + "".join(body)
        + "".join(refs)
        + "".join(legend)
        + "</svg>"
    )


def clip(text: str, size: float, width: float) -> str:
    """``text`` cut with an ellipsis so it fits ``width`` pixels at font ``size`` (roughly)."""
    text = "" if text is None else str(text)  # a label from a free-form record (the host's) may be a number
    if _text_width(text, size) <= width:
        return text
    out = ""
    for ch in text:
        if _text_width(out + ch + "…", size) > width:
            break
        out += ch
    return out + "…"


def _text_width(text: str, size: float) -> float:
    """Rough rendered width: CJK and other wide characters count double."""
    units = sum(1.0 if ord(ch) > 0x2E7F else 0.58 for ch in text)
    return units * size


# ----------------------------------------------------------------------------- line chart


@dataclass(frozen=True)
class LineChart:
    points: tuple[tuple[float, float], ...]
    x_label: str
    y_label: str
    knee: Optional[tuple[float, float]] = None
    knee_label: str = ""
    title: str = ""
    chart_id: str = "chart-line"


def line_chart(chart: LineChart) -> str:
    """A polyline of (x, y) points with axes and, if given, the knee marked."""
    left, right, top_px, bottom = 60, WIDTH - 20, 14, 200
    xs = [p[0] for p in chart.points] or [1.0]
    ys = [p[1] for p in chart.points] or [1.0]
    x_top, y_top = nice_max(max(xs)), nice_max(max(ys) * 1.05)
    sx, sy = (right - left) / x_top, (bottom - top_px) / y_top

    def px(p: tuple[float, float]) -> str:
        return f"{_n(left + p[0] * sx)},{_n(bottom - p[1] * sy)}"

    parts = [
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{left}" y1="{top_px}" x2="{left}" y2="{bottom}"/>',
    ]
    for t in _ticks(y_top):
        y = bottom - t * sy
        parts.append(f'<line class="grid" x1="{left}" y1="{_n(y)}" x2="{right}" y2="{_n(y)}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{_n(y + 4)}" text-anchor="end">{_e(_tick_text(t))}</text>')
    for t in _ticks(x_top):
        x = left + t * sx
        parts.append(f'<text class="tick" x="{_n(x)}" y="{bottom + 16}" text-anchor="middle">{_e(_tick_text(t))}</text>')
    parts.append(f'<text class="legend" x="{(left + right) // 2}" y="{bottom + 34}" text-anchor="middle">{_e(chart.x_label)}</text>')
    parts.append(f'<text class="legend" x="{left}" y="{top_px - 2}">{_e(chart.y_label)}</text>')
    if chart.points:
        parts.append(f'<polyline class="line" points="{" ".join(px(p) for p in chart.points)}"/>')
        parts += [f'<circle class="dot" cx="{px(p).split(",")[0]}" cy="{px(p).split(",")[1]}" r="3"/>' for p in chart.points]
    if chart.knee:
        kx, ky = px(chart.knee).split(",")
        parts.append(f'<circle class="knee" data-knee="1" cx="{kx}" cy="{ky}" r="6"/>')
        parts.append(f'<text class="knee-label" x="{_n(float(kx) + 9)}" y="{_n(float(ky) - 8)}">{_e(chart.knee_label)}</text>')
    title = f"<title>{_e(chart.title)}</title>" if chart.title else ""
    return (
        f'<svg class="chart" id="{_e(chart.chart_id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {bottom + 42}" '
        f'role="img" aria-label="{_e(chart.title)}">{title}' + "".join(parts) + "</svg>"
    )


# --------------------------------------------------------------------------- path diagram

PATH_ORDER = ("device", "lan", "gateway", "uplink", "center", "internet")
"""The segments along the path, nearest first; ``dns`` hangs off it."""

LINKS = frozenset({"lan", "uplink"})
"""Segments drawn as links between boxes (the others are boxes)."""


@dataclass(frozen=True)
class Node:
    segment: str
    label: str
    lines: tuple[str, ...] = ()
    """Small text under the label (address, idle RTT)."""
    absent: bool = False
    """Nothing configured for this point (drawn dashed)."""


def path_diagram(nodes: Sequence[Node], suspects: Sequence[str], *, suspect_label: str, title: str = "", absent_label: str = "") -> str:
    """device —LAN— gateway —uplink— center —— internet, plus DNS; suspect segments marked.

    Every segment carries ``data-segment`` and ``data-suspect`` ("true"/"false"), so a test
    (or a reader of the source) can see which part of the path the report blames.
    """
    by = {n.segment: n for n in nodes}
    bad = set(suspects)
    box_w, link_w, tail_w, box_h, y0 = 100, 128, 54, 64, 34
    x = 5.0
    parts: list[str] = []
    centres: dict[str, float] = {}
    for seg in PATH_ORDER:
        n = by.get(seg, Node(seg, seg))
        state = "true" if seg in bad else "false"
        cls = "seg" + (" suspect" if seg in bad else "") + (" absent" if n.absent else "")
        if seg in LINKS:
            x2 = x + link_w
            mid = (x + x2) / 2
            centres[seg] = mid
            parts.append(
                f'<g class="{cls} link" data-segment="{_e(seg)}" data-suspect="{state}">'
                f'<line x1="{_n(x)}" y1="{_n(y0 + box_h / 2)}" x2="{_n(x2)}" y2="{_n(y0 + box_h / 2)}"/>'
                f'<text class="seg-label" x="{_n(mid)}" y="{_n(y0 + box_h / 2 - 8)}" text-anchor="middle">{_e(n.label)}</text>'
            )
            for i, line in enumerate(n.lines):
                parts.append(
                    f'<text class="seg-sub" x="{_n(mid)}" y="{_n(y0 + box_h / 2 + 16 + 12 * i)}" text-anchor="middle">{_e(line)}</text>'
                )
            parts.append("</g>")
            x = x2
            continue
        centres[seg] = x + box_w / 2
        sub = list(n.lines) + ([absent_label] if n.absent and absent_label else [])
        parts.append(
            f'<g class="{cls} box" data-segment="{_e(seg)}" data-suspect="{state}">'
            f'<rect x="{_n(x)}" y="{y0}" width="{box_w}" height="{box_h}" rx="8"/>'
            f'<text class="seg-label" x="{_n(x + box_w / 2)}" y="{y0 + 22}" text-anchor="middle">{_e(n.label)}</text>'
        )
        for i, line in enumerate(sub[:2]):
            parts.append(
                f'<text class="seg-sub" x="{_n(x + box_w / 2)}" y="{y0 + 38 + 13 * i}" text-anchor="middle">{_e(clip(line, 11, box_w - 8))}</text>'
            )
        parts.append("</g>")
        x += box_w
        if seg == "center":  # the center's upstream to the internet: part of the "center" segment
            parts.append(
                f'<g class="{cls} link tail" data-segment="center-upstream" data-suspect="{state}">'
                f'<line x1="{_n(x)}" y1="{_n(y0 + box_h / 2)}" x2="{_n(x + tail_w)}" y2="{_n(y0 + box_h / 2)}"/></g>'
            )
            x += tail_w
    # DNS: asked by the device; drawn below the path
    dns = by.get("dns", Node("dns", "DNS"))
    state = "true" if "dns" in bad else "false"
    cls = "seg box" + (" suspect" if "dns" in bad else "") + (" absent" if dns.absent else "")
    dx, dy = centres["uplink"] - box_w / 2, y0 + box_h + 44
    dev = centres["device"]
    parts.append(f'<path class="dns-wire" d="M{_n(dev)},{y0 + box_h} V{_n(dy + box_h / 2)} H{_n(dx)}"/>')
    parts.append(
        f'<g class="{cls}" data-segment="dns" data-suspect="{state}">'
        f'<rect x="{_n(dx)}" y="{_n(dy)}" width="{box_w}" height="{box_h}" rx="8"/>'
        f'<text class="seg-label" x="{_n(dx + box_w / 2)}" y="{_n(dy + 22)}" text-anchor="middle">{_e(dns.label)}</text>'
    )
    for i, line in enumerate((list(dns.lines) + ([absent_label] if dns.absent and absent_label else []))[:2]):
        parts.append(
            f'<text class="seg-sub" x="{_n(dx + box_w / 2)}" y="{_n(dy + 38 + 13 * i)}" text-anchor="middle">{_e(clip(line, 11, box_w - 8))}</text>'
        )
    parts.append("</g>")
    # a flag over each suspect segment
    for seg in PATH_ORDER + ("dns",):
        if seg not in bad:
            continue
        cx = centres.get(seg, dx + box_w / 2)
        fy = (dy + box_h + 16) if seg == "dns" else (y0 - 10)
        parts.append(
            f'<text class="suspect-flag" data-flag="{_e(seg)}" x="{_n(cx)}" y="{_n(fy)}" text-anchor="middle">{"▲" if seg == "dns" else "▼"} {_e(suspect_label)}</text>'
        )
    height = dy + box_h + 24
    title_el = f"<title>{_e(title)}</title>" if title else ""
    return (
        f'<svg class="chart path" id="path-diagram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'role="img" aria-label="{_e(title)}">{title_el}' + "".join(parts) + "</svg>"
    )
