"""The load ramp in the terminal: a compact table in ``run`` and ``probe load`` (devices per step,
share meeting the activity, connection errors by kind, the knee marked), in English and Japanese."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

from giga_netcheck.core import load as analysis
from giga_netcheck.core.i18n import LANGS, Messages
from giga_netcheck.core.models import LoadHop, LoadResponsiveness
from giga_netcheck.measure.loadgen.client import ERROR_KINDS
from giga_netcheck.render.terminal import KNEE_MARK, _bar, load_lines, show, show_load
from tests.factories import healthy_measurements, load_result, load_step, run_result


def _step(devices, met, judged, refused=0, reset=0, complete=True, inc=3.0):
    errors = {k: 0 for k in ERROR_KINDS}
    errors.update(refused=refused, reset=reset)
    return load_step(
        devices,
        round(met / judged, 4) if judged else None,
        connections=2 * devices,
        complete=complete,
        stopped=None if complete else "interrupted",
        met=met,
        judged=judged,
        goodput_mbps=1.5 * devices,
        errors=errors,
        rpm=1200.0,
        latency=(LoadHop(target="center", increase_ms=inc, grade=analysis.grade(inc)),),
    )


def section(steps=None, **kw):
    steps = steps or [
        _step(10, 10, 10),
        _step(20, 20, 20),
        _step(30, 26, 30, refused=7, reset=2, inc=80),
        _step(40, 12, 40, refused=30, complete=False),
    ]
    return load_result(
        steps,
        35,
        responsiveness=LoadResponsiveness(rpm=1200.0, working_rtt_ms=50.0, rating="good", at_devices=30),
        stopped="interrupted",
        **kw,
    )


def render(fn, *args, width: int = 140) -> str:
    buf = io.StringIO()
    fn(Console(file=buf, width=width, color_system=None, force_terminal=False), *args)
    return buf.getvalue()


@pytest.mark.parametrize("lang", LANGS)
def test_ramp_table_has_devices_share_errors_by_kind_and_the_knee(lang):
    m = Messages(lang)
    out = render(show_load, section(), m)
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert set(rows) == {"10", "20", "30", "40"}, out
    assert KNEE_MARK in rows["20"] and KNEE_MARK not in rows["10"] + rows["30"] + rows["40"]
    assert "100% 20/20" in rows["20"] and "87% 26/30" in rows["30"]
    # the widest cells a run shows: loopback RPM, the longest hop name
    widest = [
        dataclasses.replace(st, rpm=282780.0, latency=(dataclasses.replace(st.latency[0], target="internet"),)) for st in section().steps
    ]
    wide = section(widest)
    narrow = render(show_load, wide, m, width=80)  # compact: on an 80-column terminal every step is one line
    for step in wide.steps:
        assert any(
            line.split()[:1] == [str(step.devices)] and f"{step.met}/{step.judged}" in line and f"{step.goodput_mbps:.1f}" in line
            for line in narrow.splitlines()
        ), narrow
    assert f"{m('load.err.refused')} 7" in rows["30"] and f"{m('load.err.reset')} 2" in rows["30"]
    assert "40 *" in out and f"{m('load.err.refused')} 30" in rows["40"]  # the cut step is shown, marked
    assert "center +80 C" in rows["30"]
    assert m("load.supports", devices=20, needed=35, activity="web-apps") in out
    assert m("load.stopped", why="interrupted") in out
    assert m("load.table.caption", share="95").split(":")[0] in out


def test_bars_are_eighths_of_six_cells():
    assert _bar(0.0) == "······" and _bar(1.0) == "██████" and _bar(0.5) == "███···"
    assert _bar(0.97) == "█████▉" and _bar(1.7) == _bar(1.0)


def test_verdict_names_the_rate_of_a_cbt_or_video_activity():
    s = section(activity={"kind": "cbt", "down_mbps": 0.5})
    assert "cbt 0.5 Mbit/s" in load_lines(s, Messages("en"))[0]
    s = section(activity={"kind": "video", "bitrate_mbps": 2.5, "segment_s": 2.0})
    assert "video 2.5 Mbit/s" in load_lines(s, Messages("en"))[0]


@pytest.mark.parametrize("lang", LANGS)
def test_run_summary_shows_the_ramp(lang):
    m = Messages(lang)
    r = run_result(dataclasses.replace(healthy_measurements(), load=section()))
    out = render(show, r, m)
    assert m("load.table.title", activity="web-apps", target="center") in out and KNEE_MARK in out
    without = render(show, run_result(healthy_measurements()), m)
    assert m("load.table.title", activity="web-apps", target="center") not in without
