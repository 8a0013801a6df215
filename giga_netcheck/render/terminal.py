"""The short terminal summary (Rich): the verdict first, the headline figures, failed checks,
likely causes, what was not measured.

Everything is built from :class:`rich.text.Text` pieces, never from markup strings: school and
classroom names, target names, profile activities and recorded error texts come from outside
and are shown as written on any console (``[/x]`` is not a closing tag, ``:x:`` is no emoji).
"""

from __future__ import annotations

from typing import Optional

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from giga_netcheck.core.facts import Facts
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import LoadResult, RunResult, claims
from giga_netcheck.core.stats import percentile
from giga_netcheck.render.common import (
    check_label,
    evidence_text,
    fmt_check_value,
    joined,
    missing_said,
    not_measured_lines,
    reason_text,
    third_party_notes,
)

STYLE = {
    "pass": "green",
    "warn": "yellow",
    "fail": "bold red",
    "error": "bold red",
    "incomplete": "bold yellow",
    "no-connectivity": "bold red",
    "not-measured": "dim",
}


def _print(console: Console, *parts: str | tuple[str, str], style: Optional[str] = None) -> None:
    console.print(Text.assemble(*parts, style=style or ""))


def show(console: Console, r: RunResult, m: Messages) -> None:
    """The summary: verdict (the first line), what is missing and why, the school, the headline
    figures, then the verdict's details."""
    for line in status_lines(r, m):
        console.print(line)
    _print(console, (m("heading.summary", school=r.school.name, school_id=r.school.id), "bold"))
    headline = headline_table(r, m)
    if headline is not None:
        console.print(headline)
    for note in third_party_notes(m, r):
        _print(console, f"ⓘ {note}", style="dim")
    bad = [c for c in r.checks if c.status in ("fail", "warn")]
    if bad:
        t = Table(title=Text(m("heading.failed_checks")), title_justify="left", show_lines=False)
        for col in ("col.check", "col.classroom", "col.measured", "col.threshold", "col.status"):
            t.add_column(Text(m(col)))
        for c in sorted(bad, key=lambda c: c.status != "fail"):
            measured, threshold = fmt_check_value(c, m)
            t.add_row(
                Text(check_label(m, c)),
                Text(c.classroom or "—"),
                Text(measured),
                Text(threshold),
                Text(m(f"status_word.{c.status}"), style=STYLE[c.status]),
            )
        console.print(t)
    if r.measurements.load and r.measurements.load.steps:
        show_load(console, r.measurements.load, m)
    likely = claims(r.causes)
    _print(console, (m("heading.causes"), "bold"))
    if not likely:
        _print(console, f"  {m('no_claim')}")
    for c in likely:
        _print(console, "  ", (m(f"cause.{c.id}"), "bold"), " ", (c.id, "dim"), f" — {m(f'segment.{c.segment}')}, {c.confidence:.0%}")
        for e in c.evidence[:3]:
            _print(console, f"    · {evidence_text(e, m)}")
        _print(console, f"    → {m(c.advice)}")
    failed = [p for p in r.probes if p.status in ("failed", "partial")]
    for p in failed:
        _print(console, (f"{p.probe}: {m(f'probe_status.{p.status}')}", "yellow"), " ", joined(reason_text(m, p)[0]))
    for key in dict.fromkeys(n for b in r.measurements.bandwidth for n in b.notes):  # engine warnings, once each
        _print(console, f"⚠ {m(key)}", style="yellow")
    if r.not_measured:
        _print(console, (m("heading.not_measured"), "bold"))
        for x in not_measured_lines(m, r):
            _print(console, f"  · {x.subject + ': ' if x.subject else ''}{x.text}")


def status_lines(r: RunResult, m: Messages) -> list[Text]:
    """The verdict line, then what the classrooms need that was not measured, with why."""
    lines = [Text(m(f"status.{r.status}"), style=STYLE.get(r.status, "bold"))]
    if r.interrupted:
        lines.append(Text(m("interrupted"), style="yellow"))
    for need, why in missing_said(m, r):
        lines.append(Text(f"  · {m('missing.line', need=need, why='; '.join(joined(p) for p in why))}", style="yellow"))
    return lines


# ------------------------------------------------------------------------ headline figures


def _num(v: Optional[float]) -> str:
    return "—" if v is None else f"{v:.1f}"


def headline_rows(r: RunResult, m: Messages) -> list[tuple[str, str, str]]:
    """(what, where, figure) for the figures a speed test shows: download / upload per target,
    idle / loaded RTT p50 per target and hop (nearest first), DNS p50 per resolver, the load knee."""
    facts = Facts.of(r.targets, r.measurements, r.probes)
    rows: list[tuple[str, str, str]] = []
    for t in facts.targets:
        down = facts.throughput(t.name, "download") or facts.throughput(t.name, "download", single=True)
        up = facts.throughput(t.name, "upload") or facts.throughput(t.name, "upload", single=True)
        if down or up:
            figure = m("headline.mbps", down=_num(down.goodput_mbps if down else None), up=_num(up.goodput_mbps if up else None))
            rows.append((m("headline.bandwidth"), t.name, figure))
    if not rows:
        rows.append((m("headline.bandwidth"), "—", m("headline.not_measured")))
    for t in facts.route:
        idle = facts.idle.get(t.name)
        if idle is None or not (idle.stats.sent or idle.stats.received):
            continue
        inc = facts.loaded_increase(t.name)
        where = t.name if t.role != "hop" or t.host == t.name else f"{t.name} {t.host}"
        rows.append((m("headline.rtt"), where, m("headline.ms", a=_num(idle.stats.p50_ms), b=_num(inc[1].stats.p50_ms if inc else None))))
    resolvers: dict[tuple[str, str], dict[str, list[float]]] = {}
    unanswered: dict[tuple[str, str], int] = {}
    for d in r.measurements.dns:
        k = (d.resolver, d.server)
        resolvers.setdefault(k, {"warm": [], "cold": []}).setdefault(d.kind, []).extend(x for x in d.times_ms if x is not None)
        unanswered[k] = unanswered.get(k, 0) + d.timeouts
    for (label, server), times in resolvers.items():
        figure = m("headline.ms", a=_num(percentile(times["warm"], 50)), b=_num(percentile(times["cold"], 50)))
        if unanswered[(label, server)]:
            figure += ", " + m("headline.timeouts", n=unanswered[(label, server)])
        rows.append((m("headline.dns"), label if label == server else f"{label} {server}", figure))
    load = r.measurements.load
    if load is not None and load.steps and load.supports.needed:
        sup = load.supports
        if sup.devices == 0:
            knee = m("headline.knee_none", first=load.steps[0].devices, needed=sup.needed)
        elif sup.at_least:
            knee = m("headline.knee_at_least", devices=sup.devices, needed=sup.needed)
        else:
            knee = m("headline.knee_at", devices=sup.devices, needed=sup.needed)
        rows.append((m("headline.knee"), load.classroom.name, knee))
    return rows


def headline_table(r: RunResult, m: Messages) -> Optional[Table]:
    """The headline figures as one compact table (three columns, fits 80), None when the run has none."""
    rows = headline_rows(r, m)
    if not rows:
        return None
    t = Table(
        title=Text(m("headline.title"), style="bold"),
        title_justify="left",
        show_header=False,
        box=box.SIMPLE,
        pad_edge=False,
        show_edge=False,
    )
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")
    t.add_column(no_wrap=True)
    for what, where, figure in rows:
        t.add_row(Text(what, style="dim"), Text(where), Text(figure, style="bold"))
    return t


# ------------------------------------------------------------------------ the load ramp

BAR_CELLS = 6
KNEE_MARK = "◀"


def _bar(share: float) -> str:
    """A share as a bar of BAR_CELLS cells in eighths (U+2588...U+258F): 0.5 -> half the cells full."""
    eighths = round(max(0.0, min(1.0, share)) * BAR_CELLS * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")).ljust(BAR_CELLS, "·")


def ramp_table(load: LoadResult, m: Messages) -> Table:
    """The ramp as a compact table (fits 80 columns): devices per step with the knee marked, the
    share meeting the activity as a bar, goodput, connection errors by kind, the hop whose RTT
    rose most, RPM."""
    share_needed = load.meet_share
    t = Table(
        title=Text(m("load.table.title", activity=load.activity_kind, target=load.target)),
        title_justify="left",
        caption=Text(m("load.table.caption", share=f"{share_needed * 100:g}")),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_lines=False,
        pad_edge=False,
    )
    for key in ("devices", "met", "goodput", "errors", "rtt", "rpm"):
        # the figures never wrap; errors and the hop column give way on a narrow terminal
        t.add_column(
            Text(m(f"load.col.{key}")),
            justify="left" if key in ("met", "errors", "rtt") else "right",
            no_wrap=key not in ("errors", "rtt"),
        )
    knee = load.knee.devices if load.knee else None
    first_failing = load.knee.first_failing_devices if load.knee else None
    for s in load.steps:
        errs = [(k, v) for k, v in s.errors.items() if v]
        worst = s.worst_hop()
        share = s.met_share
        style = "green" if share is not None and share >= share_needed else "red"
        met = Text("-") if share is None else Text.assemble((_bar(share), style), f" {share * 100:3.0f}% {s.met}/{s.judged}")
        devices = Text(f"{s.devices}" + ("" if s.complete else " *"))
        if s.devices == knee and s.complete:
            devices = Text(f"{devices.plain} {KNEE_MARK}", style="bold")
        elif s.devices == first_failing and s.complete:
            devices.stylize("red")
        t.add_row(
            devices,
            met,
            Text(f"{s.goodput_mbps:.1f}"),
            Text(", ".join(f"{m(f'load.err.{k}')} {v}" for k, v in errs) or "0"),
            Text(f"{worst.target} +{worst.increase_ms or 0.0:.0f} {worst.grade}" if worst else "-"),
            Text("-" if s.rpm is None else f"{s.rpm:.0f}"),
        )
    return t


def load_lines(load: LoadResult, m: Messages) -> list[str]:
    """The verdict under the ramp: devices served of those needed, responsiveness, bufferbloat."""
    sup = load.supports
    rate = load.activity_rate_mbps
    what = load.activity_kind + (f" {rate:g} Mbit/s" if rate else "")
    if sup.devices == 0:
        lines = [m("load.supports_none", first=load.steps[0].devices if load.steps else 0, needed=sup.needed, activity=what)]
    elif sup.at_least:
        lines = [m("load.supports_at_least", devices=sup.devices, needed=sup.needed, activity=what)]
    else:
        lines = [m("load.supports", devices=sup.devices, needed=sup.needed, activity=what)]
    r = load.responsiveness
    if r is not None and r.rpm is not None:
        lines.append(m("load.rpm", rpm=f"{r.rpm:.0f}", rating=r.rating, devices=r.at_devices))
    b = load.bufferbloat
    if b:
        lines.append(m("load.bufferbloat", grade=b.grade, increase=f"{b.increase_ms:.0f}", target=b.target, devices=b.at_devices))
    if load.stopped:
        lines.append(m("load.stopped", why=load.stopped))
    return lines


def show_load(console: Console, load: LoadResult, m: Messages) -> None:
    """The load section: the ramp table and its verdict (``run`` and ``probe load``)."""
    console.print(ramp_table(load, m))
    for line in load_lines(load, m):
        console.print(Text(f"  {line}"))
