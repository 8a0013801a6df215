"""scheduled: plan choice, the byte-capped engine, splay, lock, temp sweep, cron and systemd text."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
import threading
import time
from dataclasses import replace

import pytest

from giga_netcheck.config.site import ProbeSettings, ScheduleSettings, load_site
from giga_netcheck.core.errors import ConfigError
from giga_netcheck.core.models import Cause, Target
from giga_netcheck.measure.engines import ThroughputPlan
from giga_netcheck.monitor import scheduled as sch
from tests.conftest import loopback_site
from tests.test_history import JST, _result, rec


def _at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 5, 5, hour, minute, tzinfo=JST) + dt.timedelta(days=day)


# -------------------------------------------------------------------------- the plan


def test_light_by_default():
    plan = sch.choose_plan(ScheduleSettings(), [rec(_at(0, 9))], _at(0, 10))
    assert (plan.kind, plan.mode, plan.budget_bytes) == ("light", "scheduled", 5_000_000)


@pytest.mark.parametrize(
    "plans, expect",
    [
        ([], "full"),  # the first run gives a baseline
        (["full"], "light"),
        (["full", "light"], "light"),
        (["full", "light", "light"], "light"),  # every 4th: full, light, light, light, full ...
        (["full", "light", "light", "light"], "full"),
        (["light", "light", "light"], "full"),
        (["full", "light", "light", "quick"], "light"),  # interactive runs do not count
        (["full", "light", "quick", "light", "light"], "full"),
    ],
)
def test_full_every_nth_run(plans, expect):
    previous = [rec(_at(0, 8, i), plan=p) for i, p in enumerate(plans)]
    assert sch.choose_plan(ScheduleSettings(full_every=4), previous, _at(0, 10)).kind == expect


def test_full_every_run():
    assert sch.choose_plan(ScheduleSettings(full_every=1), [rec(_at(0, 9), plan="full")], _at(0, 10)).reason == "every run"


def test_full_window_takes_the_first_run_in_it_each_day():
    s = ScheduleSettings(full_window="12:00-12:30")
    assert sch.choose_plan(s, [], _at(0, 11, 59)).kind == "light"
    assert sch.choose_plan(s, [], _at(0, 12, 0)).kind == "full"
    done_today = [rec(_at(0, 12, 5), plan="full")]
    assert sch.choose_plan(s, done_today, _at(0, 12, 20)).kind == "light"
    assert sch.choose_plan(s, done_today, _at(1, 12, 20)).kind == "full"  # a new day
    assert sch.choose_plan(s, [], _at(0, 12, 30)).kind == "light"


def test_light_settings_shorten_but_never_lengthen():
    light = sch.light_settings(ProbeSettings())
    assert (light.streams, light.duration_s, light.latency_count, light.dns_queries) == (2, 3.0, 10, 3)
    tiny = ProbeSettings(streams=1, duration_s=1.0, warmup_s=0.2, latency_count=3, dns_queries=1)
    assert sch.light_settings(tiny) == replace(tiny, latency_timeout_s=1.0, dns_timeout_s=1.0)


def test_with_cause_adds_and_sorts_by_confidence():
    r = _result()
    peak = Cause("peak-congestion", "uplink", 0.9, (), "advice.peak-congestion", ("history.peak-congestion.download_mbps",))
    out = sch.with_cause(r, peak)
    assert [c.id for c in out.causes] == ["peak-congestion", "dns-slow", "bufferbloat"]
    again = sch.with_cause(out, replace(peak, confidence=0.6))
    assert [c.id for c in again.causes] == ["dns-slow", "peak-congestion", "bufferbloat"]
    assert sch.with_cause(r, None) is r


# ------------------------------------------------------------------ the capped engine


def test_byte_budget_never_grants_more_than_it_has():
    b = sch.ByteBudget(1000)
    got = []
    threads = [threading.Thread(target=lambda: got.append(b.take(300))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(got) == 1000 and b.left == 0 and b.take(5) == 0


def _count_server_bytes(server) -> list[int]:
    moved = [0]
    real = server.server._log_transfer

    def counting(client, kind, nbytes, seconds, outcome):
        moved[0] += nbytes
        real(client, kind, nbytes, seconds, outcome)

    server.server._log_transfer = counting
    return moved


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_capped_engine_moves_exactly_its_share(server, direction):
    moved = _count_server_bytes(server)
    budget = sch.ByteBudget(3_000_000)
    engine = sch.CappedHttpEngine(budget, per_test_bytes=1_000_000)
    target = Target("internet", "internet", "127.0.0.1", server.url)
    m = engine.measure(target, ThroughputPlan(direction, 2, 5.0, 0.5), threading.Event())
    assert m.engine == "http-capped" and m.error is None
    assert m.bytes_total == 1_000_000 and m.goodput_mbps and m.goodput_mbps > 0
    deadline = time.monotonic() + 3
    while moved[0] < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert moved[0] == 1_000_000  # counted at the server: not a byte more
    assert budget.left == 2_000_000


def test_capped_engine_stops_when_the_budget_is_spent(server):
    moved = _count_server_bytes(server)
    budget = sch.ByteBudget(1_500_000)
    engine = sch.CappedHttpEngine(budget, per_test_bytes=1_000_000)
    target = Target("internet", "internet", "127.0.0.1", server.url)
    results = [engine.measure(target, ThroughputPlan("download", 2, 5.0, 0.5), threading.Event()) for _ in range(3)]
    assert [r.bytes_total for r in results] == [1_000_000, 500_000, 0]
    assert results[2].error_kind == "budget" and results[2].goodput_mbps is None
    time.sleep(0.2)
    assert moved[0] == 1_500_000


def test_capped_engine_honours_stop(server):
    target = Target("internet", "internet", "127.0.0.1", server.url)
    stop = threading.Event()
    stop.set()
    t0 = time.monotonic()
    m = sch.CappedHttpEngine(sch.ByteBudget(10**9), 10**9).measure(target, ThroughputPlan("download", 2, 30.0, 0.5), stop)
    assert time.monotonic() - t0 < 3 and m.bytes_total < 10**9


def test_light_probes_split_the_budget_over_the_tests(tmp_path, write_site):
    site = load_site(write_site(loopback_site("http://127.0.0.1:9")))
    assert sch.light_tests(site, 2) == 3  # down x2, up x2, down x1 to the one server
    two = replace(site, center="http://127.0.0.1:8")
    assert sch.light_tests(two, 2) == 6 and sch.light_tests(two, 1) == 4


# ------------------------------------------------------------------- splay and lock


def test_splay_is_uniform_and_bounded():
    rng = random.Random(3)
    xs = [sch.splay_delay(120, rng) for _ in range(4000)]
    assert 0 <= min(xs) and max(xs) <= 120
    quarters = [sum(1 for x in xs if q * 30 <= x < (q + 1) * 30) for q in range(4)]
    assert all(900 < n < 1100 for n in quarters)  # evenly spread, not bunched near zero
    assert sch.splay_delay(0) == 0.0


def test_lock_is_exclusive_and_says_who_holds_it(tmp_path):
    path = tmp_path / "h.jsonl.lock"
    with sch.RunLock(path):
        with pytest.raises(sch.LockHeld) as info:
            sch.RunLock(path).acquire()
        assert f"pid {os.getpid()}" in info.value.holder
    with sch.RunLock(path):  # released on exit
        pass
    assert path.exists()  # never deleted


def test_lock_is_dropped_when_the_holder_dies(tmp_path):
    path = tmp_path / "h.jsonl.lock"
    code = "import sys, time; from giga_netcheck.monitor.scheduled import RunLock; RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)"
    import sys

    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(sch.LockHeld):
            sch.RunLock(path).acquire()
        child.kill()
        child.wait(10)
        sch.RunLock(path).acquire().release()
    finally:
        if child.poll() is None:
            child.kill()


def test_sweep_removes_only_old_temp_files_with_our_prefixes(tmp_path):
    old = time.time() - 7200
    names = [
        ".s1-20250505-101500.json.a1b2c3d4",
        ".history.jsonl.x1y2.tmp",
        ".s1-new.json.zzzz",
        ".other",
        "s1-20250505.json",
        ".history.jsonl.lock",
    ]
    for n in names:
        (tmp_path / n).write_text("x")
        if n != ".s1-new.json.zzzz":
            os.utime(tmp_path / n, (old, old))
    removed = sch.sweep_temp_files([(tmp_path, "s1-"), (tmp_path, "history.jsonl.")])
    assert sorted(p.name for p in removed) == [".history.jsonl.x1y2.tmp", ".s1-20250505-101500.json.a1b2c3d4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(names) - {p.name for p in removed})


# ------------------------------------------------------------------ cron and systemd


def test_every_window_and_days_parse():
    assert sch.parse_every("15m") == 15 and sch.parse_every("2h") == 120
    assert sch.parse_days("mon-fri") == ("mon", "tue", "wed", "thu", "fri")
    assert sch.parse_days("fri,mon, wed") == ("mon", "wed", "fri")
    assert sch.widened("08:30-15:30") == "07:30-16:30" and sch.widened("00:30-23:50") == "00:00-24:00"
    for bad in ("0m", "15s", ""):
        with pytest.raises(ValueError):
            sch.parse_every(bad)
    with pytest.raises(ValueError):
        sch.parse_days("fri-mon")


@pytest.mark.parametrize(
    "every, window, days, cron, calendar",
    [
        (15, "07:30-16:30", ("mon", "tue", "wed", "thu", "fri"), "*/15 7-16 * * 1-5", "Mon..Fri *-*-* 07..16:00/15:00"),
        (10, "08:00-16:00", ("mon", "wed", "fri"), "*/10 8-15 * * 1,3,5", "Mon,Wed,Fri *-*-* 08..15:00/10:00"),
        (120, "07:00-17:00", ("sat", "sun"), "0 7-16/2 * * 0,6", "Sat..Sun *-*-* 07,09,11,13,15:00:00"),
        (30, "07:00-17:00", ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "*/30 7-16 * * 0-6", "Mon..Sun *-*-* 07..16:00/30:00"),
        (60, "09:00-10:00", ("mon",), "0 9 * * 1", "Mon *-*-* 09:00:00"),
    ],
)
def test_cron_and_systemd_calendars(every, window, days, cron, calendar):
    assert sch.cron_schedule(every, window, days) == cron
    assert sch.systemd_calendar(every, window, days) == calendar
    analyze = shutil.which("systemd-analyze")
    if analyze:
        check = subprocess.run([analyze, "calendar", calendar], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_uneven_intervals_are_refused():
    for every in (7, 90):
        with pytest.raises(ValueError):
            sch.cron_schedule(every, "08:00-16:00", ("mon",))


def test_cron_line_quotes_and_tags():
    line = sch.cron_line(
        ["/opt/gnc/bin/giga-netcheck", "run", "--site", "/srv/sites/a b%.yaml"],
        15,
        "08:00-16:00",
        ("mon", "tue", "wed", "thu", "fri"),
        "13-101",
        log="/srv/log.txt",
    )
    assert line.startswith("*/15 8-15 * * 1-5 /opt/gnc/bin/giga-netcheck run --site '/srv/sites/a b\\%.yaml'")
    assert line.endswith(">>/srv/log.txt 2>&1 # giga-netcheck:13-101")
    merged = sch.merge_crontab("MAILTO=it@example.org\n0 1 * * * backup\n*/5 * * * * old # giga-netcheck:13-101\n\n", line, "13-101")
    assert merged == f"MAILTO=it@example.org\n0 1 * * * backup\n{line}\n"
    assert sch.merge_crontab("", line, "13-101") == line + "\n"


def test_systemd_units():
    units = sch.systemd_units(
        ["/usr/bin/giga-netcheck", "run", "--site", "/srv/my site.yaml"],
        15,
        "07:30-16:30",
        ("mon", "tue", "wed", "thu", "fri"),
        school_id="13-101",
        school_name="Minato",
        splay_s=120,
        time_limit_s=240,
        workdir="/srv",
    )
    service, timer = units["giga-netcheck-13-101.service"], units["giga-netcheck-13-101.timer"]
    assert 'ExecStart=/usr/bin/giga-netcheck run --site "/srv/my site.yaml"' in service
    assert "Type=oneshot" in service and "SuccessExitStatus=1 4" in service and "TimeoutStartSec=405" in service
    assert "OnCalendar=Mon..Fri *-*-* 07..16:00/15:00" in timer and "Unit=giga-netcheck-13-101.service" in timer


# ----------------------------------------------------------------- site file keys


def test_schedule_section_of_the_site_file(write_site, tmp_path):
    site = loopback_site("http://127.0.0.1:9")
    site["schedule"] = {
        "every": "10m",
        "lesson_hours": "08:45-15:15",
        "lesson_days": ["mon", "tue"],
        "full_every": 12,
        "full_window": "12:00-12:30",
        "history": "hist/h.jsonl",
        "retention_days": 90,
        "retention_mb": 5,
        "budget_mb": 3,
        "splay_s": 60,
        "time_limit_s": 120,
    }
    s = load_site(write_site(site)).schedule
    assert (s.every, s.lesson_hours, s.lesson_days, s.full_every, s.full_window) == (
        "10m",
        "08:45-15:15",
        ("mon", "tue"),
        12,
        "12:00-12:30",
    )
    assert s.history == str(tmp_path / "hist" / "h.jsonl")  # relative to the site file
    assert (s.retention_days, s.retention_mb, s.budget_mb, s.splay_s, s.time_limit_s) == (90, 5.0, 3.0, 60.0, 120.0)
    assert load_site(write_site(loopback_site("http://127.0.0.1:9"))).schedule == ScheduleSettings()


@pytest.mark.parametrize(
    "schedule, key",
    [
        ({"lesson_hours": "8:30-15:30"}, "schedule.lesson_hours"),
        ({"window": "16:00-08:00"}, "schedule.window"),
        ({"every": "15 minutes"}, "schedule.every"),
        ({"lesson_days": ["monday"]}, "schedule.lesson_days[0]"),
        ({"full_everry": 3}, "schedule.full_everry"),
        ({"budget_mb": 0}, "schedule.budget_mb"),
    ],
)
def test_bad_schedule_keys_name_the_key(write_site, schedule, key):
    site = loopback_site("http://127.0.0.1:9")
    site["schedule"] = schedule
    with pytest.raises(ConfigError) as info:
        load_site(write_site(site))
    assert key in str(info.value)
