"""history: the JSON Lines file (append, read, torn lines, retention), trends, peak congestion (pure)."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import random

import pytest

from giga_netcheck.core.models import (
    SCHEMA_VERSION,
    BandwidthMeasurement,
    Cause,
    DnsSeries,
    LatencySeries,
    LatencyStats,
    Measurements,
    RunResult,
    School,
)
from giga_netcheck.monitor import history as hist
from giga_netcheck.monitor.history import Lessons, Record, peak_congestion, record_of, trends

JST = dt.timezone(dt.timedelta(hours=9))


def rec(
    when: dt.datetime, down: float = 90.0, rtt: float = 12.0, *, plan: str = "light", status: str = "pass", school: str = "s1"
) -> Record:
    return Record(
        when=when,
        school=school,
        status=status,
        plan=plan,
        mode="scheduled",
        run_id="r",
        down_mbps={"internet": down},
        up_mbps={"internet": down / 3},
        rtt_p50_ms={"gateway": 1.0, "internet": rtt},
        loss_pct={"internet": 0.0},
        dns_p50_ms=8.0,
    )


def month(kind: str, seed: int = 7, days: int = 30) -> list[Record]:
    """A simulated month: runs every 15 min from 07:00 to 18:00 every day.

    kind: ``flat`` (noise only), ``dip`` (lesson hours on school days congested, worst 10-12),
    ``always`` (bad all day, every day), ``one-day`` (one bad school day), ``rtt`` (only RTT rises).
    """
    rng = random.Random(seed)
    start = dt.datetime(2025, 5, 5, tzinfo=JST)  # a Monday
    out = []
    bad_day = start.date() + dt.timedelta(days=2)
    for day in range(days):
        d = start + dt.timedelta(days=day)
        for minute in range(7 * 60, 18 * 60, 15):
            when = d.replace(hour=minute // 60, minute=minute % 60)
            lesson = when.weekday() < 5 and 8 * 60 + 30 <= minute < 15 * 60 + 30
            down, rtt = 90.0, 12.0
            if kind == "dip" and lesson:
                down, rtt = (30.0, 60.0) if 10 <= when.hour < 12 else (50.0, 40.0)
            elif kind == "always":
                down, rtt = 35.0, 40.0
            elif kind == "one-day" and lesson and when.date() == bad_day:
                down, rtt = 20.0, 60.0
            elif kind == "rtt" and lesson:
                rtt = 55.0
            out.append(rec(when, down * rng.uniform(0.8, 1.2), rtt * rng.uniform(0.8, 1.2)))
    return out


# ------------------------------------------------------------------ peak congestion


def test_a_month_with_a_lesson_hour_dip_yields_peak_congestion():
    cause = peak_congestion(month("dip"), Lessons("08:30-15:30", ("mon", "tue", "wed", "thu", "fri")))
    assert isinstance(cause, Cause)
    assert cause.id == "peak-congestion" and cause.segment == "uplink" and cause.advice == "advice.peak-congestion"
    assert 0.5 <= cause.confidence <= 0.95
    assert set(cause.rules) == {"history.peak-congestion.download_mbps", "history.peak-congestion.rtt_p50_ms"}
    ev = {e.metric: e for e in cause.evidence}
    lesson, other = ev["history.download_mbps.lesson_p50"], ev["history.download_mbps.other_p50"]
    assert lesson.value < 0.75 * other.value and lesson.unit == "Mbps" and lesson.target == "internet"
    assert "runs" in lesson.note and "08:30-15:30 mon-fri" in lesson.note
    assert ev["history.rtt_p50_ms.lesson_p50"].value > ev["history.rtt_p50_ms.other_p50"].value
    hours = ev["history.download_mbps.degraded_hours"].note
    assert "10:00" in hours and "11:00" in hours and "07:00" not in hours and "16:00" not in hours
    assert ev["history.download_mbps.degraded_days"].value >= 90  # every school day
    assert ev["history.download_mbps.runs"].value == len(month("dip"))
    assert "light runs" in ev["history.download_mbps.runs"].note
    # every note a reader sees carries its message key (reports say it in Japanese too); the
    # degraded hours are data
    assert {e.note_key for e in cause.evidence} == {
        "evidence.history.lesson_hours",
        "evidence.history.other_hours",
        "evidence.history.lesson_worse",
        None,
        "evidence.history.lesson_days",
        "evidence.history.span_plan",
        "evidence.history.span",
    }
    assert ev["history.download_mbps.runs"].note_args["plan"] == "light"


@pytest.mark.parametrize("kind", ["flat", "always", "one-day"])
def test_no_peak_congestion_without_a_lesson_hour_concentration(kind):
    assert peak_congestion(month(kind)) is None


@pytest.mark.parametrize("seed", range(5))
def test_flat_histories_never_claim_it_whatever_the_noise(seed):
    assert peak_congestion(month("flat", seed=seed)) is None


def test_rtt_alone_can_show_it():
    cause = peak_congestion(month("rtt"))
    assert cause is not None and cause.rules == ("history.peak-congestion.rtt_p50_ms",)


def test_too_little_history_is_not_evidence():
    assert peak_congestion(month("dip", days=2)) is None
    assert peak_congestion([]) is None


def test_only_lesson_hour_runs_give_no_baseline():
    recs = [r for r in month("dip") if r.when in Lessons()]
    assert peak_congestion(recs) is None


def test_light_and_full_transfers_are_not_mixed():
    # full runs (far higher figures) only in lesson hours would fake a lesson-hour *rise*; the
    # analysis uses the plan with most download figures, so a flat light history stays flat
    recs = month("flat")
    recs += [rec(r.when + dt.timedelta(minutes=1), 900.0, plan="full") for r in recs if r.when in Lessons() and r.when.minute == 0]
    assert peak_congestion(recs) is None


def test_lessons_membership():
    les = Lessons("08:30-15:30", ("mon", "tue", "wed", "thu", "fri"))
    monday = dt.datetime(2025, 5, 5, 8, 30, tzinfo=JST)
    assert monday in les
    assert monday.replace(hour=8, minute=29) not in les
    assert monday.replace(hour=15, minute=30) not in les
    assert monday + dt.timedelta(days=5) not in les  # Saturday
    assert les.label() == "08:30-15:30 mon-fri"
    assert Lessons(days=("mon", "wed")).label().endswith("mon,wed")


# ------------------------------------------------------------------------ trends


def test_trends_per_hour_and_weekday():
    t = trends(month("dip"))
    assert t.role == "internet" and t.plan == "light"
    hours = {b.key: b for b in t.hours}
    assert sorted(hours) == list(range(7, 18))
    assert hours[11].down_mbps_p50 < hours[7].down_mbps_p50 * 0.6
    assert hours[11].rtt_p50_ms > hours[7].rtt_p50_ms
    days = {b.key: b for b in t.weekdays}
    assert sorted(days) == list(range(7))
    assert days[5].down_mbps_p50 > days[1].down_mbps_p50  # Saturday has no lessons
    assert sum(b.runs for b in t.hours) == t.runs == len(month("dip"))


def test_trends_count_failed_runs():
    base = dt.datetime(2025, 5, 5, 9, 0, tzinfo=JST)
    t = trends([rec(base, status="fail"), rec(base, status="error"), rec(base, status="pass")])
    assert t.hours[0].failed == 2 and t.hours[0].runs == 3


# ---------------------------------------------------------------------- records


def _result() -> RunResult:
    lat = lambda tgt, role, p50, phase="idle": LatencySeries(
        tgt, role, "h", "icmp", phase, (p50,), LatencyStats(10, 9, 10.0, p50, p50, p50, p50, 0.1)
    )
    bw = lambda tgt, role, direction, streams, mbps: BandwidthMeasurement(
        tgt, role, "http://x", direction, streams, "http-capped", 1.0, 0.0, 0.1, mbps, None, None, 1000, ()
    )
    dns = lambda kind, p50: DnsSeries("system", "10.0.0.1", "a.example", kind, (p50,), ("NOERROR",), (), 0, p50, p50)
    m = Measurements(
        bandwidth=(
            bw("internet-1", "internet", "download", 2, 80.0),
            bw("internet-2", "internet", "download", 2, 60.0),
            bw("internet-1", "internet", "download", 1, 20.0),
            bw("internet-1", "internet", "upload", 2, 30.0),
        ),
        latency=(
            lat("gateway", "gateway", 1.5),
            lat("internet-1", "internet", 20.0),
            lat("internet-2", "internet", 35.0),
            lat("internet-1", "internet", 200.0, "download:internet-1"),
        ),
        dns=(dns("warm", 4.0), dns("warm", 6.0), dns("cold", 90.0)),
    )
    return RunResult(
        SCHEMA_VERSION,
        "run-1",
        "0",
        "2025-05-05T10:15:00+09:00",
        "2025-05-05T10:15:09+09:00",
        9.0,
        "fail",
        School("13-1", "S"),
        (),
        "default",
        None,
        "scheduled",
        {},
        (),
        m,
        (),
        causes=(Cause("dns-slow", "dns", 0.8, (), "advice.dns-slow", ()), Cause("bufferbloat", "lan", 0.3, (), "a", ())),
    )


def test_record_of_a_result_keeps_the_key_figures_per_role():
    r = record_of(_result(), report="reports/x.json")
    assert r.when == dt.datetime(2025, 5, 5, 10, 15, tzinfo=JST)
    assert (r.school, r.status, r.plan, r.mode) == ("13-1", "fail", "light", "scheduled")
    assert r.down_mbps == {"internet": 60.0}  # multi-stream, the lower of two servers
    assert r.up_mbps == {"internet": 30.0}
    assert r.rtt_p50_ms == {"gateway": 1.5, "internet": 35.0}  # idle only, the higher
    assert r.loss_pct == {"gateway": 10.0, "internet": 10.0}
    assert r.dns_p50_ms == 5.0  # median of the warm p50s
    assert r.causes == ("dns-slow",)  # claims only
    assert r.bytes_moved == 4000 and r.report == "reports/x.json"


def test_record_round_trips_as_one_compact_line():
    r = record_of(_result())
    line = r.to_json()
    assert "\n" not in line and len(line) < 600
    assert Record.from_json(line) == r
    doc = json.loads(line)
    assert {"v", "t", "school", "status", "plan", "down_mbps", "up_mbps", "rtt_p50_ms", "loss_pct", "dns_p50_ms", "causes"} <= set(doc)


@pytest.mark.parametrize(
    "line",
    [
        b"{",
        b"[]",
        b'{"v": 2, "t": "2025-05-05T10:00:00+09:00"}',
        b'{"v": 1}',
        b"\x00\x00\x00",
        b'{"v":1,"t":"not a time","school":"s","status":"pass"}',
    ],
)
def test_bad_lines_do_not_parse(line):
    with pytest.raises((ValueError, TypeError, KeyError)):
        Record.from_json(line)


# ----------------------------------------------------------------------- the file


def _t(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2025, 5, 5, hour, tzinfo=JST) + dt.timedelta(days=day)


def test_append_and_read(tmp_path):
    p = tmp_path / "h" / "history.jsonl"
    for i in range(3):
        hist.append(p, rec(_t(i)))
    got = hist.read(p)
    assert [r.when for r in got.records] == [_t(0), _t(1), _t(2)] and got.skipped == 0
    assert p.read_bytes().count(b"\n") == 3
    assert hist.read(tmp_path / "missing.jsonl").records == ()


def test_read_skips_a_torn_last_line_and_append_cuts_it(tmp_path):
    p = tmp_path / "history.jsonl"
    hist.append(p, rec(_t(0)))
    with open(p, "ab") as fh:
        fh.write(rec(_t(1)).to_json().encode()[:37])  # a writer died mid-line
    got = hist.read(p)
    assert len(got.records) == 1 and got.skipped == 1
    hist.append(p, rec(_t(2)))
    lines = p.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(x) for x in lines[:-1])
    assert [r.when for r in hist.read(p).records] == [_t(0), _t(2)]


def test_a_failed_write_leaves_complete_lines_only(tmp_path, monkeypatch):
    p = tmp_path / "history.jsonl"
    hist.append(p, rec(_t(0)))
    before = p.read_bytes()
    real_write = os.write

    def short_write(fd, data):  # the disk fills up part-way through the line
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(hist.os, "write", short_write)
    with pytest.raises(hist.HistoryError, match="cannot append"):
        hist.append(p, rec(_t(1)))
    assert p.read_bytes() == before

    def no_space(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hist.os, "write", no_space)
    with pytest.raises(hist.HistoryError, match="No space"):
        hist.append(p, rec(_t(1)))
    assert p.read_bytes() == before


def test_retention_by_age(tmp_path):
    p = tmp_path / "history.jsonl"
    for i in range(10):
        hist.append(p, rec(_t(i)))
    dropped = hist.retain(p, max_age_days=5, max_bytes=10**9, now=_t(9))
    assert dropped == 4
    assert [r.when for r in hist.read(p).records] == [_t(i) for i in range(4, 10)]
    assert hist.retain(p, max_age_days=5, max_bytes=10**9, now=_t(9)) == 0  # nothing more to do
    assert [x.name for x in tmp_path.iterdir()] == ["history.jsonl"]  # no temp file left


def test_retention_by_size_keeps_the_newest(tmp_path):
    p = tmp_path / "history.jsonl"
    for i in range(50):
        hist.append(p, rec(_t(0, 0) + dt.timedelta(minutes=15 * i)))
    size = p.stat().st_size
    dropped = hist.retain(p, max_age_days=3650, max_bytes=size // 2, now=_t(1))
    assert dropped > 25 and p.stat().st_size <= size // 2
    got = hist.read(p).records
    assert got[-1].when == _t(0, 0) + dt.timedelta(minutes=15 * 49) and got.__len__() == 50 - dropped
    mtime = p.stat().st_mtime_ns
    assert hist.retain(p, max_age_days=3650, max_bytes=size // 2, now=_t(1)) == 0  # under the cap: untouched
    assert p.stat().st_mtime_ns == mtime


def test_appends_from_many_processes_interleave_as_whole_lines(tmp_path):
    p = tmp_path / "history.jsonl"
    pids = []
    for k in range(4):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code, dropped = 1, 0
            try:
                for i in range(25):
                    hist.append(p, rec(_t(k, 8) + dt.timedelta(minutes=i)))
                    if i % 6 == 0 and k == 0:  # a size cut renames the file under the other writers
                        dropped += hist.retain(p, max_age_days=3650, max_bytes=3000, now=_t(9))
                (tmp_path / f"dropped-{k}").write_text(str(dropped))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    got = hist.read(p)
    dropped = int((tmp_path / "dropped-0").read_text())
    assert dropped > 0  # the renames happened
    assert len(got.records) == 100 - dropped and got.skipped == 0  # and no append was lost to them


def test_schools_and_filter(tmp_path):
    p = tmp_path / "history.jsonl"
    for i in range(3):
        hist.append(p, rec(_t(i), school="a"))
    hist.append(p, rec(_t(0), school="b"))
    assert hist.schools(hist.read(p).records) == [("a", 3), ("b", 1)]
    assert len(hist.read(p, school="b").records) == 1


def test_ranges():
    assert hist.parse_range("08:30-15:30") == (510, 930)
    assert hist.parse_range("00:00-24:00") == (0, 1440)
    for bad in ("15:30-08:30", "8-16", "08:30-08:30", "08:61-09:00"):
        with pytest.raises(ValueError):
            hist.parse_range(bad)


def test_without_pread_the_file_handling_still_works(tmp_path, monkeypatch):
    # Windows has no os.pread (nor fchmod before 3.13): the seek-and-read fallback must do
    monkeypatch.delattr(os, "pread")
    monkeypatch.delattr(os, "fchmod")
    p = tmp_path / "history.jsonl"
    for i in range(6):
        hist.append(p, rec(_t(i)))
    with open(p, "ab") as fh:
        fh.write(b'{"v":1,"t":')
    hist.append(p, rec(_t(6)))
    assert hist.retain(p, max_age_days=3, max_bytes=10**9, now=_t(6)) == 3
    got = hist.read(p)
    assert [r.when for r in got.records] == [_t(i) for i in range(3, 7)] and got.skipped == 0
