"""CLI for unattended monitoring: the scheduled side of ``run``, and ``schedule`` and ``history``.

``run`` stays in cli.py; when it is given ``--mode scheduled`` (or ``--history``, ``--prom``,
``--time-limit``, ``--splay``) it hands the unattended parts to :class:`Unattended`: the lock,
the random start delay, the time limit, the plan, the history line and the Prometheus file.
Exit codes beyond cli.py's: 4 another run holds the lock, 5 the run hit its time limit.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from giga_netcheck.cli.common import Exit, fail, messages, out, styled
from giga_netcheck.config.site import Site, load_site
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import RunResult
from giga_netcheck.core.results import write_atomic
from giga_netcheck.measure.probes.base import Progress
from giga_netcheck.measure.runner import run
from giga_netcheck.monitor import history as hist, prometheus
from giga_netcheck.monitor.scheduled import (
    HARD_LIMIT_GRACE_S,
    MB,
    LockHeld,
    Plan,
    RunLock,
    choose_plan,
    cron_line,
    merge_crontab,
    parse_days,
    parse_every,
    run_planned,
    safe_name,
    splay_delay,
    sweep_temp_files,
    systemd_units,
    unit_name,
    widened,
    with_cause,
)
from giga_netcheck.render.common import evidence_text

EXIT_LOCKED = 4
EXIT_TIME_LIMIT = 5
MODES = ("full", "quick", "scheduled")


def resolve_mode(mode: Optional[str], quick: bool, m: Optional[Messages] = None) -> str:
    """``--mode`` and its alias ``--quick`` -> one of MODES; raises ConfigError when they contradict."""
    if mode is None:
        return "quick" if quick else "full"
    mode = str(getattr(mode, "value", mode))
    if mode not in MODES:
        raise ConfigError(f"--mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if quick and mode != "quick":
        raise ConfigError((m or Messages("en"))("scheduled.mode_conflict", mode=mode))
    return mode


def default_history(site: Site, out_dir: Path) -> Path:
    """The site's ``schedule.history``, else ``OUT/history-<school id>.jsonl``."""
    if site.schedule.history:
        return Path(site.schedule.history)
    return out_dir / f"history-{safe_name(site.school.id) or 'site'}.jsonl"


class Unattended:
    """The unattended parts of one ``run``; cli.run_cmd calls begin, run, then record."""

    def __init__(
        self,
        m: Messages,
        err: Console,
        site: Site,
        *,
        mode: str,
        out_dir: Path,
        splay_s: float,
        history: Optional[Path],
        prom: Optional[Path],
        time_limit_s: Optional[float],
    ) -> None:
        self.m, self.err, self.site, self.mode, self.out_dir = m, err, site, mode, out_dir
        self.scheduled = mode == "scheduled"
        self.splay_s, self.history, self.prom, self.time_limit_s = splay_s, history, prom, time_limit_s
        self.plan: Optional[Plan] = None
        self.timed_out = False
        self.stop: Optional[threading.Event] = None
        self.started = dt.datetime.now().astimezone()
        self._lock: Optional[RunLock] = None
        self._timers: list[threading.Timer] = []
        self._guard = threading.Lock()
        self._finished = False
        self._previous: tuple[hist.Record, ...] = ()

    # ------------------------------------------------------------------ setting up
    @classmethod
    def prepare(
        cls,
        m: Messages,
        err: Console,
        site: Site,
        *,
        mode: str,
        out_dir: Path,
        splay: Optional[float],
        history: Optional[Path],
        prom: Optional[Path],
        time_limit: Optional[float],
    ) -> Optional[Unattended]:
        """None for a plain interactive run (no unattended option given)."""
        scheduled = mode == "scheduled"
        if not scheduled and history is None and prom is None and time_limit is None and not splay:
            return None
        for option, value in (("--splay", splay), ("--time-limit", time_limit)):
            if value is not None and value < 0:
                raise ConfigError(m("scheduled.bad_option", option=option, message="must not be negative"))
        sched = site.schedule
        if scheduled and history is None:
            history = default_history(site, out_dir)
        return cls(
            m,
            err,
            site,
            mode=mode,
            out_dir=out_dir,
            splay_s=float(splay if splay is not None else (sched.splay_s if scheduled else 0.0)),
            history=history,
            prom=prom,
            time_limit_s=time_limit if time_limit is not None else (sched.time_limit_s if scheduled else None),
        )

    def _log(self, text: str) -> None:
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self.err.print(f"{stamp} giga-netcheck: {text}", highlight=False, soft_wrap=True)

    def begin(self, stop: threading.Event) -> None:
        """Lock (exit 4 when held), sweep old temp files, wait the splay, arm the time limit."""
        self.stop = stop
        if self.scheduled and self.history is not None:
            try:
                self._lock = RunLock(f"{self.history}.lock").acquire()
            except LockHeld as exc:
                self._log(self.m("scheduled.locked", path=exc.path, holder=exc.holder or "?"))
                raise typer.Exit(EXIT_LOCKED) from None
            except OSError as exc:
                _usage(self.m, f"cannot create the lock file {self.history}.lock: {exc.strerror or exc}")
            school = safe_name(self.site.school.id) or "site"
            places = [(self.out_dir, f"{school}-"), (self.history.parent, f"{self.history.name}.")]
            if self.prom is not None:
                places.append((self.prom.parent, f"{self.prom.name}."))
            sweep_temp_files(places)
        if threading.current_thread() is threading.main_thread():
            # systemd stops a unit with SIGTERM: stop like the first Ctrl-C, keep what was measured
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        delay = splay_delay(self.splay_s)
        if delay > 0:
            self._log(self.m("scheduled.splay", seconds=delay))
            try:
                stop.wait(delay)
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            if stop.is_set():
                raise typer.Exit(130)
        self.started = dt.datetime.now().astimezone()
        if self.history is not None:
            try:
                self._previous = hist.read(self.history, self.site.school.id).records
            except hist.HistoryError as exc:
                self._log(self.m("scheduled.history_error", message=str(exc)))
        if self.scheduled:
            self.plan = choose_plan(self.site.schedule, self._previous, self.started)
        if self.time_limit_s:
            self._arm(self.time_limit_s)

    def _arm(self, limit: float) -> None:
        def soft() -> None:
            self.timed_out = True
            self._log(self.m("scheduled.time_limit", seconds=limit))
            assert self.stop is not None
            self.stop.set()

        def hard() -> None:
            with self._guard:
                if self._finished:
                    return
                self._finished = True
            self._log(self.m("scheduled.hard_limit", grace=HARD_LIMIT_GRACE_S, seconds=limit))
            rec = hist.Record(
                when=self.started,
                school=self.site.school.id,
                status="error",
                plan=self.plan.kind if self.plan else ("quick" if self.mode == "quick" else "full"),
                mode=self.plan.mode if self.plan else self.mode,
                interrupted=True,
                note="time-limit",
                duration_s=(dt.datetime.now().astimezone() - self.started).total_seconds(),
            )
            try:
                if self.history is not None:
                    hist.append(self.history, rec)
                if self.prom is not None:
                    prometheus.write(self.prom, prometheus.render_unfinished(self.site.school.id, self.started))
            finally:
                os._exit(EXIT_TIME_LIMIT)  # the lock goes with the process

        for delay, fn in ((limit, soft), (limit + HARD_LIMIT_GRACE_S, hard)):
            t = threading.Timer(delay, fn)
            t.daemon = True
            t.start()
            self._timers.append(t)

    # --------------------------------------------------------------------- running
    def run(self, quick: bool, host: dict[str, Any], progress: Progress) -> RunResult:
        """Measure (in the worker thread): the scheduled plan, or a plain run; add peak-congestion."""
        assert self.stop is not None
        try:
            if self.plan is not None:
                result = run_planned(self.site, self.plan, host=host, progress=progress, stop=self.stop)
            else:
                result = run(self.site, quick=quick, host=host, progress=progress, stop=self.stop)
        finally:
            with self._guard:
                aborting, self._finished = self._finished, True
            if aborting:  # the hard limit fired first: the process is ending, nothing more to do
                threading.Event().wait()
            for t in self._timers:
                t.cancel()
        if self.history is not None:
            lessons = hist.Lessons(self.site.schedule.lesson_hours, self.site.schedule.lesson_days)
            records = list(self._previous) + [hist.record_of(result)]
            result = with_cause(result, hist.peak_congestion(records, lessons))
        return result

    def keep_reports(self, result: RunResult) -> bool:
        """Scheduled runs keep the full reports only when something failed or the run was cut short."""
        return not self.scheduled or result.status in ("fail", "incomplete", "no-connectivity", "error") or result.interrupted

    def record(self, result: RunResult, written: list[Path]) -> None:
        """Append the history line (and apply retention) and write the Prometheus file."""
        report = next((str(p) for p in written if p.suffix == ".json"), None)
        if self.history is not None:
            try:
                hist.append(self.history, hist.record_of(result, report=report, note="time-limit" if self.timed_out else None))
                s = self.site.schedule
                hist.retain(self.history, max_age_days=s.retention_days, max_bytes=int(s.retention_mb * MB))
            except hist.HistoryError as exc:
                self._log(self.m("scheduled.history_error", message=str(exc)))
        if self.prom is not None:
            try:
                prometheus.write(self.prom, prometheus.render(result))
            except OSError as exc:
                self._log(self.m("scheduled.prom_error", message=f"{self.prom}: {exc.strerror or exc}"))
        self.release()  # what is left is printing

    def summary(self, out: Console, result: RunResult) -> None:
        """One line for cron's log instead of the terminal summary."""
        plan = self.plan or Plan("full", "full", why=("plan.why.every_run", {}))
        status = self.m(f"status_word.{result.status}") if self.m.has(f"status_word.{result.status}") else result.status
        out.print(
            self.m(
                "scheduled.summary",
                time=result.started_at,
                school=result.school.id,
                status=status,
                plan=self.m(f"plan.{plan.kind}"),
                reason=self.m(plan.why[0], **plan.why[1]) if plan.why[1] else self.m(plan.why[0]),
                mbytes=sum(b.bytes_total for b in result.measurements.bandwidth) / MB,
                seconds=result.duration_s,
            ),
            highlight=False,
            soft_wrap=True,
        )
        if self.history is not None:
            out.print(self.m("scheduled.history_written", path=str(self.history)), highlight=False, soft_wrap=True)

    def exit_code(self, result: RunResult, default: int) -> int:
        return EXIT_TIME_LIMIT if self.timed_out else default

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()


# ------------------------------------------------------------------------ commands


def _usage(m: Messages, message: str) -> None:
    fail(m, "error.config", Exit.USAGE, message=message)


def _command_for(site_path: Path, out_dir: Path, splay: float, prom: Optional[Path]) -> list[str]:
    exe = shutil.which("giga-netcheck")
    base = [exe] if exe else [sys.executable, "-m", "giga_netcheck"]
    cmd = base + ["run", "--mode", "scheduled", "--site", str(site_path), "--out", str(out_dir), "--no-progress", "--splay", f"{splay:g}"]
    if prom is not None:
        cmd += ["--prom", str(prom.resolve())]
    return cmd


def schedule_cmd(
    site: Path = typer.Option(..., "--site", "-s", help="The school's site file (YAML); its schedule: section gives the defaults."),
    every: Optional[str] = typer.Option(
        None, "--every", help="How often to run: 5m, 10m, 15m, 20m, 30m or whole hours like 1h (default: schedule.every, 15m)."
    ),
    window: Optional[str] = typer.Option(
        None,
        "--window",
        help="When runs start, HH:MM-HH:MM (default: schedule.window, else the lesson hours widened by an hour each side, so the history has a baseline).",
    ),
    days: Optional[str] = typer.Option(None, "--days", help="Days to run: mon-fri, or mon,wed,fri (default: schedule.lesson_days)."),
    splay: Optional[float] = typer.Option(
        None, "--splay", help="Random start delay in seconds passed to each run (default: schedule.splay_s, 120)."
    ),
    prom: Optional[Path] = typer.Option(
        None, "--prom", help="Have each run write a Prometheus textfile here (node_exporter's textfile folder)."
    ),
    systemd: bool = typer.Option(False, "--systemd", help="Print a systemd service and timer instead of a crontab line."),
    install: bool = typer.Option(
        False,
        "--install",
        help="Write them: the crontab line into your crontab (via `crontab -`) or, with --to, into that file; the systemd units into --to (default ~/.config/systemd/user).",
    ),
    to: Optional[Path] = typer.Option(
        None, "--to", help="With --install: the crontab file to update, or the folder for the systemd units."
    ),
    lang: Optional[str] = typer.Option(None, "--lang", help="Message language: en or ja."),
) -> None:
    """Print (or install) a crontab line or systemd timer that runs this site's scheduled check."""
    m = messages(lang)
    try:
        the_site = load_site(site)
    except ConfigError as exc:
        _usage(m, str(exc))
    s = the_site.schedule
    try:
        every_min = parse_every(every or s.every)
        win = window or s.window or widened(s.lesson_hours)
        hist.parse_range(win)
        day_list = parse_days(days) if days else s.lesson_days
    except ValueError as exc:
        _usage(m, str(exc))
    splay_s = s.splay_s if splay is None else splay
    site_path = site.resolve()
    out_dir = site_path.parent / "reports"
    command = _command_for(site_path, out_dir, splay_s, prom)
    if splay_s + s.time_limit_s >= every_min * 60:
        typer.echo(m("schedule.warn_overlap", splay=splay_s, limit=s.time_limit_s, every=every_min), err=True)
    try:
        if systemd:
            units = systemd_units(
                command,
                every_min,
                win,
                day_list,
                school_id=the_site.school.id,
                school_name=the_site.school.name,
                splay_s=splay_s,
                time_limit_s=s.time_limit_s,
                workdir=str(site_path.parent),
            )
            if not install:
                for name, text in units.items():
                    typer.echo(f"# {name}\n{text}")
                raise typer.Exit(0)
            folder = to or Path.home() / ".config" / "systemd" / "user"
            for name, text in units.items():
                p = write_atomic(folder / name, text)
                os.chmod(p, 0o644)
                typer.echo(m("schedule.written", path=str(p)))
            typer.echo(m("schedule.systemd_next", timer=f"{unit_name(the_site.school.id)}.timer"))
            raise typer.Exit(0)
        line = cron_line(command, every_min, win, day_list, the_site.school.id, log=str(out_dir / "giga-netcheck.log"))
    except ValueError as exc:
        _usage(m, str(exc))
    if not install:
        typer.echo(line)  # plain: a crontab line must not be wrapped or styled
        raise typer.Exit(0)
    if to is not None:
        existing = to.read_text(encoding="utf-8") if to.exists() else ""
        write_atomic(to, merge_crontab(existing, line, the_site.school.id))
        typer.echo(m("schedule.written", path=str(to)))
        raise typer.Exit(0)
    try:
        listed = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30)
        existing = listed.stdout if listed.returncode == 0 else ""
        done = subprocess.run(
            ["crontab", "-"], input=merge_crontab(existing, line, the_site.school.id), capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _usage(m, m("schedule.crontab_failed", message=str(exc)))
    if done.returncode != 0:
        _usage(m, m("schedule.crontab_failed", message=(done.stderr or "").strip() or f"exit {done.returncode}"))
    typer.echo(m("schedule.crontab_installed", school=the_site.school.id))


def _fmt(v: Optional[float], digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


@dataclass(frozen=True)
class HistoryView:
    """What ``history`` shows: the school's records reduced to trends and the analysis."""

    school: str
    records: tuple[hist.Record, ...]
    skipped: int
    others: tuple[tuple[str, int], ...]
    trends: hist.Trends
    lessons: hist.Lessons
    cause: Any


def history_view(path: Path, *, school: Optional[str], lessons: hist.Lessons, since_days: Optional[int]) -> HistoryView:
    got = hist.read(path)
    counts = hist.schools(got.records)
    chosen = school or (counts[0][0] if counts else "")
    records = [r for r in got.records if r.school == chosen]
    if since_days:
        cutoff = dt.datetime.now().astimezone() - dt.timedelta(days=since_days)
        records = [r for r in records if hist._ts(r.when) >= cutoff.timestamp()]
    return HistoryView(
        chosen,
        tuple(records),
        got.skipped,
        tuple(c for c in counts if c[0] != chosen),
        hist.trends(records),
        lessons,
        hist.peak_congestion(records, lessons),
    )


def _bucket_rows(view: HistoryView, m: Messages, by: str) -> list[list[str]]:
    rows = []
    buckets = view.trends.hours if by == "hour" else view.trends.weekdays
    for b in buckets:
        if by == "hour":
            label = f"{b.key:02d}:00"
            lesson = any(hist.in_range(view.lessons.hours, dt.datetime(2000, 1, 1, b.key, mm)) for mm in (0, 30, 59))
        else:
            label = m(f"weekday.{hist.WEEKDAYS[b.key]}")
            lesson = hist.WEEKDAYS[b.key] in view.lessons.days
        rows.append(
            [
                label,
                "●" if lesson else "",
                str(b.runs),
                str(b.failed),
                _fmt(b.down_mbps_p50),
                _fmt(b.up_mbps_p50),
                _fmt(b.rtt_p50_ms),
                _fmt(b.loss_pct_p50, 2),
                _fmt(b.dns_p50_ms),
            ]
        )
    return rows


_COLS = (
    "history.col.runs",
    "history.col.failed",
    "history.col.down",
    "history.col.up",
    "history.col.rtt",
    "history.col.loss",
    "history.col.dns",
)


def history_cmd(
    file: Path = typer.Argument(..., help="A history file (JSON Lines) written by run --history or --mode scheduled."),
    site: Optional[Path] = typer.Option(
        None, "--site", "-s", help="Take the lesson hours and days from this site file's schedule: section."
    ),
    school: Optional[str] = typer.Option(None, "--school", help="The school id to show (default: the one with the most records)."),
    lesson_hours: Optional[str] = typer.Option(
        None, "--lesson-hours", help="Lesson time, HH:MM-HH:MM (default: the site's, else 08:30-15:30)."
    ),
    lesson_days: Optional[str] = typer.Option(
        None, "--lesson-days", help="Lesson days: mon-fri, or mon,wed,fri (default: the site's, else mon-fri)."
    ),
    since: Optional[int] = typer.Option(None, "--days", help="Only the last N days."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Also write the trends and the analysis as an HTML page here."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Language: en or ja."),
) -> None:
    """Show a history's trend per hour of day and per weekday, and whether lesson hours are congested."""
    m = messages(lang)
    lessons = hist.Lessons()
    try:
        if site is not None:
            s = load_site(site).schedule
            lessons = hist.Lessons(s.lesson_hours, s.lesson_days)
        if lesson_hours:
            hist.parse_range(lesson_hours)
            lessons = hist.Lessons(lesson_hours, lessons.days)
        if lesson_days:
            lessons = hist.Lessons(lessons.hours, parse_days(lesson_days))
        if since is not None and since < 1:
            raise ValueError("--days must be 1 or more")
    except ConfigError as exc:
        _usage(m, str(exc))
    except ValueError as exc:
        _usage(m, str(exc))
    if not file.exists():
        fail(m, "error.result", Exit.USAGE, message=f"{file}: file not found")
    try:
        view = history_view(file, school=school, lessons=lessons, since_days=since)
    except hist.HistoryError as exc:
        fail(m, "error.result", Exit.USAGE, message=str(exc))
    if not view.records:
        out.print(m("history.empty", path=str(file)), highlight=False)
        raise typer.Exit(0)
    t = view.trends
    out.print(m("history.heading", school=view.school, runs=t.runs, first=_day(t.first), last=_day(t.last)), style="bold", highlight=False)
    if view.skipped:
        out.print(m("history.skipped", n=view.skipped), style="yellow", highlight=False)
    if view.others:
        out.print(m("history.other_schools", schools=", ".join(f"{s} ({n})" for s, n in view.others)), highlight=False)
    out.print(m("history.figures", role=t.role or "—", plan=m(f"plan.{t.plan}") if t.plan else "—"), highlight=False)
    for by, title, first in (("hour", "history.by_hour", "history.col.hour"), ("weekday", "history.by_weekday", "history.col.weekday")):
        table = Table(title=m(title), title_justify="left")
        for col in (first, "history.col.lesson") + _COLS:
            table.add_column(m(col), justify="left" if col in (first, "history.col.lesson") else "right")
        for row in _bucket_rows(view, m, by):
            table.add_row(*row)
        out.print(table)
    out.print(m("history.analysis", lessons=lessons.label()), style="bold", highlight=False)
    _print_cause(out, m, view.cause)
    if html_out is not None:
        write_atomic(html_out, history_html(view, m))
        out.print(m("history.html_written", path=str(html_out)), highlight=False)


def _day(when: Optional[dt.datetime]) -> str:
    return when.strftime("%Y-%m-%d %H:%M") if when else "—"


def _print_cause(out: Console, m: Messages, cause: Any) -> None:
    if cause is None:
        out.print("  " + m("history.no_peak", reason=m("history.no_peak.reason")), highlight=False)
        return
    out.print(
        styled(
            "  ", (m(f"cause.{cause.id}"), "bold"), " ", (cause.id, "dim"), f" — {m(f'segment.{cause.segment}')}, {cause.confidence:.0%}"
        )
    )
    for e in cause.evidence:
        out.print(f"    · {evidence_text(e)}", highlight=False)
    out.print(f"    → {m(cause.advice)}", highlight=False)


def history_html(view: HistoryView, m: Messages) -> str:
    """A standalone page: the two trend tables (with a bar per hour) and the analysis."""
    t = view.trends
    peak = max((b.down_mbps_p50 or 0.0 for b in t.hours), default=0.0) or 1.0
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(m.lang)}"><head><meta charset="utf-8">',
        f"<title>{escape(m('history.title'))} — {escape(view.school)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th:first-child,td:first-child{text-align:left}"
        "tr.lesson td:first-child{font-weight:bold}.bar{display:inline-block;height:.8em;background:#4a7ebb}"
        ".cause{border-left:4px solid #c0392b;padding-left:1em}</style></head><body>",
        f"<h1>{escape(m('history.heading', school=view.school, runs=t.runs, first=_day(t.first), last=_day(t.last)))}</h1>",
        f"<p>{escape(m('history.figures', role=t.role or '—', plan=m(f'plan.{t.plan}') if t.plan else '—'))}</p>",
    ]
    if view.skipped:
        parts.append(f"<p>{escape(m('history.skipped', n=view.skipped))}</p>")
    for by, title, first in (("hour", "history.by_hour", "history.col.hour"), ("weekday", "history.by_weekday", "history.col.weekday")):
        parts.append(f"<h2>{escape(m(title))}</h2><table><thead><tr>")
        parts += [f"<th>{escape(m(c))}</th>" for c in (first, "history.col.lesson") + _COLS]
        parts.append("<th></th></tr></thead><tbody>")
        buckets = t.hours if by == "hour" else t.weekdays
        for b, row in zip(buckets, _bucket_rows(view, m, by)):
            width = int(100 * (b.down_mbps_p50 or 0.0) / peak)
            cls = ' class="lesson"' if row[1] else ""
            parts.append(
                f"<tr{cls}>"
                + "".join(f"<td>{escape(x)}</td>" for x in row)
                + f'<td style="text-align:left;min-width:12em"><span class="bar" style="width:{width}%"></span></td></tr>'
            )
        parts.append("</tbody></table>")
    parts.append(f"<h2>{escape(m('history.analysis', lessons=view.lessons.label()))}</h2>")
    c = view.cause
    if c is None:
        parts.append(f"<p>{escape(m('history.no_peak', reason=m('history.no_peak.reason')))}</p>")
    else:
        parts.append(
            f'<div class="cause"><p><strong>{escape(m(f"cause.{c.id}"))}</strong> <code>{escape(c.id)}</code> — '
            f"{escape(m(f'segment.{c.segment}'))}, {c.confidence:.0%}</p><ul>"
        )
        parts += [f"<li>{escape(evidence_text(x))}</li>" for x in c.evidence]
        parts.append(f"</ul><p>→ {escape(m(c.advice))}</p></div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def register(app: typer.Typer) -> None:
    """Add ``schedule`` and ``history`` to the main app."""
    app.command("schedule")(schedule_cmd)
    app.command("history")(history_cmd)
