"""Scheduled runs end to end on loopback: data budget, time limit, lock, SIGKILL, history, Prometheus,
and the ``schedule`` and ``history`` commands.

Bytes are counted two ways: at the measurement server (every byte a transfer moved), and, where
this runs as root with ``unshare``, from the loopback interface's counters in a private network
namespace, where nothing but the run's own traffic crosses ``lo``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from giga_netcheck.cli.main import app
from giga_netcheck.core.results import load as load_result
from giga_netcheck.monitor import history as hist
from giga_netcheck.monitor.scheduled import RunLock
from tests.conftest import loopback_site
from tests.test_cli import _env
from tests.test_history import month

REPO = Path(__file__).resolve().parent.parent
BUDGET = 5_000_000
runner = CliRunner()


def _popen(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "giga_netcheck", *args], cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run(args: list[str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "giga_netcheck", *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _scheduled(site: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--mode",
        "scheduled",
        "--site",
        str(site),
        "--out",
        str(tmp / "reports"),
        "--history",
        str(tmp / "history.jsonl"),
        "--prom",
        str(tmp / "prom" / "giga_netcheck.prom"),
        "--no-progress",
        "--lang",
        "en",
        "--splay",
        "0",
        *extra,
    ]


def _count_server_bytes(server) -> list[int]:
    moved = [0]
    real = server.server._log_transfer

    def counting(client, kind, nbytes, seconds, outcome):
        moved[0] += nbytes
        real(client, kind, nbytes, seconds, outcome)

    server.server._log_transfer = counting
    return moved


def _prom(path: Path) -> dict:
    parser = pytest.importorskip("prometheus_client.parser", reason="pip install prometheus-client (test extra)")
    return {f.name: f for f in parser.text_string_to_metric_families(path.read_text())}


# ----------------------------------------------------------------- budget and limit


def test_scheduled_run_stays_within_5_mb_and_its_time_limit(server, dns_server, write_site, tmp_path):
    moved = _count_server_bytes(server)
    site = loopback_site(server.url, dns_server.port)
    site["probes"]["bandwidth"] = {"duration_s": 7, "warmup_s": 1.5, "streams": 4}  # a full run's settings: capped here
    t0 = time.monotonic()
    proc = _run(_scheduled(write_site(site), tmp_path, "--time-limit", "30"), tmp_path)
    elapsed = time.monotonic() - t0
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert elapsed < 30
    time.sleep(0.2)
    assert 0 < moved[0] <= 0.8 * BUDGET  # the transfers' share of the budget, counted at the server
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["plan"] == "light" and doc["mode"] == "scheduled" and doc["school"] == "test-001"
    assert doc["bytes"] == moved[0] and doc["down_mbps"]["internet"] > 0 and "gateway" in doc["rtt_p50_ms"]
    assert "light plan" in proc.stdout and len(proc.stdout.splitlines()) <= 4  # one summary line for cron's log
    fams = _prom(tmp_path / "prom" / "giga_netcheck.prom")
    assert fams["giga_netcheck_full_plan"].samples[0].value == 0
    assert fams["giga_netcheck_transfer_bytes"].samples[0].value == moved[0]
    if doc["status"] in ("pass", "warn"):
        assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").glob("*.json"))


_NETNS_CHILD = textwrap.dedent("""
    import json, subprocess, sys, time
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    import yaml
    from giga_netcheck.server.app import ServerConfig, ServerThread
    from tests.conftest import loopback_site
    from tests.lab.dnsserver import DnsServer

    def lo():
        for line in open("/proc/net/dev"):
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                f = rest.split()
                return int(f[0]), int(f[8])

    tmp = sys.argv[1]
    with ServerThread(ServerConfig(host="127.0.0.1", port=0)) as s, \\
         DnsServer(host="127.0.0.1", port=0, records={"www.lab.example": "198.18.3.2"}) as d:
        site = loopback_site(s.url, d.port)
        site["probes"]["bandwidth"] = {"duration_s": 7, "warmup_s": 1.5, "streams": 4}
        open(f"{tmp}/site.yaml", "w").write(yaml.safe_dump(site))
        rx0, tx0 = lo()
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "giga_netcheck", "run", "--mode", "scheduled", "--splay", "0",
                            "--time-limit", "30", "--site", f"{tmp}/site.yaml", "--out", f"{tmp}/reports",
                            "--no-progress", "--lang", "en"], capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        time.sleep(0.3)
        rx1, tx1 = lo()
    print(json.dumps({"rc": p.returncode, "rx": rx1 - rx0, "tx": tx1 - tx0, "elapsed": elapsed,
                      "out": p.stdout[-2000:], "err": p.stderr[-2000:]}))
""")


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
    reason="needs root, unshare and ip to count bytes on a private loopback interface",
)
def test_scheduled_run_bytes_from_the_interface_counters(tmp_path):
    """Every byte on a private ``lo``: transfers, latency and DNS probes, HTTP, TCP/IP headers, ACKs."""
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", _NETNS_CHILD, str(tmp_path)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"unshare --net not permitted here: {proc.stderr.strip()[:200]}")
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["rc"] in (0, 1), doc
    # On loopback each packet is counted once sent and once received: tx is the bytes on the wire.
    print(f"\nscheduled run on a private lo: {doc['tx']} bytes in {doc['elapsed']:.1f} s")
    assert doc["tx"] == doc["rx"]
    assert 3_000_000 < doc["tx"] <= BUDGET
    assert doc["elapsed"] < 30


def test_time_limit_stops_the_run_keeps_the_partial_result_and_exits_5(server, write_site, tmp_path):
    site = loopback_site(server.url)
    site["probes"]["bandwidth"] = {"duration_s": 60, "warmup_s": 1, "streams": 2}
    site["schedule"] = {"full_every": 1}  # a full bandwidth run that would take minutes
    t0 = time.monotonic()
    proc = _run(_scheduled(write_site(site), tmp_path, "--time-limit", "4"), tmp_path)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 4 + 10
    assert "time limit of 4 s reached" in proc.stderr and "Traceback" not in proc.stderr
    (rec,) = hist.read(tmp_path / "history.jsonl").records
    assert rec.plan == "full" and rec.interrupted and rec.note == "time-limit"
    kept = load_result(rec.report)  # the partial result is kept in reports/
    assert kept.interrupted and kept.mode == "scheduled-full"
    assert kept.measurements.bandwidth and kept.measurements.bandwidth[0].bytes_total > 0


_HANGING_CHILD = textwrap.dedent("""
    import sys, threading
    import giga_netcheck.cli.schedule as cs
    cs.HARD_LIMIT_GRACE_S = 1.0

    def hang(*args, **kwargs):  # a probe that ignores the stop event
        threading.Event().wait()

    cs.run_planned = hang
    from giga_netcheck.cli.main import main
    sys.argv = ["giga-netcheck", *sys.argv[1:]]
    main()
""")


def test_hard_limit_ends_a_run_whose_probes_ignore_stop(write_site, tmp_path):
    site = write_site(loopback_site("http://127.0.0.1:9"))
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _HANGING_CHILD, *_scheduled(site, tmp_path, "--time-limit", "1")],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 5, proc.stderr
    assert time.monotonic() - t0 < 15
    assert "did not stop" in proc.stderr
    (rec,) = hist.read(tmp_path / "history.jsonl").records
    assert rec.status == "error" and rec.note == "time-limit"
    assert _prom(tmp_path / "prom" / "giga_netcheck.prom")["giga_netcheck_status"].samples[0].value == 3


# ---------------------------------------------------------------------------- lock


def test_a_run_that_finds_the_lock_held_exits_4_with_one_line(write_site, tmp_path):
    site = write_site(loopback_site("http://127.0.0.1:9"))
    with RunLock(tmp_path / "history.jsonl.lock"):
        proc = _run(_scheduled(site, tmp_path), tmp_path)
    assert proc.returncode == 4
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "holds the lock" in lines[0] and f"pid {os.getpid()}" in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "history.jsonl").exists() and not (tmp_path / "prom").exists()


def test_two_runs_started_at_once_one_runs_one_exits_with_the_lock_code(server, dns_server, write_site, tmp_path):
    site = loopback_site(server.url, dns_server.port)
    site["probes"]["bandwidth"] = {"duration_s": 3, "warmup_s": 0.5, "streams": 2}
    site["schedule"] = {"full_every": 1}  # about 10 s of bandwidth tests: the runs surely overlap
    path = write_site(site)
    procs = [_popen(_scheduled(path, tmp_path, "--time-limit", "30"), tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[1] == 4 and codes[0] in (0, 1), outs
    loser = outs[[p.returncode for p in procs].index(4)]
    assert loser[0] == "" and len([x for x in loser[1].splitlines() if x.strip()]) == 1
    assert len(hist.read(tmp_path / "history.jsonl").records) == 1


# --------------------------------------------------------------------------- SIGKILL


def test_sigkill_at_random_points_never_leaves_a_corrupt_history_line_or_report(server, dns_server, write_site, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    site = loopback_site(server.url, dns_server.port)
    site["targets"]["center"] = f"http://127.0.0.1:{closed}"  # a failing check: every run keeps its reports
    path = write_site(site)
    args = _scheduled(path, tmp_path)
    t0 = time.monotonic()
    first = _run(args, tmp_path)
    full = time.monotonic() - t0
    assert first.returncode == 1, first.stdout + first.stderr
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills = 30
    for _ in range(kills):
        p = _popen(args, tmp_path)
        time.sleep(rng.uniform(0.05, full * 1.1))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
    data = (tmp_path / "history.jsonl").read_bytes()
    complete, _, tail = data.rpartition(b"\n")
    for line in complete.split(b"\n"):
        hist.Record.from_json(line)  # every complete line parses (seed in the test id below)
    assert 1 <= len(complete.split(b"\n")) <= kills + 1, seed
    for f in (tmp_path / "reports").iterdir():
        if f.name.startswith("."):
            continue  # a temp file a kill left: never read, swept by a later run after an hour
        if f.suffix == ".json":
            load_result(f)
        elif f.suffix == ".html":
            assert f.read_text().rstrip().endswith("</html>"), (seed, f)
    prom = tmp_path / "prom" / "giga_netcheck.prom"
    if prom.exists():
        assert _prom(prom)
    # and the next run after all that is whole, and cuts any torn tail the kills left
    last = _run(args, tmp_path)
    assert last.returncode == 1
    again = hist.read(tmp_path / "history.jsonl")
    assert again.skipped == 0 and len(again.records) == len(complete.split(b"\n")) + 1, seed


# ------------------------------------------------------------- history in the run


def test_a_scheduled_run_adds_peak_congestion_from_its_history(server, dns_server, write_site, tmp_path):
    path = tmp_path / "history.jsonl"
    with open(path, "w") as fh:
        for r in month("dip"):
            fh.write(hist.Record(**{**r.__dict__, "school": "test-001"}).to_json() + "\n")
    site = loopback_site(server.url, dns_server.port)
    proc = _run(_scheduled(write_site(site), tmp_path, "--json", str(tmp_path / "r.json")), tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    peak = next(c for c in doc["causes"] if c["id"] == "peak-congestion")
    assert peak["segment"] == "uplink" and peak["confidence"] >= 0.5
    assert hist.read(path).records[-1].causes[:1] == ("peak-congestion",) or "peak-congestion" in hist.read(path).records[-1].causes
    fams = _prom(tmp_path / "prom" / "giga_netcheck.prom")
    assert any(s.labels["cause"] == "peak-congestion" for s in fams["giga_netcheck_cause_confidence"].samples)


def test_an_interactive_run_can_append_to_a_history_too(server, dns_server, write_site, tmp_path):
    site = write_site(loopback_site(server.url, dns_server.port))
    proc = _run(
        [
            "run",
            "--site",
            str(site),
            "--mode",
            "quick",
            "--out",
            str(tmp_path / "r"),
            "--history",
            str(tmp_path / "h.jsonl"),
            "--no-progress",
            "--lang",
            "en",
        ],
        tmp_path,
    )
    assert proc.returncode in (0, 1), proc.stderr
    (rec,) = hist.read(tmp_path / "h.jsonl").records
    assert rec.plan == "quick" and rec.mode == "quick"
    assert list((tmp_path / "r").glob("*.json"))  # interactive runs always keep their reports
    assert not (tmp_path / "h.jsonl.lock").exists()  # and take no lock


def test_quick_and_another_mode_contradict(write_site, tmp_path):
    site = write_site(loopback_site("http://127.0.0.1:9"))
    proc = _run(["run", "--site", str(site), "--quick", "--mode", "scheduled", "--no-progress", "--lang", "en"], tmp_path)
    assert proc.returncode == 2 and "--quick" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------ schedule


def test_schedule_prints_a_crontab_line(write_site, tmp_path):
    site = loopback_site("http://127.0.0.1:9")
    site["schedule"] = {"lesson_hours": "08:30-15:30", "splay_s": 90}
    path = write_site(site)
    res = runner.invoke(app, ["schedule", "--site", str(path)])
    assert res.exit_code == 0, res.output
    line = res.stdout.strip()
    assert line.startswith("*/15 7-16 * * 1-5 ")  # the lesson hours widened by an hour each side
    assert "run --mode scheduled --site" in line and str(path.resolve()) in line and "--splay 90" in line
    assert line.endswith("# giga-netcheck:test-001")
    res = runner.invoke(app, ["schedule", "--site", str(path), "--every", "30m", "--window", "08:00-12:00", "--days", "mon,wed"])
    assert res.stdout.startswith("*/30 8-11 * * 1,3 ")


def test_schedule_systemd_and_install_to_tmp_paths(write_site, tmp_path):
    path = write_site(loopback_site("http://127.0.0.1:9"))
    res = runner.invoke(app, ["schedule", "--site", str(path), "--systemd"])
    assert res.exit_code == 0 and "[Timer]" in res.stdout and "OnCalendar=Mon..Fri *-*-* 07..16:00/15:00" in res.stdout
    units = tmp_path / "units"
    res = runner.invoke(app, ["schedule", "--site", str(path), "--systemd", "--install", "--to", str(units)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in units.iterdir()) == ["giga-netcheck-test-001.service", "giga-netcheck-test-001.timer"]
    assert "systemctl --user enable --now giga-netcheck-test-001.timer" in res.stdout
    crontab = tmp_path / "crontab.txt"
    crontab.write_text("MAILTO=it@example.org\n*/5 * * * * old # giga-netcheck:test-001\n")
    for _ in range(2):  # installing twice replaces, never duplicates
        res = runner.invoke(app, ["schedule", "--site", str(path), "--install", "--to", str(crontab)])
        assert res.exit_code == 0, res.output
    lines = crontab.read_text().splitlines()
    assert lines[0] == "MAILTO=it@example.org" and len(lines) == 2 and "run --mode scheduled" in lines[1]


def test_schedule_warns_when_runs_would_overlap_and_refuses_bad_intervals(write_site):
    site = loopback_site("http://127.0.0.1:9")
    site["schedule"] = {"splay_s": 200, "time_limit_s": 300}
    path = write_site(site)
    res = runner.invoke(app, ["schedule", "--site", str(path), "--every", "5m"])
    assert res.exit_code == 0 and "warning" in res.stderr
    res = runner.invoke(app, ["schedule", "--site", str(path), "--every", "7m"])
    assert res.exit_code == 2 and "divide an hour" in res.stderr


# ------------------------------------------------------------------------- history


def _month_file(tmp_path: Path, kind: str = "dip") -> Path:
    p = tmp_path / "history.jsonl"
    with open(p, "w") as fh:
        for r in month(kind):
            fh.write(r.to_json() + "\n")
        fh.write('{"v":1,"t":"2025-06-0')  # a torn last line
    return p


def test_history_shows_trends_and_the_peak_congestion_cause(tmp_path):
    p = _month_file(tmp_path)
    res = runner.invoke(app, ["history", str(p), "--lang", "en", "--html", str(tmp_path / "h.html")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "By hour of day" in out and "By weekday" in out and "11:00" in out and "Sat" in out
    assert "1 lines could not be read" in out
    assert "peak-congestion" in out and "history.download_mbps.lesson_p50" in out
    page = (tmp_path / "h.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "peak-congestion" in page and page.rstrip().endswith("</html>")


def test_history_of_a_flat_month_names_no_cause_and_speaks_japanese(tmp_path):
    p = _month_file(tmp_path, "flat")
    res = runner.invoke(app, ["history", str(p), "--lang", "ja"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "時間帯別" in res.stdout and "授業時間帯に集中した品質低下は見られません" in res.stdout
    assert "peak-congestion" not in res.stdout


def test_history_lesson_hours_from_options_and_missing_file(tmp_path):
    p = _month_file(tmp_path)
    res = runner.invoke(app, ["history", str(p), "--lesson-hours", "16:00-18:00", "--lesson-days", "sat-sun"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "peak-congestion" not in res.stdout
    res = runner.invoke(app, ["history", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["history", str(p), "--lesson-hours", "late"])
    assert res.exit_code == 2
