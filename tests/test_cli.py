"""The CLI end to end on loopback: exit codes, reports, bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from giga_netcheck.cli.main import app
from tests.conftest import clean_env, loopback_site
from tests.fakes import FakeServer
from tests.lab.dnsserver import DnsServer

runner = CliRunner()


def _env() -> dict[str, str]:
    env = clean_env()
    env["COLUMNS"] = "200"
    return env


def _run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "giga_netcheck", *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_run_on_loopback_writes_reports_and_exits_by_status(server, dns_server, write_site, tmp_path):
    site = write_site(loopback_site(server.url, dns_server.port))
    proc = _run(
        ["run", "--site", str(site), "--out", str(tmp_path / "r"), "--json", str(tmp_path / "res.json"), "--no-progress", "--lang", "en"],
        tmp_path,
    )
    doc = json.loads((tmp_path / "res.json").read_text())
    assert proc.returncode == {"pass": 0, "warn": 0, "fail": 1}[doc["status"]], proc.stdout + proc.stderr
    assert doc["schema_version"] == 1
    assert {b["direction"] for b in doc["measurements"]["bandwidth"]} == {"download", "upload"}
    assert any(s["phase"].startswith("download") for s in doc["measurements"]["latency"])  # loaded latency
    assert doc["measurements"]["dns"] and doc["measurements"]["dns"][0]["p50_ms"] is not None
    rooms = {c["classroom"]: c["threshold"] for c in doc["checks"] if c["id"] == "classroom.bandwidth.down"}
    assert rooms == {"5-1": 24.5, "PC room": 80.0}  # default 0.7 x 35, video-lesson 2.0 x 40
    written = sorted(p.suffix for p in (tmp_path / "r").iterdir())
    assert written == [".html", ".json"]
    assert "Report written to" in proc.stdout


@pytest.mark.parametrize(
    "content,needle",
    [
        ("school: {id: x\n  name: [", "line"),
        ("classrooms:\n  - {name: a, devices: 3}\n  - {name: b, devices: thirty}\n", "classrooms[1].devices"),
        ("clasrooms: []\n", "did you mean 'classrooms'"),
        ("targets: {internet: ['ftp://x']}\n", "targets.internet[0]"),
    ],
)
def test_bad_site_file_is_one_line_naming_file_and_key(tmp_path, content, needle):
    site = tmp_path / "broken-site.yaml"
    site.write_text(content)
    proc = _run(["run", "--site", str(site), "--no-progress", "--lang", "en"], tmp_path)
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert "broken-site.yaml" in line and needle in line


def test_missing_site_file(tmp_path):
    proc = _run(["run", "--site", str(tmp_path / "nope.yaml"), "--no-progress"], tmp_path)
    assert proc.returncode == 2
    assert "nope.yaml" in _one_line_error(proc)


def test_unknown_profile_is_a_usage_error(server, write_site, tmp_path):
    site = write_site(loopback_site(server.url, profile="vidoe-lesson"))
    proc = _run(["run", "--site", str(site), "--no-progress", "--lang", "en"], tmp_path)
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert "vidoe-lesson" in line and "video-lesson" in line  # names it and hints


def test_non_measurement_and_unreachable_targets_are_recorded(write_site, tmp_path):
    import socket as s

    with s.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with FakeServer("not-ours") as fake, FakeServer("garbage") as junk:
        site = loopback_site(fake.url)
        site["targets"]["center"] = junk.url
        site["targets"]["internet"] = [fake.url, f"http://127.0.0.1:{closed}"]
        proc = _run(
            [
                "run",
                "--site",
                str(write_site(site)),
                "--json",
                str(tmp_path / "r.json"),
                "--out",
                str(tmp_path),
                "--no-progress",
                "--lang",
                "en",
            ],
            tmp_path,
        )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    failed = {p["probe"]: p["reason_kind"] for p in doc["probes"] if p["probe"].startswith("identify:")}
    assert failed["identify:internet-1"] == "not-measurement-server"
    assert failed["identify:internet-2"] == "refused"
    assert failed["identify:center"] in ("not-measurement-server", "protocol", "reset")
    server_checks = {c["id"]: c["status"] for c in doc["checks"] if c["id"].startswith("path.server.")}
    assert server_checks == {"path.server.center": "fail", "path.server.internet-1": "fail", "path.server.internet-2": "fail"}
    assert any(p["probe"] == "bandwidth" and p["status"] == "skipped" for p in doc["probes"])
    assert "Traceback" not in proc.stderr


def test_dns_timeouts_fail_the_check_and_name_the_cause(server, write_site, tmp_path):
    with DnsServer(host="127.0.0.1", port=0, records={"www.lab.example": "198.18.3.2"}, timeout_rate=1.0) as dead:
        site = loopback_site(server.url, dead.port)
        site["probes"]["bandwidth"] = {"enabled": False}
        proc = _run(
            [
                "run",
                "--site",
                str(write_site(site)),
                "--json",
                str(tmp_path / "r.json"),
                "--out",
                str(tmp_path),
                "--no-progress",
                "--lang",
                "en",
            ],
            tmp_path,
        )
    assert proc.returncode == 1
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {c["id"]: c["status"] for c in doc["checks"] if c["classroom"] == "5-1"}["classroom.dns.timeouts"] == "fail"
    assert doc["causes"][0]["id"] == "dns-failure" and doc["causes"][0]["confidence"] >= 0.5


def test_nothing_measured_exits_3(write_site, tmp_path):
    with DnsServer(host="127.0.0.1", port=0, timeout_rate=1.0) as dead, FakeServer("garbage") as junk:
        site = loopback_site(junk.url, dead.port)
        site["probes"]["latency"]["method"] = "udp-echo"  # the gateway runs no echo: nothing answers
        proc = _run(["run", "--site", str(write_site(site)), "--out", str(tmp_path), "--no-progress", "--lang", "en"], tmp_path)
    assert proc.returncode == 3, proc.stdout
    assert proc.stdout.startswith("NO CONNECTIVITY: nothing answered")  # status no-connectivity (was "error"), issue 15


def test_ctrl_c_keeps_what_was_measured(server, dns_server, write_site, tmp_path):
    site = loopback_site(server.url, dns_server.port)
    site["probes"]["bandwidth"] = {"duration_s": 60, "warmup_s": 1, "streams": 2}
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "giga_netcheck",
            "run",
            "--site",
            str(write_site(site)),
            "--json",
            str(out),
            "--out",
            str(tmp_path),
            "--no-progress",
            "--lang",
            "en",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once the first (60 s) download is well under way: latency and DNS are done by
    # then. Waiting on the server's byte count, not a fixed sleep, keeps this true on a slow host.
    deadline = time.monotonic() + 60
    while server.server.bytes_sent < 32 * 1024 * 1024 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    stdout, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5.0
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True
    assert any(s["phase"] == "idle" and s["stats"]["received"] > 0 for s in doc["measurements"]["latency"])
    assert doc["measurements"]["bandwidth"] and doc["measurements"]["bandwidth"][0]["bytes_total"] > 0
    assert doc["measurements"]["bandwidth"][0]["duration_s"] < 30


def test_report_rerenders_a_saved_result_in_both_languages(server, dns_server, write_site, tmp_path):
    site = write_site(loopback_site(server.url, dns_server.port))
    _run(["run", "--site", str(site), "--json", str(tmp_path / "r.json"), "--out", str(tmp_path), "--quick", "--no-progress"], tmp_path)
    ja = runner.invoke(app, ["report", str(tmp_path / "r.json"), "--format", "md", "--lang", "ja"])
    assert "推定原因" in ja.stdout and "教室に必要な下り帯域" in ja.stdout
    en = runner.invoke(app, ["report", str(tmp_path / "r.json"), "--format", "md", "--lang", "en"])
    assert "Likely causes" in en.stdout
    assert ja.exit_code == en.exit_code and ja.exit_code in (0, 1)


def test_report_refuses_newer_schema(tmp_path):
    p = tmp_path / "future.json"
    p.write_text(json.dumps({"schema_version": 99}))
    proc = _run(["report", str(p)], tmp_path)
    assert proc.returncode == 2
    assert "newer" in _one_line_error(proc)


def test_every_command_and_option_is_documented():
    click_app = typer.main.get_command(app)
    for name, cmd in click_app.commands.items():
        assert cmd.help and len(cmd.help) > 20, f"command {name} lacks help"
        for param in cmd.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{name} {param.name} lacks help"


@pytest.mark.skipif(os.geteuid() != 0 or not __import__("shutil").which("setpriv"), reason="needs root and setpriv to drop CAP_NET_RAW")
def test_without_raw_socket_permission_the_run_falls_back_and_labels_it(server, dns_server, write_site, tmp_path):
    site = loopback_site(server.url, dns_server.port)
    site["probes"]["bandwidth"] = {"enabled": False}
    out = tmp_path / "r.json"
    cmd = [
        "setpriv",
        "--bounding-set",
        "-net_raw",
        sys.executable,
        "-m",
        "giga_netcheck",
        "run",
        "--site",
        str(write_site(site)),
        "--json",
        str(out),
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr
    doc = json.loads(out.read_text())
    methods = {s["target"]: s["method"] for s in doc["measurements"]["latency"] if s["phase"] == "idle"}
    assert methods == {"gateway": "tcp-connect", "internet": "udp-echo"}
    assert all(s["stats"]["received"] > 0 for s in doc["measurements"]["latency"])


def test_run_takes_a_profiles_dir_from_the_command_line(server, dns_server, write_site, tmp_path):
    mine = tmp_path / "my-profiles"
    mine.mkdir()
    (mine / "tight.yaml").write_text("name: tight\nextends: default\nclassroom:\n  down_mbps_per_device: {value: 100000, source: test}\n")
    site = loopback_site(server.url, dns_server.port, profile="tight")
    site["classrooms"] = [{"name": "5-1", "devices": 35}]
    site["probes"]["bandwidth"] = {"duration_s": 1.0, "warmup_s": 0.3, "streams": 2}
    proc = _run(
        [
            "run",
            "--site",
            str(write_site(site)),
            "--profiles-dir",
            str(mine),
            "--json",
            str(tmp_path / "r.json"),
            "--out",
            str(tmp_path),
            "--no-progress",
            "--lang",
            "en",
        ],
        tmp_path,
    )
    assert proc.returncode == 1, proc.stderr  # 3.5 Tbit/s for one classroom: the check fails
    doc = json.loads((tmp_path / "r.json").read_text())
    down = next(c for c in doc["checks"] if c["id"] == "classroom.bandwidth.down")
    assert down["threshold"] == 3_500_000 and down["status"] == "fail"
    proc = _run(["run", "--site", str(write_site(site)), "--no-progress"], tmp_path)
    assert proc.returncode == 2 and "tight" in proc.stderr  # without the folder the profile is unknown
