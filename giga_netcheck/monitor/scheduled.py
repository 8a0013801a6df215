"""Scheduled runs: the light plan, a byte-capped transfer engine, splay, lock and time limit.

A scheduled run (``run --mode scheduled``, docs/scheduled.md) watches a school all term from
cron or a systemd timer. It must be cheap for the school's line, never pile up and never lose
a result, so this module gives it:

- :func:`choose_plan`: *light* by default; *full* every Nth run or for the first run in a time
  window each day (``schedule.full_every`` / ``schedule.full_window`` in the site file);
- the light plan (:func:`run_planned`): latency per hop and DNS as usual but shortened, and
  bandwidth through :class:`CappedHttpEngine`, which takes every byte it moves from one
  :class:`ByteBudget` for the whole run, so the run's transfers can never exceed the budget
  whatever the line does;
- :func:`splay_delay` (uniform, bounded), :class:`RunLock` (``flock``; a second run gets
  :class:`LockHeld`), and :func:`sweep_temp_files` for temp files a killed run left behind.

Nothing here exits or prints: the CLI (``cli_schedule``) does.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import random
import re
import shlex
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import httpx

from giga_netcheck.config.site import ProbeSettings, ScheduleSettings, Site
from giga_netcheck.core.errors import NetcheckError
from giga_netcheck.core.files import lock_fd, pread
from giga_netcheck.core.goodput import FIRST_BYTE_TO_LAST, Span
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import BandwidthMeasurement, Cause, RunResult, Target
from giga_netcheck.measure.engines import ThroughputEngine, ThroughputPlan, run_streams, stream_errors
from giga_netcheck.measure.engines._summary import summarize
from giga_netcheck.measure.probes.bandwidth import BandwidthProbe
from giga_netcheck.measure.probes.base import Probe, Progress
from giga_netcheck.measure.probes.dns import DnsProbe
from giga_netcheck.measure.probes.latency import LatencyProbe
from giga_netcheck.measure.runner import conclude, load_profiles, run
from giga_netcheck.monitor.history import in_range, parse_range

MB = 1_000_000
DEFAULT_SPLAY_S = 120.0
DEFAULT_TIME_LIMIT_S = 240.0
TRANSFER_SHARE = 0.8
"""Share of the data budget the light transfers may use; the rest covers latency and DNS
probes, the loaded-latency sampler, HTTP requests, TCP/IP headers and ACKs."""
HARD_LIMIT_GRACE_S = 15.0
"""After the time limit sets the stop event, probes get this long to return their partial data."""

MODE_LIGHT = "scheduled"
MODE_FULL = "scheduled-full"
LIGHT_ENGINE = "http-capped"


class LockHeld(NetcheckError):
    """Another run holds the lock; ``holder`` is what it wrote there (pid and start time)."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is held by {holder or 'another run'}")


# ------------------------------------------------------------------------------ windows


def widened(text: str, minutes: int = 60) -> str:
    """The range widened on both sides (clamped to the day): the lesson hours plus a baseline."""
    start, end = parse_range(text)
    start, end = max(0, start - minutes), min(24 * 60, end + minutes)
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def parse_every(text: str) -> int:
    """``"15m"`` -> 15, ``"1h"`` -> 60 (minutes); raises ValueError."""
    m = re.fullmatch(r"\s*(\d+)\s*([mh])\s*", text)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"expected an interval like 15m or 1h, got {text!r}")
    return int(m.group(1)) * (60 if m.group(2) == "h" else 1)


# --------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """What one scheduled run measures."""

    kind: str
    """``light`` (capped transfers) or ``full`` (the site's bandwidth probe)."""
    reason: str
    """Why, in English: ``budget 5 MB``, ``every 12th run``, ``first run in 12:00-12:30``."""
    budget_bytes: int = 5 * MB
    """Data a light run may use, everything included (the transfers get TRANSFER_SHARE)."""
    why: tuple[str, dict[str, Any]] = ("plan.why.budget", {})
    """The reason as a message key and its values, for the catalogues."""

    @property
    def mode(self) -> str:
        return MODE_FULL if self.kind == "full" else MODE_LIGHT


def choose_plan(schedule: ScheduleSettings, previous: Sequence[Any], now: dt.datetime) -> Plan:
    """Pure: light or full for a run starting ``now``, given this school's earlier records.

    ``previous`` are history records (anything with ``.plan`` and ``.when``), oldest first.
    """
    budget = int(schedule.budget_mb * MB)
    previous = [r for r in previous if r.plan in ("light", "full")]
    if schedule.full_every >= 1:
        # Runs since the last full one; a school with no full run yet starts with one (a baseline).
        since_full = schedule.full_every - 1
        for i, rec in enumerate(reversed(previous)):
            if rec.plan == "full":
                since_full = i
                break
        if since_full >= schedule.full_every - 1:
            n = schedule.full_every
            if n == 1:
                return Plan("full", "every run", budget, ("plan.why.every_run", {}))
            return Plan("full", f"every {n}{_ordinal(n)} run", budget, ("plan.why.every", {"n": n}))
    if schedule.full_window and in_range(schedule.full_window, now):
        today_full = any(r.plan == "full" and r.when.date() == now.date() and in_range(schedule.full_window, r.when) for r in previous)
        if not today_full:
            return Plan("full", f"first run in {schedule.full_window}", budget, ("plan.why.window", {"window": schedule.full_window}))
    return Plan("light", f"budget {budget / MB:g} MB", budget, ("plan.why.budget", {"mb": budget / MB}))


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def light_settings(p: ProbeSettings) -> ProbeSettings:
    """The site's probe tuning shortened for an unattended run (fewer streams, shorter tests)."""
    return replace(
        p,
        streams=min(p.streams, 2),
        duration_s=min(p.duration_s, 3.0),
        warmup_s=min(p.warmup_s, 0.5),
        latency_count=min(p.latency_count, 10),
        latency_interval_s=min(p.latency_interval_s, 0.1),
        latency_timeout_s=min(p.latency_timeout_s, 1.0),
        dns_queries=min(p.dns_queries, 3),
        dns_timeout_s=min(p.dns_timeout_s, 1.0),
    )


# ------------------------------------------------------------------------ capped engine


class ByteBudget:
    """Bytes a run may still move; every transfer takes its share before it asks for it."""

    def __init__(self, total: int) -> None:
        self.total = max(0, int(total))
        self._left = self.total
        self._lock = threading.Lock()

    def take(self, want: int) -> int:
        """Reserve up to ``want`` bytes; returns what was granted (0 when spent)."""
        with self._lock:
            got = max(0, min(int(want), self._left))
            self._left -= got
            return got

    @property
    def left(self) -> int:
        return self._left


_BLOCK = bytes(range(256)) * 256  # 64 KiB of upload payload, made once


class _CappedStream(threading.Thread):
    """One connection, one request of exactly ``nbytes`` (never more), timed from the first byte."""

    def __init__(self, base_url: str, direction: str, nbytes: int, stop: threading.Event, timeout_s: float) -> None:
        super().__init__(daemon=True, name="gnc-capped")
        self.base_url, self.direction, self.nbytes, self.stop, self.timeout_s = base_url, direction, nbytes, stop, timeout_s
        self.bytes = 0
        self.first_bytes = 0
        self.first_at: Optional[float] = None
        self.last_at: Optional[float] = None
        self.error: Optional[BaseException] = None

    def _count(self, n: int) -> None:
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at, self.first_bytes = now, n
        self.bytes += n
        self.last_at = now

    def run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)), trust_env=False) as client:
                if self.direction == "download":
                    with client.stream("GET", f"{self.base_url}/download?bytes={self.nbytes}") as resp:
                        resp.raise_for_status()
                        for chunk in resp.iter_raw(64 * 1024):
                            # A server that ignores ?bytes= still gets no more than the cap out of us.
                            self._count(min(len(chunk), self.nbytes - self.bytes))
                            if self.bytes >= self.nbytes or self.stop.is_set():
                                break
                else:
                    resp = client.post(f"{self.base_url}/upload", content=self._body(), headers={"Content-Length": str(self.nbytes)})
                    resp.raise_for_status()
                    self.last_at = time.perf_counter()
        except BaseException as exc:  # recorded; the other streams go on
            if not self.stop.is_set():
                self.error = exc

    def _body(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.nbytes:
            if self.stop.is_set():
                return  # the server sees a short body and drops the connection: fine, we stop
            piece = _BLOCK[: min(len(_BLOCK), self.nbytes - sent)]
            yield piece
            sent += len(piece)
            self._count(len(piece))


class CappedHttpEngine(ThroughputEngine):
    """HTTP transfers of bounded size against a measurement server's /download and /upload.

    Each test moves at most ``per_test_bytes`` (split over its streams), taken from a
    :class:`ByteBudget` shared by the whole run, and stops at the plan's duration or the stop
    event. Small transfers end inside TCP slow start on most lines, so their goodput is a
    lower bound that tracks *trends*; the full plan measures capacity.
    """

    name = LIGHT_ENGINE

    def __init__(self, budget: ByteBudget, per_test_bytes: int, interval_s: float = 0.1) -> None:
        self.budget = budget
        self.per_test_bytes = max(0, int(per_test_bytes))
        self.interval_s = interval_s

    def measure(self, target: Target, plan: ThroughputPlan, stop: threading.Event) -> BandwidthMeasurement:
        assert target.url, "the capped engine needs a measurement server URL"
        granted = self.budget.take(self.per_test_bytes)
        share = granted // max(1, plan.streams)
        local_stop = threading.Event()
        streams = [
            _CappedStream(target.url.rstrip("/"), plan.direction, share, local_stop, max(2.0, plan.duration_s + 2.0))
            for _ in range(plan.streams if share > 0 else 0)
        ]
        _, points = run_streams(streams, plan.duration_s, self.interval_s, stop, local_stop)
        errors = [s.error for s in streams if s.error is not None]
        err_text, err_kind = stream_errors(errors, len(streams))
        if not errors and not streams:
            err_kind, err_text = "budget", "the run's data budget is spent"
        # Goodput from the first byte to the last, each stream's first chunk excluded: connection
        # set-up and the request's round trip are not the line's throughput (core/goodput.py).
        return summarize(
            target,
            replace(plan, interval_s=self.interval_s),
            self.name,
            points,
            method=FIRST_BYTE_TO_LAST,
            spans=[Span(s.bytes, s.first_bytes, s.first_at, s.last_at) for s in streams],
            error=err_text,
            error_kind=err_kind,
        )


def light_tests(site: Site, streams: int) -> int:
    """Transfers the bandwidth probe makes at most: per server down and up, and one single-stream
    download when it runs several streams. An upper bound: the budget, not this, is the hard cap."""
    servers = sum(1 for t in site.targets(None) if t.url)
    return servers * (3 if streams > 1 else 2)


def light_probes(site: Site, budget: ByteBudget) -> tuple[Callable[[], Probe], ...]:
    """Latency and DNS as usual, bandwidth through the capped engine with the budget split per test."""
    per_test = budget.total // max(1, light_tests(site, light_settings(site.probes).streams))
    return (LatencyProbe, DnsProbe, lambda: BandwidthProbe(CappedHttpEngine(budget, per_test)))


def run_planned(
    site: Site,
    plan: Plan,
    *,
    host: Optional[dict[str, Any]] = None,
    progress: Optional[Progress] = None,
    stop: Optional[threading.Event] = None,
) -> RunResult:
    """Run one scheduled measurement with ``plan``; never raises for network trouble.

    A light run's capped transfers stay in the result as raw data (engine ``http-capped``) but
    are not judged against the classrooms' needs: a few MB cannot measure a line's capacity,
    so thresholds and triage see them as not measured and the result says why.
    """
    if plan.kind == "full":
        return replace(run(site, host=host, progress=progress, stop=stop), mode=MODE_FULL)
    budget = ByteBudget(int(plan.budget_bytes * TRANSFER_SHARE))
    light = replace(site, probes=light_settings(site.probes))
    result = run(light, host=host, progress=progress, stop=stop, probes=light_probes(light, budget))
    capped = result.measurements.bandwidth
    result = replace(result, mode=MODE_LIGHT)  # the light plan needs no bandwidth figure (thresholds.needs_for)
    if not capped:
        result = conclude(result, load_profiles(site))
    else:
        judged = conclude(replace(result, measurements=replace(result.measurements, bandwidth=())), load_profiles(site))
        note = Text("not_measured.light_plan", mb=round(budget.total / MB, 1)).about("bandwidth")
        result = replace(judged, measurements=result.measurements, not_measured=judged.not_measured + (note,))
    return replace(result, mode=MODE_LIGHT)


def with_cause(result: RunResult, cause: Optional[Cause]) -> RunResult:
    """The result with ``cause`` added (replacing one of the same id), causes by confidence."""
    if cause is None:
        return result
    causes = [c for c in result.causes if c.id != cause.id] + [cause]
    return replace(result, causes=tuple(sorted(causes, key=lambda c: -c.confidence)))


# ------------------------------------------------------------------------ splay and lock


def splay_delay(max_s: float, rng: Optional[random.Random] = None) -> float:
    """A start delay drawn uniformly from [0, max_s].

    Uniform, not exponential: cron or the timer already fixes the period, and the delay's job
    is to spread a board's schools evenly over the first ``max_s`` seconds of each slot. An
    exponential delay bunches starts near zero (the opposite) and has no upper bound, so it
    would sometimes run into the next slot and the time limit. (M-Lab's exponential
    *intervals* answer a different question: sampling a process without phase-locking to it.)
    """
    if max_s <= 0:
        return 0.0
    return (rng or random.SystemRandom()).uniform(0.0, float(max_s))


class RunLock:
    """An exclusive ``flock`` on a lock file for the whole run; the kernel drops it on any exit.

    The file is never deleted (deleting a locked file lets a third run lock a new inode while
    the second still waits on the old one). The holder writes its pid and start time into it so
    the run that finds it locked can say who holds it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            lock_fd(fd, wait=False)
        except OSError as exc:
            holder = ""
            try:
                holder = pread(fd, 200, 0).decode("utf-8", "replace").strip()
            except OSError:
                pass
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, errno.EDEADLK):
                raise LockHeld(str(self.path), holder) from None
            raise
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} since {stamp}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def sweep_temp_files(
    dirs_and_prefixes: Iterable[tuple[Path, str]], *, older_than_s: float = 3600.0, now: Optional[float] = None
) -> list[Path]:
    """Delete temp files a killed run left behind: ``.<prefix>*`` in each folder, older than an hour.

    Atomic writes go through ``.<name>.<random>`` in the target's folder; a SIGKILL between
    create and rename leaves one. Only names starting with ``.`` + the given prefix are touched,
    and only old ones, so a write in progress elsewhere is never removed.
    """
    now = time.time() if now is None else now
    removed = []
    for folder, prefix in dirs_and_prefixes:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if not e.name.startswith("." + prefix) or e.name.endswith(".lock") or not e.is_file(follow_symlinks=False):
                continue
            try:
                if now - e.stat(follow_symlinks=False).st_mtime > older_than_s:
                    os.unlink(e.path)
                    removed.append(Path(e.path))
            except OSError:
                pass
    return removed


# ------------------------------------------------------------------- cron and systemd

CRON_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
SYSTEMD_DAYS = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
DAY_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(text: str) -> tuple[str, ...]:
    """``"mon-fri"`` or ``"mon,wed,fri"`` -> day names; raises ValueError."""
    out: list[str] = []
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            if a not in DAY_ORDER or b not in DAY_ORDER or DAY_ORDER.index(b) < DAY_ORDER.index(a):
                raise ValueError(f"expected days like mon-fri or mon,wed,fri, got {text!r}")
            out.extend(DAY_ORDER[DAY_ORDER.index(a) : DAY_ORDER.index(b) + 1])
        elif part in DAY_ORDER:
            out.append(part)
        else:
            raise ValueError(f"expected days like mon-fri or mon,wed,fri, got {text!r}")
    return tuple(d for d in DAY_ORDER if d in out)


def _hour_span(window: str) -> tuple[int, int]:
    """First and last hour in which a run may start (calendars count whole hours: rounded outwards)."""
    start, end = parse_range(window)
    return start // 60, (end - 1) // 60


def _runs(days: Sequence[str]) -> list[list[str]]:
    """Consecutive runs of days, in week order."""
    runs: list[list[str]] = []
    for d in DAY_ORDER:
        if d in days:
            if runs and DAY_ORDER.index(runs[-1][-1]) == DAY_ORDER.index(d) - 1:
                runs[-1].append(d)
            else:
                runs.append([d])
    return runs


def _check_every(every_min: int) -> None:
    if every_min < 60 and 60 % every_min:
        raise ValueError(f"every {every_min} minutes does not divide an hour: use 5m, 10m, 15m, 20m, 30m or whole hours")
    if every_min >= 60 and every_min % 60:
        raise ValueError("intervals of an hour or more must be whole hours (1h, 2h ...)")


def cron_schedule(every_min: int, window: str, days: Sequence[str]) -> str:
    """The five cron time fields: ``*/15 7-16 * * 1-5``."""
    _check_every(every_min)
    h0, h1 = _hour_span(window)
    hours = f"{h0}-{h1}" if h1 > h0 else str(h0)
    if every_min < 60:
        minute = "*" if every_min == 1 else f"*/{every_min}"
    else:
        minute = "0"
        step = every_min // 60
        hours = f"{h0}-{h1}/{step}" if step > 1 and h1 > h0 else hours
    # cron counts Sunday as 0 and has no wrap-around range: group the day numbers themselves
    groups: list[list[int]] = []
    for n in sorted({CRON_DAYS[d] for d in days}):
        if groups and groups[-1][-1] == n - 1:
            groups[-1].append(n)
        else:
            groups.append([n])
    dow = ",".join(str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups)
    return f"{minute} {hours} * * {dow or '*'}"


def systemd_calendar(every_min: int, window: str, days: Sequence[str]) -> str:
    """A systemd ``OnCalendar=`` value: ``Mon..Fri *-*-* 07..16:00/15:00``."""
    _check_every(every_min)
    h0, h1 = _hour_span(window)
    dow = ",".join(SYSTEMD_DAYS[r[0]] if len(r) == 1 else f"{SYSTEMD_DAYS[r[0]]}..{SYSTEMD_DAYS[r[-1]]}" for r in _runs(days))
    if every_min < 60:
        hours = f"{h0:02d}..{h1:02d}" if h1 > h0 else f"{h0:02d}"
        clock = f"{hours}:00/{every_min}:00"
    else:
        clock = ",".join(f"{h:02d}" for h in range(h0, h1 + 1, every_min // 60)) + ":00:00"
    return f"{dow} *-*-* {clock}".strip()


def cron_quote(arg: str) -> str:
    """Shell-quote for a crontab line; ``%`` means newline to cron, so it is escaped."""
    return shlex.quote(arg).replace("%", "\\%")


def systemd_quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./:=@+," for c in arg):
        return arg.replace("%", "%%")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


CRON_TAG = "# giga-netcheck:"


def cron_line(command: Sequence[str], every_min: int, window: str, days: Sequence[str], school_id: str, log: Optional[str] = None) -> str:
    """One user-crontab line, tagged with the school id so an install can replace it later."""
    cmd = " ".join(cron_quote(a) for a in command)
    if log:
        cmd += f" >>{cron_quote(log)} 2>&1"
    return f"{cron_schedule(every_min, window, days)} {cmd} {CRON_TAG}{school_id}"


def merge_crontab(existing: str, line: str, school_id: str) -> str:
    """``existing`` with this school's earlier giga-netcheck line replaced by ``line`` (or added)."""
    tag = f"{CRON_TAG}{school_id}"
    kept = [x for x in existing.splitlines() if not x.rstrip().endswith(tag)]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept + [line]) + "\n"


def systemd_units(
    command: Sequence[str],
    every_min: int,
    window: str,
    days: Sequence[str],
    *,
    school_id: str,
    school_name: str,
    splay_s: float,
    time_limit_s: float,
    workdir: str,
) -> dict[str, str]:
    """``{"<name>.service": ..., "<name>.timer": ...}`` for a user or system unit folder."""
    name = unit_name(school_id)
    calendar = systemd_calendar(every_min, window, days)
    timeout = int(splay_s + time_limit_s + HARD_LIMIT_GRACE_S + 30)
    service = "\n".join(
        [
            "[Unit]",
            f"Description=giga-netcheck scheduled run for {school_name} ({school_id})",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"WorkingDirectory={systemd_quote(workdir)}",
            "ExecStart=" + " ".join(systemd_quote(a) for a in command),
            "# 1: a check failed, 4: another run held the lock. Both are findings or skips, not a",
            "# broken monitor; history and the Prometheus file carry them. 2, 3 and 5 fail the unit.",
            "SuccessExitStatus=1 4 6",
            f"TimeoutStartSec={timeout}",
            "Nice=10",
            "",
        ]
    )
    timer = "\n".join(
        [
            "[Unit]",
            f"Description=giga-netcheck every {every_min} min, {window} ({school_id})",
            "",
            "[Timer]",
            f"OnCalendar={calendar}",
            "AccuracySec=1s",
            "# The random start delay is the run's own --splay (taken after its lock), not RandomizedDelaySec.",
            f"Unit={name}.service",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def unit_name(school_id: str) -> str:
    return "giga-netcheck-" + (safe_name(school_id) or "site")


def safe_name(text: str) -> str:
    """Letters, digits, '-' and '_' only (as report names are made)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


__all__ = [
    "MB",
    "DEFAULT_SPLAY_S",
    "DEFAULT_TIME_LIMIT_S",
    "TRANSFER_SHARE",
    "HARD_LIMIT_GRACE_S",
    "MODE_LIGHT",
    "MODE_FULL",
    "LIGHT_ENGINE",
    "LockHeld",
    "Plan",
    "choose_plan",
    "light_settings",
    "ByteBudget",
    "CappedHttpEngine",
    "light_probes",
    "run_planned",
    "with_cause",
    "splay_delay",
    "RunLock",
    "sweep_temp_files",
    "parse_range",
    "in_range",
    "widened",
    "parse_every",
    "parse_days",
    "cron_schedule",
    "systemd_calendar",
    "cron_line",
    "merge_crontab",
    "systemd_units",
    "unit_name",
    "safe_name",
]
