"""The short terminal summary (Rich): failed checks first, likely causes, where the report is."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..i18n import Messages
from ..models import RunResult, claims
from . import check_label, evidence_text, fmt_check_value

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
            measured, threshold = fmt_check_value(c)
            t.add_row(check_label(m, c), c.classroom or "—", measured, threshold,
                      f"[{STYLE[c.status]}]{m(f'status_word.{c.status}')}[/]")
        console.print(t)
    likely = claims(r.causes)
    console.print(f"[bold]{m('heading.causes')}[/]")
    if not likely:
        console.print(f"  {m('no_claim')}")
    for c in likely:
        console.print(f"  [bold]{m(f'cause.{c.id}')}[/] [dim]{c.id}[/] — {m(f'segment.{c.segment}')}, {c.confidence:.0%}")
        for e in c.evidence[:3]:
            console.print(f"    · {evidence_text(e)}", highlight=False)
        console.print(f"    → {m(c.advice)}")
    failed = [p for p in r.probes if p.status in ("failed", "partial")]
    for p in failed:
        console.print(f"[yellow]{p.probe}: {m(f'probe_status.{p.status}')}[/] {p.reason or ''}", highlight=False)
    if r.not_measured:
        console.print(f"[bold]{m('heading.not_measured')}[/]")
        for x in r.not_measured:
            console.print(f"  · {x}", highlight=False)
