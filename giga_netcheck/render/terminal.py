"""The short terminal summary (Rich): failed checks first, likely causes, where the report is."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import LoadResult, RunResult, claims
from giga_netcheck.render.common import check_label, evidence_text, fmt_check_value, joined, not_measured_lines, reason_text

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "bold red", "not-measured": "dim"}


def show(console: Console, r: RunResult, m: Messages) -> None:
    console.print(f"[bold]{m('heading.summary', school=r.school.name, school_id=r.school.id)}[/]")
    console.print(f"[{STYLE[r.status]}]{m(f'status.{r.status}')}[/]")
    if r.interrupted:
        console.print(f"[yellow]{m('interrupted')}[/]")
    bad = [c for c in r.checks if c.status in ("fail", "warn")]
    if bad:
        t = Table(title=m("heading.failed_checks"), title_justify="left", show_lines=False)
        for col in ("col.check", "col.classroom", "col.measured", "col.threshold", "col.status"):
            t.add_column(m(col))
        for c in sorted(bad, key=lambda c: c.status != "fail"):
            measured, threshold = fmt_check_value(c, m)
            t.add_row(check_label(m, c), c.classroom or "—", measured, threshold, f"[{STYLE[c.status]}]{m(f'status_word.{c.status}')}[/]")
        console.print(t)
    if r.measurements.load and r.measurements.load.steps:
        show_load(console, r.measurements.load, m)
    likely = claims(r.causes)
    console.print(f"[bold]{m('heading.causes')}[/]")
    if not likely:
        console.print(f"  {m('no_claim')}")
    for c in likely:
        console.print(f"  [bold]{m(f'cause.{c.id}')}[/] [dim]{c.id}[/] — {m(f'segment.{c.segment}')}, {c.confidence:.0%}")
        for e in c.evidence[:3]:
            console.print(f"    · {evidence_text(e, m)}", highlight=False)
        console.print(f"    → {m(c.advice)}")
    failed = [p for p in r.probes if p.status in ("failed", "partial")]
    for p in failed:
        console.print(f"[yellow]{p.probe}: {m(f'probe_status.{p.status}')}[/] {joined(reason_text(m, p)[0])}", highlight=False)
    for key in dict.fromkeys(n for b in r.measurements.bandwidth for n in b.notes):  # engine warnings, once each
        console.print(f"[yellow]⚠ {m(key)}[/]", highlight=False)
    if r.not_measured:
        console.print(f"[bold]{m('heading.not_measured')}[/]")
        for x in not_measured_lines(m, r):
            console.print(f"  · {x.subject + ': ' if x.subject else ''}{x.text}", highlight=False, markup=False)


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
        title=m("load.table.title", activity=load.activity_kind, target=load.target),
        title_justify="left",
        caption=m("load.table.caption", share=f"{share_needed * 100:g}"),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_lines=False,
        pad_edge=False,
    )
    for key in ("devices", "met", "goodput", "errors", "rtt", "rpm"):
        # the figures never wrap; errors and the hop column give way on a narrow terminal
        t.add_column(
            m(f"load.col.{key}"), justify="left" if key in ("met", "errors", "rtt") else "right", no_wrap=key not in ("errors", "rtt")
        )
    knee = load.knee.devices if load.knee else None
    first_failing = load.knee.first_failing_devices if load.knee else None
    for s in load.steps:
        errs = [(k, v) for k, v in s.errors.items() if v]
        worst = s.worst_hop()
        share = s.met_share
        style = "green" if share is not None and share >= share_needed else "red"
        met = "-" if share is None else f"[{style}]{_bar(share)}[/] {share * 100:3.0f}% {s.met}/{s.judged}"
        devices = f"{s.devices}" + ("" if s.complete else " *")
        if s.devices == knee and s.complete:
            devices = f"[bold]{devices} {KNEE_MARK}[/]"
        elif s.devices == first_failing and s.complete:
            devices = f"[red]{devices}[/]"
        t.add_row(
            devices,
            met,
            f"{s.goodput_mbps:.1f}",
            ", ".join(f"{m(f'load.err.{k}')} {v}" for k, v in errs) or "0",
            f"{worst.target} +{worst.increase_ms or 0.0:.0f} {worst.grade}" if worst else "-",
            "-" if s.rpm is None else f"{s.rpm:.0f}",
        )
    return t


def load_lines(load: LoadResult, m: Messages) -> list[str]:
    """The verdict under the ramp: devices carried of those needed, responsiveness, bufferbloat."""
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
        console.print(f"  {line}", highlight=False, markup=False)
