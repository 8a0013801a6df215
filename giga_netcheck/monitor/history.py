"""Run history: one JSON line per run, appended atomically; trends; the peak-congestion analysis.

The file is JSON Lines (docs/scheduled.md lists every key). Writing is built to survive a
crash, a SIGKILL or a full disk at any instant:

- :func:`append` takes an ``flock`` on the file, cuts a torn tail a crashed writer may have
  left (bytes after the last newline: never a complete record), then writes the whole line
  with *one* ``os.write`` on an ``O_APPEND`` descriptor and ``fsync``\\ s. A short write (disk
  full) is cut back off before the error is raised, so the file holds complete lines only.
- :func:`retain` drops old lines by age and size by writing a new file beside it and renaming
  it over the old one (under the same lock; writers that waited on the old inode notice and
  reopen).
- :func:`read` skips any line that does not parse, and says how many it skipped.

Everything after reading is pure: :func:`trends` (per hour of day and weekday) and
:func:`peak_congestion`, which returns the ``peak-congestion`` :class:`~giga_netcheck.core.models.Cause`
when degradation is concentrated in lesson hours.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from giga_netcheck.core.errors import NetcheckError
from giga_netcheck.core.files import lock_fd, pread
from giga_netcheck.core.i18n import Text
from giga_netcheck.core.models import Cause, Evidence, RunResult, claims
from giga_netcheck.core.results import fsync_dir, write_atomic
from giga_netcheck.core.stats import median

FORMAT_VERSION = 1
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLES_FARTHEST_FIRST = ("internet", "center", "gateway")
PLAN_OF_MODE = {"scheduled": "light", "scheduled-full": "full", "full": "full", "quick": "quick"}


class HistoryError(NetcheckError):
    """The history file cannot be written (disk full, permissions) or read."""


@dataclass(frozen=True)
class Record:
    """One run, compactly: when, which school, the verdict and the key figures per role."""

    when: dt.datetime
    """Start time, local to the machine that measured (with its UTC offset)."""
    school: str
    status: str
    """``pass``, ``warn``, ``fail`` or ``error``."""
    plan: str
    """``light`` (capped transfers), ``full``, or ``quick`` (an interactive ``--quick`` run)."""
    mode: str = ""
    run_id: str = ""
    duration_s: float = 0.0
    down_mbps: dict[str, float] = field(default_factory=dict)
    """Role -> multi-stream download goodput (the lowest over that role's servers)."""
    up_mbps: dict[str, float] = field(default_factory=dict)
    rtt_p50_ms: dict[str, float] = field(default_factory=dict)
    """Role -> idle RTT p50 (the highest over that role's targets)."""
    loss_pct: dict[str, float] = field(default_factory=dict)
    dns_p50_ms: Optional[float] = None
    """Median of the warm-query p50s over every resolver and name."""
    causes: tuple[str, ...] = ()
    """Ids of the causes the run claimed (confidence >= 0.5)."""
    bytes_moved: int = 0
    """Bytes the bandwidth tests moved (the data budget, transfers only)."""
    interrupted: bool = False
    note: Optional[str] = None
    """``time-limit`` when the run hit its limit, or another short word."""
    report: Optional[str] = None
    """Path of the full result kept in reports/ (failing runs), if any."""

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "t": self.when.isoformat(timespec="seconds"),
            "school": self.school,
            "status": self.status,
            "plan": self.plan,
            "mode": self.mode,
            "run": self.run_id,
            "dur_s": round(self.duration_s, 1),
            "down_mbps": _round(self.down_mbps),
            "up_mbps": _round(self.up_mbps),
            "rtt_p50_ms": _round(self.rtt_p50_ms),
            "loss_pct": _round(self.loss_pct),
            "dns_p50_ms": None if self.dns_p50_ms is None else round(self.dns_p50_ms, 2),
            "causes": list(self.causes),
            "bytes": self.bytes_moved,
        }
        if self.interrupted:
            doc["interrupted"] = True
        if self.note:
            doc["note"] = self.note
        if self.report:
            doc["report"] = self.report
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, line: str | bytes) -> Record:
        """Parse one line; raises ValueError (or TypeError/KeyError) for anything malformed."""
        d = json.loads(line)
        if not isinstance(d, dict) or not isinstance(d.get("v"), int) or d["v"] > FORMAT_VERSION:
            raise ValueError("not a history record of a known version")
        when = dt.datetime.fromisoformat(str(d["t"]))
        return cls(
            when=when,
            school=str(d["school"]),
            status=str(d["status"]),
            plan=str(d.get("plan", "full")),
            mode=str(d.get("mode", "")),
            run_id=str(d.get("run", "")),
            duration_s=float(d.get("dur_s", 0.0)),
            down_mbps=_nums(d.get("down_mbps")),
            up_mbps=_nums(d.get("up_mbps")),
            rtt_p50_ms=_nums(d.get("rtt_p50_ms")),
            loss_pct=_nums(d.get("loss_pct")),
            dns_p50_ms=None if d.get("dns_p50_ms") is None else float(d["dns_p50_ms"]),
            causes=tuple(str(c) for c in d.get("causes") or ()),
            bytes_moved=int(d.get("bytes", 0)),
            interrupted=bool(d.get("interrupted", False)),
            note=d.get("note"),
            report=d.get("report"),
        )


def _round(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in values.items()}


def _nums(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError("expected an object of numbers")
    return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def record_of(result: RunResult, *, report: Optional[str] = None, note: Optional[str] = None) -> Record:
    """Pure: the compact history record of one run result."""
    m = result.measurements
    down: dict[str, float] = {}
    up: dict[str, float] = {}
    for direction, into in (("download", down), ("upload", up)):
        found = [b for b in m.bandwidth if b.direction == direction and b.goodput_mbps is not None]
        multi = [b for b in found if b.streams > 1] or found  # capacity figure first, per-flow only if alone
        for b in multi:
            into[b.role] = min(into.get(b.role, b.goodput_mbps), b.goodput_mbps)
    rtt: dict[str, float] = {}
    loss: dict[str, float] = {}
    for s in m.latency:
        if s.phase != "idle":
            continue
        if s.stats.p50_ms is not None:
            rtt[s.role] = max(rtt.get(s.role, s.stats.p50_ms), s.stats.p50_ms)
        if s.stats.sent:
            loss[s.role] = max(loss.get(s.role, s.stats.loss_pct), s.stats.loss_pct)
    warm = [d.p50_ms for d in m.dns if d.kind == "warm" and d.p50_ms is not None]
    try:
        when = dt.datetime.fromisoformat(result.started_at)
    except ValueError:
        when = dt.datetime.now().astimezone()
    return Record(
        when=when,
        school=result.school.id,
        status=result.status,
        plan=PLAN_OF_MODE.get(result.mode, result.mode),
        mode=result.mode,
        run_id=result.run_id,
        duration_s=result.duration_s,
        down_mbps=down,
        up_mbps=up,
        rtt_p50_ms=rtt,
        loss_pct=loss,
        dns_p50_ms=median(warm),
        causes=tuple(c.id for c in claims(result.causes)),
        bytes_moved=sum(b.bytes_total for b in m.bandwidth),
        interrupted=result.interrupted,
        note=note,
        report=report,
    )


# ---------------------------------------------------------------------------- file I/O


def _open_locked(path: Path, flags: int) -> int:
    """Open ``path`` and hold an exclusive flock on it, on the inode the name points at *now*."""
    while True:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            lock_fd(fd)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass  # renamed away while we waited: open the new one
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _cut_torn_tail(fd: int) -> None:
    """Drop bytes after the last newline (a write a crash cut short; never a whole record)."""
    size = os.fstat(fd).st_size
    if size == 0 or pread(fd, 1, size - 1) == b"\n":
        return
    pos, step = size, 4096
    keep = 0
    while pos > 0:
        start = max(0, pos - step)
        chunk = pread(fd, pos - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            keep = start + i + 1
            break
        pos = start
    os.ftruncate(fd, keep)


def append(path: str | Path, record: Record) -> None:
    """Append one record as one line: locked, torn tail cut, one write, fsync. Raises HistoryError."""
    p = Path(path)
    line = (record.to_json() + "\n").encode("utf-8")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        created = not p.exists()
        fd = _open_locked(p, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    except OSError as exc:
        raise HistoryError(f"{p}: cannot open the history file: {exc.strerror or exc}") from None
    try:
        _cut_torn_tail(fd)
        before = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            try:  # leave complete lines only
                os.ftruncate(fd, before)
                os.fsync(fd)
            except OSError:
                pass
            raise HistoryError(f"{p}: cannot append to the history file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if created:
        fsync_dir(p.parent)


@dataclass(frozen=True)
class History:
    records: tuple[Record, ...]
    skipped: int = 0
    """Lines that did not parse (a torn last line, or damage)."""


def read(path: str | Path, school: Optional[str] = None) -> History:
    """Every record that parses, oldest first (by time); skipped lines are counted, not fatal."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return History(())
    except OSError as exc:
        raise HistoryError(f"{p}: cannot read the history file: {exc.strerror or exc}") from None
    records, skipped = parse_lines(data)
    if school is not None:
        records = [r for r in records if r.school == school]
    return History(tuple(records), skipped)


def parse_lines(data: bytes) -> tuple[list[Record], int]:
    records: list[Record] = []
    skipped = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            records.append(Record.from_json(raw))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            skipped += 1
    records.sort(key=lambda r: _ts(r.when))
    return records, skipped


def _ts(when: dt.datetime) -> float:
    return (when if when.tzinfo else when.astimezone()).timestamp()


def retain(path: str | Path, *, max_age_days: float, max_bytes: int, now: Optional[dt.datetime] = None) -> int:
    """Drop records older than ``max_age_days`` and the oldest beyond ``max_bytes``; returns how many.

    Only rewrites when something goes: the new file is written beside the old one and renamed
    over it. A size cut keeps 90% of ``max_bytes`` so the file is not rewritten on every run.
    """
    p = Path(path)
    if not p.exists():
        return 0
    now = now or dt.datetime.now().astimezone()
    cutoff = _ts(now) - max_age_days * 86400
    try:
        fd = _open_locked(p, os.O_RDWR)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise HistoryError(f"{p}: cannot open the history file: {exc.strerror or exc}") from None
    try:
        size = os.fstat(fd).st_size
        head = pread(fd, 4096, 0).split(b"\n", 1)[0]
        try:
            oldest_fresh = _ts(Record.from_json(head).when) >= cutoff
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            oldest_fresh = False
        if size <= max_bytes and oldest_fresh:
            return 0
        data = pread(fd, size, 0)
        lines = data.split(b"\n")
        if not data.endswith(b"\n"):
            lines = lines[:-1]  # a torn tail: not a record
        keep: list[bytes] = []
        for raw in lines:
            try:
                if _ts(Record.from_json(raw).when) >= cutoff:
                    keep.append(raw)
            except (ValueError, TypeError, KeyError, UnicodeDecodeError):
                continue
        total = sum(len(x) + 1 for x in keep)
        if total > max_bytes:
            target = int(max_bytes * 0.9)
            while keep and total > target:
                total -= len(keep.pop(0)) + 1
        dropped = sum(1 for x in lines if x.strip()) - len(keep)
        if dropped <= 0 and total == size:
            return 0
        try:
            _replace(p, b"".join(x + b"\n" for x in keep))
        except OSError as exc:
            raise HistoryError(f"{p}: cannot rewrite the history file for retention: {exc.strerror or exc}") from None
        return dropped
    finally:
        os.close(fd)


def _replace(p: Path, data: bytes) -> None:
    write_atomic(p, data)


# ------------------------------------------------------------------------ time ranges


def parse_range(text: str) -> tuple[int, int]:
    """``"08:30-15:30"`` -> minutes after midnight ``(510, 930)``; raises ValueError."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", text.strip())
    if not m:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= 24 * 60 and m1 < 60 and m2 < 60):
        raise ValueError(f"{text!r}: a range must end after it starts, within one day")
    return start, end


def in_range(text: str, when: dt.datetime) -> bool:
    start, end = parse_range(text)
    minute = when.hour * 60 + when.minute
    return start <= minute < end


# ------------------------------------------------------------------------------ trends


@dataclass(frozen=True)
class Bucket:
    """Runs that fell in one hour of the day (0-23) or one weekday (0 = Monday)."""

    key: int
    runs: int
    failed: int
    """Runs whose status was ``fail``, ``no-connectivity`` or ``error``."""
    down_mbps_p50: Optional[float]
    up_mbps_p50: Optional[float]
    rtt_p50_ms: Optional[float]
    dns_p50_ms: Optional[float]
    loss_pct_p50: Optional[float]


@dataclass(frozen=True)
class Trends:
    role: Optional[str]
    """The farthest role the figures are for (``internet`` before ``center`` before ``gateway``)."""
    plan: Optional[str]
    """Whose throughput the bandwidth columns use (light and full runs do not mix)."""
    hours: tuple[Bucket, ...]
    weekdays: tuple[Bucket, ...]
    first: Optional[dt.datetime] = None
    last: Optional[dt.datetime] = None
    runs: int = 0


def headline_role(records: Sequence[Record]) -> Optional[str]:
    """The farthest role that most records measured."""
    for role in ROLES_FARTHEST_FIRST:
        n = sum(1 for r in records if role in r.rtt_p50_ms or role in r.down_mbps)
        if n and n >= 0.5 * len(records):
            return role
    for role in ROLES_FARTHEST_FIRST:
        if any(role in r.rtt_p50_ms or role in r.down_mbps for r in records):
            return role
    return None


def throughput_plan(records: Sequence[Record], role: Optional[str]) -> Optional[str]:
    """The plan with the most download figures: light and full transfers are not comparable."""
    counts = Counter(r.plan for r in records if role in r.down_mbps)
    return counts.most_common(1)[0][0] if counts else None


def _bucket(key: int, recs: list[Record], role: Optional[str], plan: Optional[str]) -> Bucket:
    def vals(attr: str, only_plan: bool = False) -> list[float]:
        out = []
        for r in recs:
            if only_plan and r.plan != plan:
                continue
            v = getattr(r, attr).get(role) if role else None
            if v is not None:
                out.append(v)
        return out

    return Bucket(
        key=key,
        runs=len(recs),
        failed=sum(1 for r in recs if r.status in ("fail", "no-connectivity", "error")),
        down_mbps_p50=median(vals("down_mbps", True)),
        up_mbps_p50=median(vals("up_mbps", True)),
        rtt_p50_ms=median(vals("rtt_p50_ms")),
        dns_p50_ms=median([r.dns_p50_ms for r in recs if r.dns_p50_ms is not None]),
        loss_pct_p50=median(vals("loss_pct")),
    )


def trends(records: Sequence[Record]) -> Trends:
    """Pure: medians per hour of day and per weekday (local time of each run)."""
    role = headline_role(records)
    plan = throughput_plan(records, role)
    by_hour: dict[int, list[Record]] = {}
    by_day: dict[int, list[Record]] = {}
    for r in records:
        by_hour.setdefault(r.when.hour, []).append(r)
        by_day.setdefault(r.when.weekday(), []).append(r)
    return Trends(
        role=role,
        plan=plan,
        hours=tuple(_bucket(h, by_hour[h], role, plan) for h in sorted(by_hour)),
        weekdays=tuple(_bucket(d, by_day[d], role, plan) for d in sorted(by_day)),
        first=min((r.when for r in records), key=_ts, default=None),
        last=max((r.when for r in records), key=_ts, default=None),
        runs=len(records),
    )


# --------------------------------------------------------------------- peak congestion

MIN_RUNS = 12
"""Runs needed in lesson hours and in other hours before comparing them."""
MIN_LESSON_DAYS = 3
DOWN_RATIO = 0.75
"""Lesson-hour download median at most this share of the other hours' median."""
RTT_RATIO = 1.5
RTT_RISE_MS = 20.0
"""Lesson-hour RTT median at least 1.5x and 20 ms above the other hours' median."""
MIN_SUPERIORITY = 0.7
"""A random lesson-hour run is worse than a random other-hours run at least this often."""
MIN_DAY_SHARE = 0.5
"""The dip shows on at least this share of the lesson days (not one bad day)."""
MIN_HOUR_RUNS = 3


@dataclass(frozen=True)
class Lessons:
    """When lessons are: a daily time range on some weekdays."""

    hours: str = "08:30-15:30"
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")

    def __contains__(self, when: dt.datetime) -> bool:
        return WEEKDAYS[when.weekday()] in self.days and in_range(self.hours, when)

    def label(self) -> str:
        return f"{self.hours} {_days_label(self.days)}"


def _days_label(days: Sequence[str]) -> str:
    idx = sorted(WEEKDAYS.index(d) for d in days)
    if idx and idx == list(range(idx[0], idx[-1] + 1)) and len(idx) > 2:
        return f"{WEEKDAYS[idx[0]]}-{WEEKDAYS[idx[-1]]}"
    return ",".join(WEEKDAYS[i] for i in idx)


def _superiority(worse_side: list[float], other: list[float], lower_is_worse: bool) -> float:
    """P(a value from ``worse_side`` is worse than one from ``other``), ties counting half."""
    ys = sorted(other)
    total = 0.0
    for x in worse_side:
        below, upto = bisect_left(ys, x), bisect_right(ys, x)
        ties = upto - below
        worse = (len(ys) - upto) if lower_is_worse else below
        total += worse + ties / 2
    return total / (len(worse_side) * len(ys))


@dataclass(frozen=True)
class _Finding:
    metric: str
    unit: str
    confidence: float
    evidence: tuple[Evidence, ...]


def _analyse(
    points: list[tuple[Record, float]], lessons: Lessons, metric: str, unit: str, role: str, lower_is_worse: bool, plan: Optional[str]
) -> Optional[_Finding]:
    lesson = [(r, v) for r, v in points if r.when in lessons]
    other = [(r, v) for r, v in points if r.when not in lessons]
    lesson_days = {r.when.date() for r, _ in lesson}
    if len(lesson) < MIN_RUNS or len(other) < MIN_RUNS or len(lesson_days) < MIN_LESSON_DAYS:
        return None
    med_l = median([v for _, v in lesson])
    med_o = median([v for _, v in other])
    assert med_l is not None and med_o is not None

    def degraded(v: float) -> bool:
        if lower_is_worse:
            return v <= med_o * DOWN_RATIO
        return v >= max(med_o * RTT_RATIO, med_o + RTT_RISE_MS)

    if not degraded(med_l):
        return None
    sup = _superiority([v for _, v in lesson], [v for _, v in other], lower_is_worse)
    per_day: dict[dt.date, list[float]] = {}
    per_hour: dict[int, list[float]] = {}
    for r, v in lesson:
        per_day.setdefault(r.when.date(), []).append(v)
        per_hour.setdefault(r.when.hour, []).append(v)
    bad_days = sum(1 for vs in per_day.values() if degraded(median(vs) or 0.0))
    day_share = bad_days / len(per_day)
    hours = sorted(h for h, vs in per_hour.items() if len(vs) >= MIN_HOUR_RUNS and degraded(median(vs) or 0.0))
    if sup < MIN_SUPERIORITY or day_share < MIN_DAY_SHARE or not hours:
        return None
    severity = (1 - med_l / med_o) if lower_is_worse else (1 - med_o / med_l if med_l else 0.0)
    confidence = 0.5 + 0.25 * min(1.0, (sup - MIN_SUPERIORITY) / (1 - MIN_SUPERIORITY)) + 0.2 * min(1.0, severity / 0.6)
    if len(per_day) < 10:
        confidence = min(confidence, 0.7)  # under two school weeks: a claim, but a modest one
    first = min((r.when for r, _ in points), key=_ts).date()
    last = max((r.when for r, _ in points), key=_ts).date()
    ratio = med_l / med_o * 100 if med_o else None
    hour_list = ", ".join(f"{h:02d}:00" for h in hours)  # data: the degraded hours themselves
    span = (
        Text("evidence.history.span_plan", first=str(first), last=str(last), plan=plan)
        if plan
        else Text("evidence.history.span", first=str(first), last=str(last))
    )
    evidence = (
        Evidence(
            f"history.{metric}.lesson_p50",
            round(med_l, 2),
            unit,
            role,
            None,
            Text("evidence.history.lesson_hours", hours=lessons.label(), runs=len(lesson)),
        ),
        Evidence(f"history.{metric}.other_p50", round(med_o, 2), unit, role, None, Text("evidence.history.other_hours", runs=len(other))),
        Evidence(
            f"history.{metric}.lesson_vs_other",
            None if ratio is None else round(ratio, 1),
            "%",
            role,
            None,
            Text("evidence.history.lesson_worse", share=round(sup * 100)),
        ),
        Evidence(f"history.{metric}.degraded_hours", float(len(hours)), "hours", role, None, hour_list),
        Evidence(
            f"history.{metric}.degraded_days",
            round(day_share * 100, 1),
            "%",
            role,
            None,
            Text("evidence.history.lesson_days", bad=bad_days, days=len(per_day)),
        ),
        Evidence(f"history.{metric}.runs", float(len(points)), "runs", role, None, span),
    )
    return _Finding(metric, unit, round(max(0.5, min(0.95, confidence)), 2), evidence)


def peak_congestion(records: Sequence[Record], lessons: Lessons = Lessons()) -> Optional[Cause]:
    """Pure: the ``peak-congestion`` cause when a history shows degradation concentrated in lesson hours.

    Compares lesson-hour runs with the other runs (before and after school, weekends) on the
    farthest role's download (one plan only: light and full transfers differ) and idle RTT.
    It needs enough runs on both sides and several lesson days; the lesson-hour median must be
    clearly worse (download <= 75%, or RTT >= 1.5x and +20 ms), a random lesson run must be
    worse than a random other run at least 70% of the time, the dip must show on at least half
    the lesson days and in at least one lesson hour on its own. None otherwise.
    """
    role = next((x for x in ("internet", "center") if any(x in r.rtt_p50_ms or x in r.down_mbps for r in records)), None)
    if role is None:
        return None
    findings: list[_Finding] = []
    plan = throughput_plan(records, role)
    down = [(r, r.down_mbps[role]) for r in records if r.plan == plan and role in r.down_mbps]
    f = _analyse(down, lessons, "download_mbps", "Mbps", role, True, plan)
    if f:
        findings.append(f)
    rtt = [(r, r.rtt_p50_ms[role]) for r in records if role in r.rtt_p50_ms]
    f = _analyse(rtt, lessons, "rtt_p50_ms", "ms", role, False, None)
    if f:
        findings.append(f)
    if not findings:
        return None
    confidence = max(x.confidence for x in findings) + (0.05 if len(findings) > 1 else 0.0)
    evidence = [e for x in findings for e in x.evidence]
    return Cause(
        id="peak-congestion",
        segment="uplink",
        confidence=round(min(0.95, confidence), 2),
        evidence=tuple(evidence),
        advice="advice.peak-congestion",
        rules=tuple(f"history.peak-congestion.{x.metric}" for x in findings),
    )


def schools(records: Iterable[Record]) -> list[tuple[str, int]]:
    """School ids in the records, most records first."""
    return Counter(r.school for r in records).most_common()


__all__ = [
    "FORMAT_VERSION",
    "HistoryError",
    "parse_range",
    "in_range",
    "Record",
    "record_of",
    "append",
    "History",
    "read",
    "parse_lines",
    "retain",
    "Bucket",
    "Trends",
    "trends",
    "headline_role",
    "throughput_plan",
    "Lessons",
    "peak_congestion",
    "schools",
]
