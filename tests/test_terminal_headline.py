"""The terminal answers at a glance (issue 15 item 6): the verdict on the first line, then the
headline figures in one table before the verdict's details; plain wording in the load summary.

Before the fix a passing run printed no figure at all, and the load summary read "Supports at
least 53 of 35 devices".
"""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace

import pytest
from rich.console import Console

from giga_netcheck.config.profiles import load_profile
from giga_netcheck.core.facts import Facts
from giga_netcheck.core.i18n import Messages
from giga_netcheck.core.models import ProbeRecord
from giga_netcheck.core.stats import percentile
from giga_netcheck.measure.runner import conclude
from giga_netcheck.render.terminal import load_lines, show
from tests import factories as f
from tests.conftest import clean_env, loopback_site

PROFILES = {n: load_profile(n) for n in ("default", "video-lesson")}
OK_PROBES = (ProbeRecord("latency", "ok"), ProbeRecord("dns", "ok"), ProbeRecord("bandwidth", "ok"))


def concluded(m):
    r = f.run_result(m, probes=OK_PROBES, not_measured=(), not_measured_messages=(), checks=(), causes=())
    return conclude(r, PROFILES)


def shown(r, lang: str = "en", width: int = 100) -> list[str]:
    buf = io.StringIO()
    show(Console(file=buf, width=width, color_system=None, force_terminal=False), r, Messages(lang))
    return [line.rstrip() for line in buf.getvalue().splitlines()]


def row(lines: list[str], *words: str) -> str:
    found = [line for line in lines if all(w in line for w in words)]
    assert len(found) == 1, f"one row with {words}, got {found}"
    return found[0]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_passing_run_shows_its_figures(lang):
    m = Messages(lang)
    r = concluded(f.healthy_measurements())
    assert r.status == "pass"
    lines = shown(r, lang)
    assert lines[0] == m("status.pass")
    assert m("headline.title") in lines
    facts = Facts.of(r.targets, r.measurements, r.probes)
    for name in ("center", "internet"):
        down, up = facts.throughput(name, "download"), facts.throughput(name, "upload")
        want = m("headline.mbps", down=f"{down.goodput_mbps:.1f}", up=f"{up.goodput_mbps:.1f}")
        assert want in row(lines, m("headline.bandwidth"), f" {name} ")
    for name in ("gateway", "center", "internet"):
        idle = facts.idle[name].stats.p50_ms
        loaded = facts.loaded_increase(name)[1].stats.p50_ms
        assert m("headline.ms", a=f"{idle:.1f}", b=f"{loaded:.1f}") in row(lines, m("headline.rtt"), f" {name} ")
    dns = r.measurements.dns
    warm = percentile([t for d in dns if d.kind == "warm" for t in d.times_ms if t is not None], 50)
    cold = percentile([t for d in dns if d.kind == "cold" for t in d.times_ms if t is not None], 50)
    assert m("headline.ms", a=f"{warm:.1f}", b=f"{cold:.1f}") in row(lines, m("headline.dns"), "system 192.168.1.1")


def test_the_headline_comes_before_the_verdict_details_and_shows_the_knee():
    m = Messages("en")
    r = concluded(replace(f.healthy_measurements(), load=f.sample_load()))
    sup = r.measurements.load.supports
    assert r.status == "fail" and sup.devices < sup.needed  # the sample ramp carries fewer than needed
    lines = shown(r)
    assert lines[0] == m("status.fail")
    title = lines.index(m("headline.title"))
    assert title < lines.index(m("heading.failed_checks")) < lines.index(m("heading.causes"))
    knee = row(lines, m("headline.knee"))
    assert m("headline.knee_at", devices=sup.devices, needed=sup.needed) in knee and r.measurements.load.classroom.name in knee


def test_what_was_not_measured_says_so_in_the_headline():
    m = Messages("en")
    r = concluded(replace(f.healthy_measurements(), bandwidth=()))
    lines = shown(r)
    assert lines[0] == m("status.incomplete")
    assert m("headline.not_measured") in row(lines, m("headline.bandwidth"))


def test_the_headline_fits_80_columns():
    r = concluded(replace(f.healthy_measurements(), load=f.sample_load()))
    lines = shown(r, width=80)
    start = lines.index(Messages("en")("headline.title"))
    table = lines[start : start + 12]
    assert all(len(line) <= 80 for line in table)
    assert any("internet" in line and "Mbit/s" in line for line in table)  # a row is not folded away


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_load_summary_never_reads_more_of_fewer(lang):
    load = f.load_result([f.load_step(d, 1.0) for d in (20, 40, 53)], needed=35)
    sup = load.supports
    assert sup.at_least and sup.devices > sup.needed  # every step served, beyond the classroom
    line = load_lines(load, Messages(lang))[0]
    assert str(sup.devices) in line and str(sup.needed) in line
    assert f"{sup.devices} of {sup.needed}" not in line and f"{sup.needed} 台中" not in line
    short = f.load_result([f.load_step(10, 1.0), f.load_step(20, 1.0), f.load_step(30, 0.2)], needed=25)
    assert not short.supports.at_least
    line = load_lines(short, Messages(lang))[0]
    assert f"{short.supports.devices} of {short.supports.needed}" not in line and f"{short.supports.needed} 台中" not in line


def test_run_on_loopback_prints_the_headline(server, dns_server, write_site, tmp_path):
    site = write_site(loopback_site(server.url, dns_server.port))
    env = clean_env()
    env["COLUMNS"] = "200"
    proc = subprocess.run(
        [sys.executable, "-m", "giga_netcheck", "run", "--site", str(site), "--out", str(tmp_path), "--no-progress", "--lang", "en"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    m = Messages("en")
    lines = [line.rstrip() for line in proc.stdout.splitlines()]
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert lines[0] in (m("status.pass"), m("status.warn"), m("status.fail"))
    title = lines.index(m("headline.title"))
    assert title < lines.index(m("heading.causes"))
    assert "Mbit/s" in row(lines, m("headline.bandwidth"), " internet ")
    assert " ms" in row(lines, m("headline.rtt"), " gateway ")
    assert " ms" in row(lines, m("headline.dns"), f"127.0.0.1:{dns_server.port}")
