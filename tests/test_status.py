"""Honest status (issue 15 item 3): a run never passes on what it did not measure.

Each test here failed before the fix: a run without bandwidth, latency or DNS figures, or one
stopped with Ctrl-C, said ``pass``; a run where nothing answered said ``error`` (or ``fail``
when a local DNS stub answered SERVFAIL); ``incomplete`` had no exit code of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from giga_netcheck.cli.common import Exit
from giga_netcheck.cli.run import _exit_code
from giga_netcheck.config.profiles import load_profile
from giga_netcheck.config.site import ProbeSettings, Site
from giga_netcheck.core.i18n import Messages, Text
from giga_netcheck.core.models import Classroom, ProbeRecord, School
from giga_netcheck.measure.runner import conclude, run
from tests import factories as f
from tests.conftest import clean_env

PROFILES = {n: load_profile(n) for n in ("default", "video-lesson")}
OK_PROBES = (ProbeRecord("latency", "ok"), ProbeRecord("dns", "ok"), ProbeRecord("bandwidth", "ok"))


def healthy(**over):
    m = over.pop("measurements", f.healthy_measurements())
    fields = dict(probes=OK_PROBES, not_measured=(), not_measured_messages=(), checks=(), causes=())
    return f.run_result(m, **{**fields, **over})


def test_the_healthy_fixture_passes():
    # the control: with every need measured the same result passes, so the cases below fail for what they drop
    r = conclude(healthy(), PROFILES)
    assert r.status == "pass" and r.missing == ()


@pytest.mark.parametrize(
    "need, probe, drop",
    [
        ("bandwidth", ProbeRecord("bandwidth", "skipped", Text("reason.no_server")), lambda m: replace(m, bandwidth=())),
        ("latency", ProbeRecord("latency", "failed", Text("reason.no_target")), lambda m: replace(m, latency=())),
        ("dns", ProbeRecord("dns", "skipped", Text("reason.no_resolver")), lambda m: replace(m, dns=())),
    ],
)
def test_a_need_not_measured_makes_the_run_incomplete_with_why(need, probe, drop):
    probes = tuple(p for p in OK_PROBES if p.probe != probe.probe) + (probe,)
    r = conclude(healthy(measurements=drop(f.healthy_measurements()), probes=probes), PROFILES)
    assert r.status == "incomplete"
    assert {n.subject for n in r.missing} == {need}
    assert [n.key for n in r.missing] == [probe.reason_key]  # the why is the probe's own reason


def test_missing_names_every_server_that_did_not_identify():
    probes = OK_PROBES[:2] + (
        ProbeRecord("identify:internet", "failed", "ConnectError: refused", "refused"),
        ProbeRecord("bandwidth", "skipped", Text("reason.no_server")),
    )
    r = conclude(healthy(measurements=replace(f.healthy_measurements(), bandwidth=()), probes=probes), PROFILES)
    assert r.status == "fail"  # path.server.internet: a URL that is no measurement server fails its check
    assert [(n.subject, n.text) for n in r.missing] == [
        ("bandwidth", "ConnectError: refused"),
        ("bandwidth", str(Text("reason.no_server"))),
    ]


def test_an_interrupted_run_is_never_pass_but_a_failure_stands():
    assert conclude(healthy(interrupted=True), PROFILES).status == "incomplete"
    slow = replace(f.healthy_measurements(), bandwidth=(f.bandwidth("internet", 5.0), f.bandwidth("internet", 3.0, direction="upload")))
    assert conclude(healthy(measurements=slow), PROFILES).status == "fail"
    assert conclude(healthy(measurements=slow, interrupted=True), PROFILES).status == "fail"


def test_nothing_answered_is_no_connectivity_even_with_a_servfail_stub():
    # no default route: the gateway is silent, no server answers, the local stub resolver says
    # SERVFAIL to everything; before, those SERVFAILs counted as measured and the run said "fail"
    stub = [f.dns(0.2, rcodes=["SERVFAIL"] * 5), f.dns(0.2, kind="cold", rcodes=["SERVFAIL"] * 5)]
    m = f.measurements(
        [f.silent("gateway"), f.silent("internet")], [f.bandwidth("internet", None, bytes_total=0, error="unreachable")], stub
    )
    r = conclude(healthy(measurements=m), PROFILES)
    assert r.status == "no-connectivity"
    assert {n.subject for n in r.missing} == {"bandwidth", "latency"}
    # one resolver answering NOERROR is connectivity: the run is judged (and is no pass)
    m2 = replace(m, dns=m.dns + (f.dns(3.0, server="192.168.1.2"),))
    assert conclude(healthy(measurements=m2), PROFILES).status in ("fail", "incomplete")


def test_a_run_with_no_route_at_all_says_no_connectivity():
    # no gateway detected, no server, no resolver: nothing could even be asked (was status "error")
    site = Site(
        school=School("x", "X", None),
        profile="default",
        classrooms=(Classroom("a", 30, "default"),),
        gateway="auto",
        center=None,
        internet=(),
        resolvers=("system",),
        names=("www.mext.go.jp",),
        probes=ProbeSettings(),
        path=None,
    )
    r = run(site, quick=True, host={})
    assert r.status == "no-connectivity"
    assert {n.subject for n in r.missing} == {"bandwidth", "latency", "dns"}


def test_the_light_plan_needs_no_bandwidth_figure():
    # scheduled light runs judge latency and DNS only, by design (docs/scheduled.md); a full run
    # with the same figures is incomplete
    no_bw = replace(f.healthy_measurements(), bandwidth=())
    assert conclude(healthy(measurements=no_bw, mode="scheduled"), PROFILES).status == "pass"
    assert conclude(healthy(measurements=no_bw, mode="scheduled-full"), PROFILES).status == "incomplete"


@pytest.mark.parametrize(
    "status, code",
    [("pass", 0), ("warn", 0), ("fail", 1), ("no-connectivity", 3), ("error", 3), ("incomplete", 6)],
)
def test_each_status_has_its_exit_code(status, code):
    assert _exit_code(healthy(status=status)) == code
    assert _exit_code(healthy(status=status, interrupted=True)) == Exit.INTERRUPTED


def test_incomplete_is_documented_with_its_exit_code():
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert f"| {int(Exit.INCOMPLETE)} | incomplete" in readme
    assert "`incomplete`" in (root / "docs" / "result-schema.md").read_text(encoding="utf-8")


def test_run_without_a_server_says_incomplete_on_its_first_line(dns_server, write_site, tmp_path):
    """On loopback: a gateway and a resolver answer, no measurement server is configured."""
    site = {
        "school": {"id": "t-1", "name": "Loopback Elementary"},
        "classrooms": [{"name": "5-1", "devices": 35}],
        "targets": {"gateway": "127.0.0.1"},
        "dns": {"resolvers": [f"127.0.0.1:{dns_server.port}"], "names": ["www.lab.example"]},
        "probes": {"latency": {"count": 5, "interval_s": 0.02}, "dns": {"queries": 3, "timeout_s": 0.5}},
        "load": {"enabled": False},
    }
    env = clean_env()
    env["COLUMNS"] = "200"
    proc = subprocess.run(
        [sys.executable, "-m", "giga_netcheck", "run", "--site", str(write_site(site)), "--out", str(tmp_path), "--json",
         str(tmp_path / "r.json"), "--no-progress", "--lang", "en"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    m = Messages("en")
    assert proc.returncode == Exit.INCOMPLETE, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == m("status.incomplete")
    assert lines[1].strip().startswith("· " + m("missing.line", need=m("not_measured.subject.bandwidth"), why="")), lines[1]
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["status"] == "incomplete"
    assert {n["subject"] for n in doc["missing"]} == {"bandwidth"}
    assert any(n["key"] == "reason.no_server" for n in doc["missing"])
